//! Ring-all: a `Connect` with `ring_also` rings several agents' phones for
//! one call. The first to answer takes it (its leg becomes the ringing
//! leg, `AgentAnswered` names that agent); the others are cancelled. A leg
//! that fails drops out quietly while another still rings; when the last
//! one fails the offered agent's failure is reported as for a single leg.

use std::time::Instant;

use acd_sip::transaction::build_cancel;
use acd_sip::{Peer, Request, Response, TxKey};

use crate::call::{Fork, Phase};
use crate::core::EdgeCore;
use crate::ids::CallId;
use crate::timers::TimerKey;

impl EdgeCore {
    /// CANCELs an agent INVITE; a 2xx crossing the CANCEL still gets ACK
    /// and BYE (§9.1), through the orphan index until 64*T1.
    pub(crate) fn cancel_and_orphan(
        &mut self,
        invite: &Request,
        key: TxKey,
        peer: Peer,
        now: Instant,
    ) {
        self.by_invite.remove(&key);
        self.send_request(build_cancel(invite), peer, now);
        self.orphans.insert(key.clone(), invite.clone());
        let linger = self.cfg.sip.t1x64();
        self.timers.set(TimerKey::Orphan(key), now + linger);
    }

    /// Cancels every other phone still ringing for `id`.
    pub(crate) fn cancel_forks(&mut self, id: &CallId, now: Instant) {
        let forks = match self.calls.get_mut(id).map(|c| &mut c.phase) {
            Some(Phase::Ringing(r)) => std::mem::take(&mut r.forks),
            _ => return,
        };
        for f in forks {
            tracing::info!(call_id = %id, agent = %f.agent, "ring-all: other phone cancelled");
            self.cancel_and_orphan(&f.invite, f.key, f.peer, now);
        }
    }

    /// A response to one of the extra legs of `id`. `false` if `key` is
    /// not one.
    pub(crate) fn fork_response(
        &mut self,
        id: &CallId,
        key: &TxKey,
        resp: &Response,
        now: Instant,
    ) -> bool {
        let Some(Phase::Ringing(r)) = self.calls.get_mut(id).map(|c| &mut c.phase) else {
            return false;
        };
        let Some(i) = r.forks.iter().position(|f| f.key == *key) else {
            return false;
        };
        if resp.is_provisional() {
            return true;
        }
        let fork = r.forks.remove(i);
        if resp.is_success() && !r.cancelled {
            // This phone takes the call: its leg becomes the ringing leg.
            let old = swap_in(r, fork);
            if let Some((invite, key, peer)) = old {
                self.cancel_and_orphan(&invite, key, peer, now);
            }
            metrics::counter!("acd_edge_ring_all_answers_total", "leg" => "other").increment(1);
            self.agent_answered(id, resp.clone(), now);
            return true;
        }
        let (last, main_gone, agent) = (r.forks.is_empty(), r.main_gone, r.agent.clone());
        self.by_invite.remove(&fork.key);
        if resp.is_success() {
            // Our CANCEL crossed the answer: hang that phone up.
            self.ack_and_bye(&fork.invite, resp, now);
        }
        tracing::info!(call_id = %id, agent = %fork.agent, status = resp.status, "ring-all: a phone dropped out");
        if last && main_gone {
            let reason = format!("{} {}", resp.status, resp.reason);
            self.agent_failed(id, agent, &reason, resp.status, now);
        }
        true
    }

    /// The offered agent's own leg failed: `true` (nothing reported) while
    /// other phones still ring for the call.
    pub(crate) fn main_leg_failed(&mut self, id: &CallId) -> bool {
        let Some(Phase::Ringing(r)) = self.calls.get_mut(id).map(|c| &mut c.phase) else {
            return false;
        };
        if r.forks.is_empty() || r.cancelled {
            return false;
        }
        r.main_gone = true;
        let key = r.key.clone();
        self.by_invite.remove(&key);
        tracing::info!(call_id = %id, "ring-all: the offered phone dropped out; others still ring");
        true
    }
}

/// Makes `fork` the ringing leg; returns the old leg to cancel (`None`
/// when it already failed).
fn swap_in(r: &mut crate::call::RingingAgent, fork: Fork) -> Option<(Request, TxKey, Peer)> {
    let old = (!r.main_gone).then(|| (r.invite.clone(), r.key.clone(), r.peer));
    r.agent = fork.agent;
    r.extension = fork.extension;
    r.invite = fork.invite;
    r.key = fork.key;
    r.peer = fork.peer;
    r.sdp = fork.sdp;
    r.main_gone = false;
    old
}
