//! Ending a call: both legs (BYE, CANCEL or a final response), the report
//! to the distributor, and forgetting every index and timer of the call.

use std::time::Instant;

use acd_sip::{Method, Response};

use crate::call::{Call, CallerState, Phase};
use crate::core::{ClientTx, EdgeCore};
use crate::dialogs::next_hop;
use crate::ids::{CallId, Side};
use crate::io::{EndedBy, MediaCommand, ToDistributor};
use crate::timers::{TimerKey, TimerKind};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EndReason {
    Hangup(Side),
    CallerCancel,
    Flow,
    Rejected,
    NoAck(Side),
    SessionExpired(Side),
    MediaTimeout(Side),
    DialogGone(Side),
    /// The process's drain deadline passed.
    DrainDeadline,
    /// The distributor redirected the call away (message, callback booked):
    /// it no longer holds it, so nothing is reported.
    Redirected,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Hangup(Side::Caller) => "caller hung up",
            EndReason::Hangup(Side::Agent) => "agent hung up",
            EndReason::CallerCancel => "caller cancelled",
            EndReason::Flow => "flow hung up",
            EndReason::Rejected => "rejected by distributor",
            EndReason::NoAck(_) => "no ACK",
            EndReason::SessionExpired(_) => "session expired",
            EndReason::MediaTimeout(_) => "no media",
            EndReason::DialogGone(_) => "dialog gone",
            EndReason::DrainDeadline => "drain deadline",
            EndReason::Redirected => "redirected",
        }
    }

    /// Who ended the call, for the distributor's `CallEnded.by`.
    pub fn ended_by(self) -> EndedBy {
        match self {
            EndReason::Hangup(Side::Caller) | EndReason::CallerCancel => EndedBy::Caller,
            EndReason::Hangup(Side::Agent) => EndedBy::Agent,
            EndReason::NoAck(_)
            | EndReason::SessionExpired(_)
            | EndReason::MediaTimeout(_)
            | EndReason::DialogGone(_)
            | EndReason::DrainDeadline => EndedBy::Failure,
            EndReason::Flow | EndReason::Rejected | EndReason::Redirected => EndedBy::Unspecified,
        }
    }

    /// The side that already ended its dialog (no BYE towards it).
    fn gone(self) -> Option<Side> {
        match self {
            EndReason::Hangup(s) => Some(s),
            EndReason::DialogGone(s) => Some(s),
            _ => None,
        }
    }
}

/// Every timer a call can have but the IVR's digit timer (keyed by step).
const CALL_TIMERS: [TimerKind; 11] = [
    TimerKind::Ring,
    TimerKind::Retransmit2xx(Side::Caller),
    TimerKind::Retransmit2xx(Side::Agent),
    TimerKind::NoAck(Side::Caller),
    TimerKind::NoAck(Side::Agent),
    TimerKind::SessionExpiry(Side::Caller),
    TimerKind::SessionExpiry(Side::Agent),
    TimerKind::SessionRefresh(Side::Caller),
    TimerKind::SessionRefresh(Side::Agent),
    TimerKind::Reoffer(Side::Caller),
    TimerKind::Reoffer(Side::Agent),
];

impl EdgeCore {
    /// Ends every call (drain deadline): BYE or CANCEL on each leg.
    pub(crate) fn end_all(&mut self, now: Instant) {
        let mut ids: Vec<CallId> = self.calls.keys().cloned().collect();
        ids.sort();
        for id in ids {
            metrics::counter!("acd_calls_dead_total", "reason" => "drain_deadline").increment(1);
            self.end_call(&id, EndReason::DrainDeadline, now);
        }
    }

    /// Ends both legs of a call, tells the distributor, forgets the call
    /// (unless the agent hung up on a call with a survey: the caller stays).
    pub(crate) fn end_call(&mut self, id: &CallId, reason: EndReason, now: Instant) {
        if reason == EndReason::Hangup(Side::Agent) && self.start_survey(id, now) {
            return;
        }
        let Some(mut call) = self.forget_call(id) else {
            return;
        };
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        self.end_caller_leg(&mut call, reason, now);
        self.end_agent_leg(&mut call, reason, now);
        let outcome = match &call.phase {
            // The distributor never knew a call the flow transferred out.
            Phase::Bridged(a) if a.transfer.is_some() => "transferred",
            Phase::Ringing(r) if r.transfer.is_some() => "ended_in_ivr",
            Phase::Bridged(_) => {
                self.report(ToDistributor::CallEnded {
                    call: id.clone(),
                    reason: reason.as_str().into(),
                    by: reason.ended_by(),
                });
                "completed"
            }
            // The distributor let go of it (redirected away).
            Phase::Closing { .. } => "redirected",
            Phase::Queued | Phase::Ringing(_) => {
                if reason != EndReason::Rejected && reason != EndReason::Redirected {
                    self.report(ToDistributor::Abandon { call: id.clone() });
                }
                "abandoned"
            }
            Phase::Ivr { .. } | Phase::Setup => "ended_in_ivr",
        };
        metrics::counter!("acd_calls_ended_total", "outcome" => outcome).increment(1);
        tracing::info!(reason = reason.as_str(), outcome, "call ended");
        if let Some(note) = call.note.as_deref() {
            let noted = crate::note::outcome(note, &call.phase, reason);
            self.send_note(&call, noted, now);
        }
    }

