//! Ending a call: both legs (BYE, CANCEL or a final response) and the
//! report to the distributor.

use std::time::Instant;

use acd_proto::v1 as pb;
use acd_sip::transaction::{build_cancel, new_branch};
use acd_sip::{Method, Response};
use pb::edge_message::Kind as ToDist;

use super::call::*;
use super::*;

impl Engine {
    // ----- teardown ---------------------------------------------------------

    /// Ends both legs of a call, tells the distributor, forgets the call.
    pub(super) fn end_call(&mut self, id: &str, reason: EndReason, now: Instant) {
        let Some(mut call) = self.calls.remove(id) else {
            return;
        };
        let _e = call.span.clone().entered();
        self.shared.queued_calls.remove(id);
        for leg_call_id in call.sip_call_ids() {
            self.dialogs.remove(leg_call_id);
        }
        let was = std::mem::replace(&mut call.phase, Phase::Ivr);
        self.end_caller_leg(&mut call, reason, now);
        self.end_agent_leg(&mut call, reason, now);
        let outcome = match was {
            Phase::Bridged => {
                self.dist.send(ToDist::CallEnded(pb::CallEnded {
                    call_id: id.to_string(),
                    reason: reason.as_str().into(),
                }));
                "completed"
            }
            Phase::Queued | Phase::Connecting => {
                if reason != EndReason::Rejected {
                    self.dist.send(ToDist::Abandon(pb::AbandonCall {
                        call_id: id.to_string(),
                    }));
                }
                "abandoned"
            }
            Phase::Ivr => "ended_in_ivr",
        };
        metrics::counter!("acd_calls_ended_total", "outcome" => outcome).increment(1);
        tracing::info!(reason = reason.as_str(), outcome, "call ended");
        // Dropping the media handle stops the media task.
    }

    pub(super) fn end_caller_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        if reason == EndReason::CallerHangup {
            return;
        }
        if !call.caller.answered {
            let (status, text) = match reason {
                EndReason::CallerCancel => (487, "Request Terminated"),
                EndReason::Rejected => (480, "Temporarily Unavailable"),
                _ => (480, "Temporarily Unavailable"),
            };
            let resp = Response::for_request(&call.caller.invite, status, text)
                .with_to_tag(&call.caller.local_tag);
            let key = call.caller.invite_key.clone();
            self.respond(&key, resp, now);
            return;
        }
        let via = self.via(call.caller.peer.transport);
        let contact = self.local_contact(call.caller.peer.transport);
        if let Some(d) = call.caller.dialog.as_mut() {
            let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), &contact);
            let to = next_hop(d, call.caller.peer);
            self.tx.send_request(bye, to, now);
        }
    }

    pub(super) fn end_agent_leg(&mut self, call: &mut Call, reason: EndReason, now: Instant) {
        let Some(agent) = call.agent.as_mut() else {
            return;
        };
        if reason == EndReason::AgentHangup {
            return;
        }
        let via = self.via(agent.peer.transport);
        match agent.dialog.as_mut() {
            Some(d) => {
                let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), "");
                let to = next_hop(d, agent.peer);
                self.tx.send_request(bye, to, now);
            }
            None => {
                let cancel = build_cancel(&agent.invite);
                self.tx.send_request(cancel, agent.peer, now);
            }
        }
    }
}
