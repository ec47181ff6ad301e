//! Running the caller through the flow: steps out to the stateless IVR
//! runners (each with a number, so a late or duplicated reply is ignored)
//! and the actions they return.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::call::{IvrWait, Phase};
use crate::core::EdgeCore;
use crate::digits::DigitSource;
use crate::ids::{CallId, PlayToken, StepNo};
use crate::incoming::caller_info;
use crate::io::{
    Enqueue, IvrAction, IvrEvent, IvrReply, IvrStep, MediaEvent, Output, ToDistributor,
};
use crate::teardown::EndReason;

impl EdgeCore {
    pub(crate) fn start_ivr(
        &mut self,
        id: &CallId,
        did: String,
        caller: String,
        caller_name: String,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.phase = Phase::Ivr {
            session: acd_ivr::Session::default(),
            step: StepNo(0),
            wait: IvrWait::Input(Box::default()),
            typeahead: String::new(),
        };
        self.ivr_step(
            id,
            IvrEvent::Started {
                did,
                caller,
                caller_name,
            },
            now,
        );
    }

    pub(crate) fn ivr_step(&mut self, id: &CallId, event: IvrEvent, now: Instant) {
        self.note_input(id, &event, now);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Phase::Ivr {
            session,
            step,
            wait,
            ..
        } = &mut call.phase
        else {
            return;
        };
        step.0 += 1;
        *wait = IvrWait::Reply(event.clone());
        let out = IvrStep {
            call: id.clone(),
            step: *step,
            flow: call.flow.clone(),
            session: session.clone(),
            event,
        };
        self.emit(Output::Ivr(out));
    }

    pub(crate) fn ivr_reply(
        &mut self,
        id: &CallId,
        got: StepNo,
        reply: Result<IvrReply, String>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let Phase::Ivr {
            session,
            step,
            wait,
            ..
        } = &mut call.phase
        else {
            metrics::counter!("acd_edge_ivr_replies_ignored_total", "reason" => "not_in_ivr")
                .increment(1);
            return;
        };
        if *step != got || !matches!(wait, IvrWait::Reply(_)) {
            metrics::counter!("acd_edge_ivr_replies_ignored_total", "reason" => "stale")
                .increment(1);
            tracing::debug!(
                expected = step.0,
                got = got.0,
                "late or duplicated IVR reply ignored"
            );
            return;
        }
        let actions = match reply {
            Ok(r) => {
                if let Some(s) = r.session {
                    *session = s;
                }
                r.actions
            }
            Err(e) if call.note.as_ref().is_some_and(|n| n.surveying) => {
                // A survey never puts the caller back in a queue: goodbye.
                metrics::counter!("acd_edge_surveys_refused_total", "reason" => "ivr_unavailable")
                    .increment(1);
                tracing::warn!(error = %e, "IVR unavailable during the survey; hanging up");
                vec![IvrAction::Hangup {
                    reason: "survey without IVR".into(),
                }]
            }
            Err(e) => {
                // No runner answered: the caller must not hear silence.
                metrics::counter!("acd_edge_ivr_fallbacks_total").increment(1);
                let queue = self
                    .cfg
                    .flows
                    .get(&call.flow)
                    .map(|f| f.fallback_queue.clone())
                    .unwrap_or_default();
                tracing::warn!(error = %e, %queue, "IVR unavailable, using the flow's fallback queue");
                vec![IvrAction::Enqueue {
                    queue,
                    priority: 0,
                    skills: Default::default(),
                    data: Default::default(),
                }]
            }
        };
        for action in actions {
            self.ivr_action(id, action, now);
        }
        self.start_input(id, now);
    }