    /// Removes a call with its indexes, timers and media; says nothing to anyone.
    pub(crate) fn forget_call(&mut self, id: &CallId) -> Option<Call> {
        let call = self.calls.remove(id)?;
        if let Some(t) = call.trunk {
            self.trunks.call_ended(t);
        }
        self.by_invite.remove(&call.caller.invite_key);
        self.dials.call_ended(&call.caller.invite_key);
        self.drop_announcement(id);
        if let (Some(cid), Some(from_tag)) = (
            call.caller.invite.headers.call_id(),
            call.caller.invite.headers.from_tag(),
        ) {
            self.by_dialog.remove(&(
                cid.to_string(),
                call.caller.local_tag.clone(),
                from_tag.to_string(),
            ));
        }
        if let CallerState::Answered(est) = &call.caller.state {
            // An outbound (callback) leg's INVITE carries our tag as From.
            let d = &est.dialog;
            self.by_dialog
                .remove(&(d.call_id.clone(), d.local_tag.clone(), d.remote_tag.clone()));
        }
        match &call.phase {
            Phase::Ringing(r) => {
                self.by_invite.remove(&r.key);
                for f in &r.forks {
                    self.by_invite.remove(&f.key);
                }
            }
            Phase::Bridged(a) => {
                self.by_invite.remove(&a.key);
                let d = &a.est.dialog;
                self.by_dialog.remove(&(
                    d.call_id.clone(),
                    d.local_tag.clone(),
                    d.remote_tag.clone(),
                ));
            }
            _ => {}
        }
        for kind in CALL_TIMERS {
            self.cancel_timer(id, kind);
        }
        if let Phase::Ivr { step, .. } = &call.phase {
            self.timers
                .cancel(&TimerKey::Call(id.clone(), TimerKind::Digits(*step)));
        }
        self.media(id, MediaCommand::Release);
        Some(call)
    }

    fn end_caller_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        if reason.gone() == Some(Side::Caller) {
            return;
        }
        let branch = self.rng.branch();
        match &mut call.caller.state {
            CallerState::Proceeding { .. } => {
                let (status, text) = match reason {
                    EndReason::CallerCancel => (487, "Request Terminated"),
                    _ => (480, "Temporarily Unavailable"),
                };
                let resp = Response::for_request(&call.caller.invite, status, text)
                    .with_to_tag(&call.caller.local_tag);
                let key = call.caller.invite_key.clone();
                self.respond(&key, resp, now);
            }
            CallerState::Answered(est) => {
                let via = self.via(est.peer.transport);
                let contact = self.local_contact(est.peer.transport);
                let bye = est.dialog.request(Method::Bye, &via, &branch, &contact);
                let to = next_hop(&est.dialog, est.peer);
                let key = self.send_request(bye, to, now);
                self.by_client_tx
                    .insert(key, (call.id.clone(), Side::Caller, ClientTx::Bye));
            }
        }
    }

    fn end_agent_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        if reason.gone() == Some(Side::Agent) {
            return;
        }
        let branch = self.rng.branch();
        match &mut call.phase {
            Phase::Ringing(r) => {
                // A 2xx crossing our CANCEL still gets ACK + BYE (§9.1).
                if !r.main_gone {
                    self.cancel_and_orphan(&r.invite, r.key.clone(), r.peer, now);
                }
                for f in std::mem::take(&mut r.forks) {
                    self.cancel_and_orphan(&f.invite, f.key, f.peer, now);
                }
            }
            Phase::Bridged(a) => {
                let via = self.via(a.est.peer.transport);
                let bye = a.est.dialog.request(Method::Bye, &via, &branch, "");
                let to = next_hop(&a.est.dialog, a.est.peer);
                let key = self.send_request(bye, to, now);
                self.by_client_tx
                    .insert(key, (call.id.clone(), Side::Agent, ClientTx::Bye));
            }
            _ => {}
        }
    }
}
