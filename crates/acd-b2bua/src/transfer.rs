//! The flow's transfer to an external SIP URI (the outsourced night team).
//!
//! The far end is rung like an agent's phone — the same INVITE, ring timer,
//! CANCEL, ACK, media bridge, BYE and session refresh of the agent leg — but
//! the distributor is never told: the `Ringing` and `Bridged` phases carry
//! `transfer`, and the agent leg's handlers ask here first. While it rings
//! the caller hears the hold music; if it fails the caller goes back to the
//! IVR phase it left, and the flow gets `TransferFailed`.

use std::time::{Duration, Instant};

use crate::call::{LegSdp, Phase, RingingAgent};
use crate::core::EdgeCore;
use crate::ids::{AgentId, CallId, PlayToken, Side};
use crate::incoming::caller_info;
use crate::io::{IvrEvent, MediaCommand};
use crate::registrar::contact_peer;
use crate::timers::TimerKind;

/// Counts an answered transfer (called by the agent leg's answer handler).
pub(crate) fn answered(uri: &str) {
    tracing::info!(%uri, "transfer answered, bridged");
    metrics::counter!("acd_edge_transfers_total", "outcome" => "answered").increment(1);
}

/// Language-neutral prompt played while a transfer rings.
const RINGBACK: &str = "ringback";

impl EdgeCore {
    /// `IvrAction::Transfer`: rings `uri`, the caller on hold music meanwhile.
    /// `timeout_ms` 0 uses the agent ring timeout.
    pub(crate) fn transfer(
        &mut self,
        id: &CallId,
        uri: String,
        timeout_ms: u32,
        token: PlayToken,
        now: Instant,
    ) {
        if !matches!(self.phase_of(id), Some(Phase::Ivr { .. })) {
            return;
        }
        if let Err((reason, label)) = self.ring_out(id, uri.clone(), timeout_ms, token, now) {
            self.fail_at_once(id, &uri, reason, label, now);
        }
    }

    /// Rings `uri` for the call, the caller on ring-back meanwhile; the
    /// phase the call leaves is where a failure returns it. `Err`: (why,
    /// metric label) when nothing could be sent.
    pub(crate) fn ring_out(
        &mut self,
        id: &CallId,
        uri: String,
        timeout_ms: u32,
        token: PlayToken,
        now: Instant,
    ) -> Result<(), (&'static str, &'static str)> {
        let Some(call) = self.calls.get(id) else {
            return Ok(());
        };
        // A name must have been resolved by the shell before the reply came in.
        let Some(peer) = contact_peer(&uri) else {
            return Err(("unresolvable URI", "bad_uri"));
        };
        let Some(ports) = call.ports else {
            return Err(("no media", "no_media"));
        };
        let caller = caller_info(&call.caller.invite, &call.did);
        let mut sdp = LegSdp::new(u64::from(self.rng.next_u32()), call.caller.sdp.codec);
        sdp.port = ports.agent;
        let body = sdp.offer(self.cfg.listen.public_ip);
        let req = self.outbound_invite(id, &uri, &uri, peer, &caller, body);
        tracing::info!(call_id = %id, %uri, peer = %peer.addr, "transferring");
        let key = self.send_request(req.clone(), peer, now);
        self.by_invite
            .insert(key.clone(), (id.clone(), Side::Agent));
        let Some(call) = self.calls.get_mut(id) else {
            return Ok(());
        };
        let back = std::mem::replace(&mut call.phase, Phase::Setup);
        call.phase = Phase::Ringing(Box::new(RingingAgent {
            agent: AgentId(format!("transfer:{uri}")),
            extension: uri,
            invite: req,
            key,
            peer,
            cancelled: false,
            sdp,
            transfer: Some(Box::new(back)),
            forks: Vec::new(),
            main_gone: false,
        }));
        let ring = match timeout_ms {
            0 => self.cfg.ring_timeout,
            ms => Duration::from_millis(u64::from(ms)),
        };
        self.set_timer(id, TimerKind::Ring, ring, now);
        self.play_ringback(id, token);
        Ok(())
    }

    /// The `ringback` prompt while the far end rings (as a caller expects
    /// of a transfer), else the hold music.
    fn play_ringback(&mut self, id: &CallId, token: PlayToken) {
        if !self.cfg.prompts.contains(RINGBACK) {
            return self.play_hold_music(id, token);
        }
        let prompt = RINGBACK.to_string();
        self.media(
            id,
            MediaCommand::Play {
                prompt,
                looping: true,
                token,
            },
        );
    }

    /// The configured hold music to the caller, looping (if it is loaded).
    /// (Also what a returning transfer's caller hears until the flow plays.)
    pub(crate) fn play_hold_music(&mut self, id: &CallId, token: PlayToken) {
        if self.cfg.prompts.contains(&self.cfg.hold_music) {
            let prompt = self.cfg.hold_music.clone();
            self.media(
                id,
                MediaCommand::Play {
                    prompt,
                    looping: true,
                    token,
                },
            );
        }
    }

    fn fail_at_once(
        &mut self,
        id: &CallId,
        uri: &str,
        reason: &str,
        label: &'static str,
        now: Instant,
    ) {
        tracing::warn!(call_id = %id, %uri, reason, "transfer refused");
        metrics::counter!("acd_edge_transfers_total", "outcome" => label).increment(1);
        self.ivr_step(
            id,
            IvrEvent::TransferFailed {
                sip_status: 0,
                reason: reason.into(),
            },
            now,
        );
    }

    /// The transfer of `id` failed (busy, no answer, timer B): back to the
    /// IVR phase it left, and the flow hears `TransferFailed`. `false` when
    /// the call was not transferring (an agent leg failed).
    pub(crate) fn transfer_failed(
        &mut self,
        id: &CallId,
        reason: &str,
        status: u16,
        now: Instant,
    ) -> bool {
        let Some(call) = self.calls.get_mut(id) else {
            return false;
        };
        let Phase::Ringing(r) = &mut call.phase else {
            return false;
        };
        let Some(ivr) = r.transfer.take() else {
            return false;
        };
        let (key, uri, cancelled) = (r.key.clone(), r.extension.clone(), r.cancelled);
        call.phase = *ivr;
        self.by_invite.remove(&key);
        self.cancel_timer(id, TimerKind::Ring);
        self.media(id, MediaCommand::StopPlayback);
        let label = match status {
            _ if cancelled => "no_answer",
            486 | 600 => "busy",
            408 => "timeout",
            _ => "failed",
        };
        tracing::info!(call_id = %id, %uri, status, reason, "transfer failed, back to the flow");
        metrics::counter!("acd_edge_transfers_total", "outcome" => label).increment(1);
        if self
            .phase_of(id)
            .is_some_and(|p| matches!(p, Phase::Closing { .. }))
        {
            // A redirect's transfer: no flow to go back to.
            self.redirect_failed(id, now);
            return true;
        }
        let event = IvrEvent::TransferFailed {
            sip_status: status,
            reason: reason.to_string(),
        };
        self.ivr_step(id, event, now);
        true
    }
}
