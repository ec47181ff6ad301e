//! `DialCallback`: a callback's turn came and an agent is reserved. The
//! edge binds media, dials the customer (through a trunk's `dial`
//! template, or the number as a SIP URI), rings at most `ring_secs`, and
//! reports `CallbackResult`. Answered, the customer's leg becomes the
//! call's caller leg under the virtual id (`<inbound>:cb`): the reserved
//! agent is rung and bridged exactly as for an inbound call.
//!
//! Dialling state is not in snapshots: a hand-over while the customer's
//! phone rings loses that attempt (the distributor's offer times out and
//! the callback is retried); an answered leg is an ordinary call.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use acd_media::Codec;
use acd_sip::dialog::Dialog;
use acd_sip::transaction::build_cancel;
use acd_sip::{Peer, Request, Response, TxKey};

use crate::call::{Call, CallerLeg, CallerState, Established, LegSdp, Phase};
use crate::core::EdgeCore;
use crate::dialogs::next_hop;
use crate::ids::{CallId, Side};
use crate::io::{
    CallbackOutcome, CallerInfo, DialCallback, Enqueue, MediaCommand, MediaPorts, RingTarget,
    ToDistributor,
};
use crate::registrar::contact_peer;
use crate::session_timer;
use crate::timers::TimerKey;

/// A callback being dialled.
#[derive(Debug)]
pub(crate) struct Dialing {
    spec: DialCallback,
    /// The customer's request URI.
    uri: String,
    peer: Peer,
    /// Our INVITE once media is bound.
    out: Option<Outgoing>,
}

#[derive(Debug)]
struct Outgoing {
    invite: Request,
    key: TxKey,
    sdp: LegSdp,
    ports: MediaPorts,
    cancelled: bool,
}

/// Dialling state by virtual call id, and our INVITEs' transactions.
#[derive(Debug, Default)]
pub(crate) struct Dials {
    by_call: HashMap<CallId, Dialing>,
    by_tx: HashMap<TxKey, CallId>,
    /// Answered INVITEs: a resent 2xx gets our ACK again (not a BYE).
    acked: HashMap<TxKey, (Peer, Vec<u8>)>,
}

impl Dials {
    /// The call `invite_key` belongs to ended.
    pub(crate) fn call_ended(&mut self, invite_key: &TxKey) {
        self.acked.remove(invite_key);
    }
}

impl EdgeCore {
    pub(crate) fn dial_callback(&mut self, spec: DialCallback, now: Instant) {
        let id = spec.call.clone();
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        if self.calls.contains_key(&id) || self.dials.by_call.contains_key(&id) {
            // Sent again after a fail-over or a re-attach.
            metrics::counter!("acd_edge_callback_dials_repeated_total").increment(1);
            tracing::info!("repeated callback dial ignored");
            return;
        }
        let uri = match self.dial_uri(&spec.trunk, &spec.number) {
            Ok(uri) => uri,
            Err(why) => return self.dial_refused(&id, why, "bad_target"),
        };
        let Some(peer) = contact_peer(&uri) else {
            return self.dial_refused(&id, "the dial URI is not an IP address", "bad_uri");
        };
        tracing::info!(%uri, attempt = spec.attempt, agent = %spec.agent, "dialling callback");
        self.dials.by_call.insert(
            id.clone(),
            Dialing {
                spec,
                uri,
                peer,
                out: None,
            },
        );
        self.media(
            &id,
            MediaCommand::Allocate {
                caller_remote: None,
                caller_codec: Codec::Pcmu,
            },
        );
        let _ = now;
    }

    /// Whether the customer of callback `id` is being dialled.
    pub(crate) fn is_dialling(&self, id: &CallId) -> bool {
        self.dials.by_call.contains_key(id)
    }

