//! Running the caller through the flow: Step calls to the IVR runners and
//! the actions they return (prompts, digit collection, enqueue, hang-up).

use std::time::{Duration, Instant};

use acd_proto::v1 as pb;
use pb::edge_message::Kind as ToDist;

use super::call::*;
use super::*;
use crate::media::MediaCmd;

impl Engine {
    // ----- IVR ------------------------------------------------------------

    pub(super) fn ivr_step(&mut self, id: &str, event: pb::ivr_event::Kind) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let req = pb::StepRequest {
            call_id: id.to_string(),
            session: Some(call.session.clone()),
            event: Some(pb::IvrEvent { kind: Some(event) }),
        };
        let ivr = self.ivr.clone();
        let input = self.input.clone();
        let call = id.to_string();
        tokio::spawn(async move {
            let result = ivr.step(req).await;
            let _ = input.send(Input::IvrDone { call, result });
        });
    }

    pub(super) fn ivr_done(
        &mut self,
        id: &str,
        result: Result<pb::StepResponse, String>,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let _e = call.span.clone().entered();
        if !matches!(call.phase, Phase::Ivr) {
            return;
        }
        let actions = match result {
            Ok(resp) => {
                if let Some(s) = resp.session {
                    call.session = s;
                }
                resp.actions
            }
            Err(e) => {
                // No runner answered: the caller must not hear silence.
                metrics::counter!("acd_edge_ivr_fallbacks_total").increment(1);
                let queue = self
                    .cfg
                    .flows
                    .get(&call.flow_id)
                    .map(|f| f.fallback_queue.clone())
                    .unwrap_or_default();
                tracing::warn!(error = %e, %queue, "IVR unavailable, using the flow's fallback queue");
                vec![pb::IvrAction {
                    kind: Some(pb::ivr_action::Kind::Enqueue(pb::Enqueue {
                        queue_id: queue,
                        priority: 0,
                    })),
                }]
            }
        };
        for action in actions {
            self.ivr_action(id, action, now);
        }
    }

    pub(super) fn ivr_action(&mut self, id: &str, action: pb::IvrAction, now: Instant) {
        use pb::ivr_action::Kind;
        let token = self.next_token;
        self.next_token += 1;
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        match action.kind {
            Some(Kind::Play(p)) => match self.cfg.prompts.get(&p.prompt) {
                Some(prompt) => {
                    call.prompt_token = token;
                    call.media.send(MediaCmd::Play {
                        prompt: prompt.clone(),
                        name: p.prompt.clone(),
                        looping: false,
                        token,
                    });
                }
                None => {
                    tracing::warn!(prompt = %p.prompt, "unknown prompt, skipping");
                    self.ivr_step(
                        id,
                        pb::ivr_event::Kind::PromptFinished(pb::PromptFinished {
                            prompt: p.prompt,
                        }),
                    );
                }
            },
            Some(Kind::Collect(c)) => {
                // Digits (RFC 4733 / INFO) arrive in a later issue; until then the menu times out.
                call.digit_deadline =
                    Some(now + Duration::from_millis(u64::from(c.timeout_ms.max(1))));
            }
            Some(Kind::Enqueue(q)) => {
                call.phase = Phase::Queued;
                if let Some(moh) = self.cfg.prompts.get("moh") {
                    call.media.send(MediaCmd::Play {
                        prompt: moh.clone(),
                        name: "moh".into(),
                        looping: true,
                        token,
                    });
                }
                let caller = caller_data(&call.caller.invite, &call.did);
                tracing::info!(queue = %q.queue_id, priority = q.priority, "enqueue");
                self.shared.queued_calls.insert(id.to_string());
                let enqueue = pb::EnqueueCall {
                    call_id: id.to_string(),
                    queue_id: q.queue_id,
                    priority: q.priority,
                    caller: Some(caller),
                };
                call.enqueued = Some(enqueue.clone());
                self.dist.send(ToDist::Enqueue(enqueue));
            }
            Some(Kind::Hangup(h)) => {
                tracing::info!(reason = %h.reason, "flow hangs up");
                self.end_call(id, EndReason::Flow, now);
            }
            None => tracing::warn!("IVR action of an unknown kind ignored"),
        }
    }

    pub(super) fn prompt_finished(&mut self, id: &str, token: u64) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if matches!(call.phase, Phase::Ivr) && call.prompt_token == token {
            self.ivr_step(
                id,
                pb::ivr_event::Kind::PromptFinished(pb::PromptFinished::default()),
            );
        }
    }
}
