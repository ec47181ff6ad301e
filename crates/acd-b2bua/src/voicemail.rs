//! Voicemail and callbacks: the flow's `Record` (the media records the
//! caller, the shell writes the WAV file, the flow hears `Recorded` or
//! `RecordFailed`) and `Callback` (a request to the distributor; the flow
//! goes on at once).

use std::time::Instant;

use crate::call::{IvrWait, Phase};
use crate::core::EdgeCore;
use crate::ids::{CallId, PlayToken};
use crate::incoming::caller_info;
use crate::io::{CallbackRequest, IvrAction, IvrEvent, MediaCommand, ToDistributor};

impl EdgeCore {
    /// `IvrAction::Record`: the media records the caller.
    pub(crate) fn record(
        &mut self,
        id: &CallId,
        max_ms: u32,
        silence_ms: u32,
        beep: bool,
        token: PlayToken,
        now: Instant,
    ) {
        let has_media = self.calls.get(id).is_some_and(|c| c.ports.is_some());
        if !has_media {
            metrics::counter!("acd_edge_recordings_total", "outcome" => "no_media").increment(1);
            let reason = "no media".into();
            return self.ivr_step(id, IvrEvent::RecordFailed { reason }, now);
        }
        tracing::info!(call_id = %id, max_ms, silence_ms, beep, "recording the caller");
        self.set_wait(id, IvrWait::Record(token));
        self.media(
            id,
            MediaCommand::Record {
                max_ms,
                silence_ms,
                beep,
                token,
            },
        );
    }

    /// Ends the caller's recording now (`#` pressed); the media then reports
    /// it as usual. Nothing happens when no recording runs.
    pub fn stop_recording(&mut self, id: &CallId) {
        if matches!(
            self.phase_of(id),
            Some(Phase::Ivr {
                wait: IvrWait::Record(_),
                ..
            })
        ) {
            self.media(id, MediaCommand::StopRecording);
        }
    }

    /// The shell wrote the recording `token` (`Ok(file, duration)`) or could not.
    pub(crate) fn recording_done(
        &mut self,
        id: &CallId,
        token: PlayToken,
        result: Result<(String, u32), String>,
        now: Instant,
    ) {
        let current = matches!(
            self.phase_of(id),
            Some(Phase::Ivr { wait: IvrWait::Record(t), .. }) if *t == token
        );
        if !current {
            metrics::counter!("acd_edge_recordings_total", "outcome" => "stale").increment(1);
            return;
        }
        let event = match result {
            Ok((file, duration_ms)) => {
                tracing::info!(call_id = %id, %file, duration_ms, "recorded");
                metrics::counter!("acd_edge_recordings_total", "outcome" => "recorded")
                    .increment(1);
                if let Some(note) = self.note_mut(id) {
                    note.voicemail = true;
                }
                IvrEvent::Recorded { file, duration_ms }
            }
            Err(reason) => {
                tracing::warn!(call_id = %id, %reason, "recording failed");
                metrics::counter!("acd_edge_recordings_total", "outcome" => "failed").increment(1);
                IvrEvent::RecordFailed { reason }
            }
        };
        self.ivr_step(id, event, now);
    }

    /// After a restore: recordings are not part of the media's snapshot, so
    /// one that was running is lost; the flow hears `RecordFailed` rather
    /// than wait for it forever.
    pub(crate) fn fail_interrupted_recordings(&mut self, now: Instant) {
        let mut waiting: Vec<(CallId, PlayToken)> = self
            .calls
            .values()
            .filter_map(|c| match &c.phase {
                Phase::Ivr {
                    wait: IvrWait::Record(t),
                    ..
                } => Some((c.id.clone(), *t)),
                _ => None,
            })
            .collect();
        waiting.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, token) in waiting {
            let reason = "interrupted by a hand-over".to_string();
            self.recording_done(&id, token, Err(reason), now);
        }
    }

    /// `IvrAction::Callback`: ask the distributor to call back later.
    pub(crate) fn callback(&mut self, id: &CallId, action: IvrAction, now: Instant) {
        let IvrAction::Callback {
            queue,
            number,
            priority,
            voicemail,
            data,
        } = action
        else {
            return;
        };
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let mut caller = caller_info(&call.caller.invite, &call.did);
        caller.variables.extend(data);
        tracing::info!(call_id = %id, %queue, %number, ?voicemail, "callback requested");
        metrics::counter!("acd_edge_callbacks_requested_total").increment(1);
        self.report(ToDistributor::Callback(CallbackRequest {
            call: id.clone(),
            queue,
            number,
            priority,
            voicemail,
            caller,
            requested_at_ms: self.unix_ms(now),
        }));
    }
}
