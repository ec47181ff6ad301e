//! `ReleaseAgent`: the agent transferred the call (to a queue or another
//! agent). The edge hangs up the agent leg (CANCEL while it rings, BYE once
//! bridged), the caller goes back to the hold music, and the call waits at
//! the edge for the next `Connect`. The distributor asked for it, so
//! nothing is reported.

use std::time::Instant;

use acd_sip::Method;

use crate::call::{AgentLeg, Phase};
use crate::core::{ClientTx, EdgeCore};
use crate::dialogs::next_hop;
use crate::ids::{AgentId, CallId, Side};
use crate::io::MediaCommand;
use crate::timers::TimerKind;

/// The agent leg's timers, cancelled with the leg.
const AGENT_TIMERS: [TimerKind; 6] = [
    TimerKind::Ring,
    TimerKind::Retransmit2xx(Side::Agent),
    TimerKind::NoAck(Side::Agent),
    TimerKind::SessionExpiry(Side::Agent),
    TimerKind::SessionRefresh(Side::Agent),
    TimerKind::Reoffer(Side::Agent),
];

impl EdgeCore {
    pub(crate) fn release_agent(
        &mut self,
        id: &CallId,
        agent: &AgentId,
        reason: &str,
        now: Instant,
    ) {
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let Some(call) = self.calls.get_mut(id) else {
            tracing::debug!(%agent, "release for a call that is gone");
            return;
        };
        let leg_agent = match &call.phase {
            Phase::Ringing(r) if r.transfer.is_none() => r.agent.clone(),
            Phase::Bridged(a) if a.transfer.is_none() => a.agent.clone(),
            _ => {
                metrics::counter!("acd_edge_releases_refused_total", "reason" => "no_agent_leg")
                    .increment(1);
                tracing::info!(%agent, phase = call.phase.name(), "release for a call without an agent leg; ignored");
                return;
            }
        };
        if leg_agent != *agent {
            metrics::counter!("acd_edge_releases_refused_total", "reason" => "other_agent")
                .increment(1);
            tracing::warn!(%agent, current = %leg_agent, "release names another agent; ignored");
            return;
        }
        let phase = std::mem::replace(&mut call.phase, Phase::Queued);
        match phase {
            Phase::Ringing(r) => {
                if !r.main_gone {
                    self.cancel_and_orphan(&r.invite, r.key, r.peer, now);
                }
                for f in r.forks {
                    self.cancel_and_orphan(&f.invite, f.key, f.peer, now);
                }
            }
            Phase::Bridged(mut a) => {
                self.unbridge(id, &a);
                let d = &mut a.est.dialog;
                let branch = self.rng.branch();
                let via = self.via(a.est.peer.transport);
                let bye = d.request(Method::Bye, &via, &branch, "");
                let to = next_hop(d, a.est.peer);
                let key = self.send_request(bye, to, now);
                self.by_client_tx
                    .insert(key, (id.clone(), Side::Agent, ClientTx::Bye));
            }
            _ => {}
        }
        for kind in AGENT_TIMERS {
            self.cancel_timer(id, kind);
        }
        metrics::counter!("acd_edge_agent_releases_total").increment(1);
        tracing::info!(%agent, reason, "agent leg released; caller back on hold");
        let token = self.take_token();
        self.play_hold_music(id, token);
    }
}

impl EdgeCore {
    /// Forgets a bridged agent leg's indexes and timers and stops relaying;
    /// the caller stays (the phase is the caller's to set).
    pub(crate) fn unbridge(&mut self, id: &CallId, leg: &AgentLeg) {
        self.by_invite.remove(&leg.key);
        let d = &leg.est.dialog;
        self.by_dialog
            .remove(&(d.call_id.clone(), d.local_tag.clone(), d.remote_tag.clone()));
        for kind in AGENT_TIMERS {
            self.cancel_timer(id, kind);
        }
        self.media(id, MediaCommand::Unbridge);
    }
}