    fn ivr_action(&mut self, id: &CallId, action: IvrAction, now: Instant) {
        let token = PlayToken(self.next_token);
        self.next_token += 1;
        match action {
            IvrAction::Play { prompts, barge_in } => self.ivr_play(id, prompts, barge_in),
            IvrAction::Collect(spec) => self.ivr_collect(id, spec),
            IvrAction::Enqueue {
                queue,
                priority,
                skills,
                data,
            } => self.enqueue(id, queue, priority, token, (skills, data)),
            IvrAction::Hangup { reason } => {
                tracing::info!(%reason, "flow hangs up");
                self.end_call(id, EndReason::Flow, now);
            }
            IvrAction::Record {
                max_ms,
                silence_ms,
                beep,
            } => self.record(id, max_ms, silence_ms, beep, token, now),
            IvrAction::Transfer { uri, timeout_ms } => {
                self.transfer(id, uri, timeout_ms, token, now)
            }
            action @ IvrAction::Callback { .. } => self.callback(id, action, now),
            IvrAction::Lookup { .. } => {
                tracing::warn!(?action, "IVR action not supported by this edge");
            }
        }
    }

    /// Steps that were out at a runner when the state was snapshotted: their
    /// replies went to the old process, so ask again.
    pub(crate) fn resend_pending_steps(&mut self) {
        let mut pending: Vec<IvrStep> = self
            .calls
            .values()
            .filter_map(|c| match &c.phase {
                Phase::Ivr {
                    session,
                    step,
                    wait: IvrWait::Reply(event),
                    ..
                } => Some(IvrStep {
                    call: c.id.clone(),
                    step: *step,
                    flow: c.flow.clone(),
                    session: session.clone(),
                    event: event.clone(),
                }),
                _ => None,
            })
            .collect();
        pending.sort_by(|a, b| a.call.cmp(&b.call));
        for step in pending {
            self.emit(Output::Ivr(step));
        }
    }

    pub(crate) fn set_wait(&mut self, id: &CallId, to: IvrWait) {
        if let Some(call) = self.calls.get_mut(id) {
            if let Phase::Ivr { wait, .. } = &mut call.phase {
                *wait = to;
            }
        }
    }

    /// `extra`: skills the call needs beyond the queue's, and caller data
    /// for the call pop.
    fn enqueue(
        &mut self,
        id: &CallId,
        queue: String,
        priority: i32,
        token: PlayToken,
        extra: (BTreeMap<String, u8>, BTreeMap<String, String>),
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        call.phase = Phase::Queued;
        if let Some(note) = call.note.as_deref_mut() {
            note.queued = true;
        }
        let (skills, data) = extra;
        let mut caller = caller_info(&call.caller.invite, &call.did);
        caller.variables.extend(data);
        let enqueue = Enqueue {
            call: id.clone(),
            queue,
            priority,
            caller,
            skills,
        };
        call.enqueued = Some(enqueue.clone());
        // Info comes with the distributor's answer ("queued", with the position).
        tracing::debug!(queue = %enqueue.queue, priority, "enqueue");
        self.play_hold_music(id, token);
        self.report(ToDistributor::Enqueue(enqueue));
    }

    pub(crate) fn media_event(&mut self, ev: MediaEvent, now: Instant) {
        match ev {
            MediaEvent::PromptFinished { call, token } => {
                if !self.own_prompt_finished(&call, token, now) {
                    self.prompt_finished(&call, token, now)
                }
            }
            MediaEvent::Digit { call, digit } => {
                self.digit(&call, digit, DigitSource::Rfc4733, now)
            }
            MediaEvent::Inactive { call, side } => {
                if self.established(&call, side).is_some() {
                    tracing::warn!(call_id = %call, ?side, "no media from the peer: ending the call");
                    metrics::counter!("acd_calls_dead_total", "reason" => "media_timeout")
                        .increment(1);
                    self.end_call(&call, EndReason::MediaTimeout(side), now);
                }
            }
            MediaEvent::Recorded {
                call,
                token,
                file,
                duration_ms,
            } => self.recording_done(&call, token, Ok((file, duration_ms)), now),
            MediaEvent::RecordFailed {
                call,
                token,
                reason,
            } => self.recording_done(&call, token, Err(reason), now),
        }
    }
}