    /// The request URI for `number`: the trunk's `dial` template, or the
    /// number itself as a SIP URI.
    fn dial_uri(&self, trunk: &str, number: &str) -> Result<String, &'static str> {
        if trunk.is_empty() {
            return if number.starts_with("sip:") {
                Ok(number.to_string())
            } else {
                Err("no trunk and the number is not a SIP URI")
            };
        }
        let Some(def) = self.cfg.trunks.iter().find(|t| t.name == trunk) else {
            return Err("unknown trunk");
        };
        let Some(template) = &def.dial else {
            return Err("the trunk has no dial template");
        };
        // Only what a number may hold goes into the URI.
        if number.is_empty()
            || !number
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+*#".contains(c))
        {
            return Err("the number has characters a SIP user part cannot take");
        }
        Ok(template.replace("{number}", number))
    }

    fn dial_refused(&mut self, id: &CallId, why: &str, label: &'static str) {
        metrics::counter!("acd_edge_callback_dials_total", "outcome" => label).increment(1);
        tracing::warn!(call_id = %id, why, "callback cannot be dialled");
        self.report(ToDistributor::CallbackResult {
            call: id.clone(),
            outcome: CallbackOutcome::Failed,
            sip_status: 0,
        });
    }

    /// Media for a callback is bound: send the INVITE. `false` if `id` is
    /// not a callback being dialled.
    pub(crate) fn dial_media_ready(
        &mut self,
        id: &CallId,
        ports: MediaPorts,
        now: Instant,
    ) -> bool {
        let Some(d) = self.dials.by_call.get(id) else {
            return false;
        };
        if d.out.is_some() {
            return true;
        }
        let (uri, peer, ring_secs) = (d.uri.clone(), d.peer, d.spec.ring_secs);
        let from = callback_identity(&d.spec.caller, &self.cfg.realm);
        let mut sdp = LegSdp::new(u64::from(self.rng.next_u32()), Codec::Pcmu);
        sdp.port = ports.caller;
        let body = sdp.offer(self.cfg.listen.public_ip);
        let invite = self.outbound_invite(id, &uri, &uri, peer, &from, body);
        let key = self.send_request(invite.clone(), peer, now);
        self.dials.by_tx.insert(key.clone(), id.clone());
        if let Some(d) = self.dials.by_call.get_mut(id) {
            d.out = Some(Outgoing {
                invite,
                key,
                sdp,
                ports,
                cancelled: false,
            });
        }
        let ring = Duration::from_secs(u64::from(ring_secs.max(1)));
        self.timers.set(TimerKey::Dial(id.clone()), now + ring);
        true
    }

    /// Media could not be bound for a callback. `false` if not one.
    pub(crate) fn dial_media_failed(&mut self, id: &CallId) -> bool {
        if self.dials.by_call.remove(id).is_none() {
            return false;
        }
        self.dial_refused(id, "no media", "no_media");
        true
    }

    /// The customer did not answer within `ring_secs`: CANCEL; the 487
    /// reports no answer.
    pub(crate) fn dial_timeout(&mut self, id: &CallId, now: Instant) {
        let Some(out) = self
            .dials
            .by_call
            .get_mut(id)
            .and_then(|d| d.out.as_mut())
            .filter(|o| !o.cancelled)
        else {
            return;
        };
        out.cancelled = true;
        let (cancel, peer) = (build_cancel(&out.invite), self.dials.by_call[id].peer);
        tracing::info!(call_id = %id, "customer did not answer the callback in time");
        self.send_request(cancel, peer, now);
    }

    /// A response to a callback INVITE. `false` if `key` is not one.
    pub(crate) fn dial_response(&mut self, key: &TxKey, resp: Response, now: Instant) -> bool {
        if let Some((to, ack)) = self.dials.acked.get(key) {
            if resp.is_success() {
                let (to, ack) = (*to, ack.clone());
                self.transmit(to, ack);
            }
            return true;
        }
        let Some(id) = self.dials.by_tx.get(key).cloned() else {
            return false;
        };
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        if resp.is_provisional() {
            return true;
        }
        let cancelled = self
            .dials
            .by_call
            .get(&id)
            .and_then(|d| d.out.as_ref())
            .is_some_and(|o| o.cancelled);
        if resp.is_success() && !cancelled {
            self.dial_answered(&id, resp, now);
            return true;
        }
        let Some(d) = self.forget_dial(&id) else {
            return true;
        };
        if resp.is_success() {
            // Our CANCEL crossed the answer: hang up.
            if let Some(out) = &d.out {
                self.ack_and_bye(&out.invite, &resp, now);
            }
        }
        let outcome = match resp.status {
            _ if cancelled => CallbackOutcome::NoAnswer,
            486 | 600 => CallbackOutcome::Busy,
            408 | 480 => CallbackOutcome::NoAnswer,
            _ => CallbackOutcome::Failed,
        };
        self.dial_failed(&id, outcome, resp.status);
        true
    }

    /// Timer B of a callback INVITE. `false` if `key` is not one.
    pub(crate) fn dial_tx_timeout(&mut self, key: &TxKey) -> bool {
        let Some(id) = self.dials.by_tx.get(key).cloned() else {
            return false;
        };
        if self.forget_dial(&id).is_some() {
            self.dial_failed(&id, CallbackOutcome::NoAnswer, 408);
        }
        true
    }

    fn dial_failed(&mut self, id: &CallId, outcome: CallbackOutcome, status: u16) {
        let label = match outcome {
            CallbackOutcome::Busy => "busy",
            CallbackOutcome::NoAnswer => "no_answer",
            _ => "failed",
        };
        metrics::counter!("acd_edge_callback_dials_total", "outcome" => label).increment(1);
        tracing::info!(call_id = %id, status, ?outcome, "callback not answered");
        self.media(id, MediaCommand::Release);
        self.report(ToDistributor::CallbackResult {
            call: id.clone(),
            outcome,
            sip_status: status,
        });
    }

    /// Drops the dialling state of `id` (indexes and timer included).
    fn forget_dial(&mut self, id: &CallId) -> Option<Dialing> {
        let d = self.dials.by_call.remove(id)?;
        if let Some(out) = &d.out {
            self.dials.by_tx.remove(&out.key);
        }
        self.timers.cancel(&TimerKey::Dial(id.clone()));
        Some(d)
    }

    /// The customer answered: ACK, the leg becomes the call's caller leg,
    /// `CallbackResult{ANSWERED}`, then the reserved agent is rung.
    fn dial_answered(&mut self, id: &CallId, resp: Response, now: Instant) {
        let Some(d) = self.forget_dial(id) else {
            return;
        };
        let Some(out) = d.out else {
            return;
        };
        let dialog = match Dialog::uac(&out.invite, &resp) {
            Ok(dialog) => dialog,
            Err(e) => {
                tracing::warn!(error = %e, "customer's 200 OK cannot form a dialog");
                self.ack_and_bye(&out.invite, &resp, now);
                return self.dial_failed(id, CallbackOutcome::Failed, resp.status);
            }
        };
        let branch = self.rng.branch();
        let via = self.via(d.peer.transport);
        let ack_to = next_hop(&dialog, d.peer);
        let ack = dialog.ack_for_2xx(1, &via, &branch).to_bytes();
        self.transmit(ack_to, ack.clone());
        self.dials.acked.insert(out.key.clone(), (ack_to, ack));
        let mut sdp = out.sdp;
        if let Some((remote, codec, pt, direction)) = answer_media(&resp.body) {
            sdp.codec = codec;
            sdp.pt = pt;
            sdp.remote = Some(remote);
            sdp.direction = direction;
            self.media(
                id,
                MediaCommand::Update {
                    side: Side::Caller,
                    remote: Some(remote),
                    codec,
                    direction,
                },
            );
        }
        let timer = session_timer::from_uac_2xx(&resp);
        self.by_dialog.insert(
            (
                dialog.call_id.clone(),
                dialog.local_tag.clone(),
                dialog.remote_tag.clone(),
            ),
            (id.clone(), Side::Caller),
        );
        let spec = d.spec;
        let call = Call {
            id: id.clone(),
            did: spec.caller.did.clone(),
            flow: String::new(),
            caller: CallerLeg {
                invite: out.invite,
                invite_key: out.key,
                peer: d.peer,
                local_tag: dialog.local_tag.clone(),
                offer: None,
                sdp,
                state: CallerState::Answered(Box::new(Established {
                    dialog,
                    peer: d.peer,
                    awaiting_ack: None,
                    session_timer: timer,
                    reinvite_out: None,
                    reoffer_pending: false,
                })),
            },
            ports: Some(out.ports),
            phase: Phase::Queued,
            enqueued: Some(Enqueue {
                call: id.clone(),
                queue: String::new(),
                priority: 0,
                caller: spec.caller.clone(),
                skills: BTreeMap::new(),
            }),
            trunk: None,
            // An outbound leg: the inbound call it comes from had its note.
            note: None,
        };
        self.calls.insert(id.clone(), call);
        if let Some(st) = timer {
            self.arm_session_timer(id, Side::Caller, st, now);
        }
        metrics::counter!("acd_edge_callback_dials_total", "outcome" => "answered").increment(1);
        tracing::info!(agent = %spec.agent, "customer answered the callback; ringing the agent");
        self.report(ToDistributor::CallbackResult {
            call: id.clone(),
            outcome: CallbackOutcome::Answered,
            sip_status: resp.status,
        });
        let token = self.take_token();
        self.play_hold_music(id, token);
        let target = RingTarget {
            agent: spec.agent,
            extension: spec.extension,
            contact: spec.contact,
            auto_answer: spec.auto_answer,
        };
        self.connect_agent(id.clone(), target, Vec::new(), String::new(), now);
    }
}

/// Who the customer sees calling: the number they called (the DID), as a
/// user of our realm.
fn callback_identity(caller: &CallerInfo, realm: &str) -> CallerInfo {
    let user = if caller.did.is_empty() {
        "acd"
    } else {
        &caller.did
    };
    CallerInfo {
        from_uri: format!("sip:{user}@{realm}"),
        number: user.to_string(),
        ..Default::default()
    }
}

/// Address, codec, its payload type and our direction from the customer's answer.
fn answer_media(body: &[u8]) -> Option<(SocketAddr, Codec, u8, acd_media::sdp::Direction)> {
    let a = acd_media::parse_sdp(body).ok()?;
    let codec = a.payload_types.iter().find_map(|pt| a.codec_for(*pt))?;
    let pt = a.pt_for(codec)?;
    Some((
        SocketAddr::new(a.conn_ip, a.audio_port),
        codec,
        pt,
        a.direction.reversed(),
    ))
}
