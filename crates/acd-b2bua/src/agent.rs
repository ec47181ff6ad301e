//! The agent leg: commands from the distributor, the INVITE to the agent's
//! softphone, its answer or failure, ring-no-answer, and responses to our
//! client transactions.

use std::net::SocketAddr;
use std::time::Instant;

use acd_sip::dialog::Dialog;
use acd_sip::message::uri_user;
use acd_sip::transaction::build_cancel;
use acd_sip::{Method, Request, Response, TxKey};

use crate::call::{AgentLeg, CallerState, Established, Fork, LegSdp, Phase, RingingAgent};
use crate::core::{host_port, ClientTx, EdgeCore, ALLOW, SUPPORTED};
use crate::dialogs::next_hop;
use crate::ids::{AgentId, CallId, Side};
use crate::incoming::caller_info;
use crate::io::{FromDistributor, MediaCommand, RingTarget, ToDistributor};
use crate::registrar::contact_peer;
use crate::session_timer;
use crate::teardown::EndReason;
use crate::timers::{TimerKey, TimerKind};

impl EdgeCore {
    pub(crate) fn distributor(&mut self, term: u64, cmd: FromDistributor, now: Instant) {
        // Fencing: never act on a leader older than one already heard.
        if term < self.term {
            metrics::counter!("acd_edge_stale_term_total").increment(1);
            tracing::warn!(
                term,
                current = self.term,
                "command from a stale distributor refused"
            );
            return;
        }
        self.term = term;
        match cmd {
            FromDistributor::Connect {
                call,
                agent,
                extension,
                contact,
                auto_answer,
                ring_also,
                survey_flow,
            } => {
                let target = RingTarget {
                    agent,
                    extension,
                    contact,
                    auto_answer,
                };
                self.connect_agent(call, target, ring_also, survey_flow, now)
            }
            FromDistributor::Bindings { full, bindings } => self.site_bindings(full, bindings, now),
            FromDistributor::Queued {
                call,
                queue,
                position,
            } => {
                if self.calls.contains_key(&call) {
                    tracing::info!(call_id = %call, %queue, position, "queued");
                }
            }
            FromDistributor::Unknown { call } => self.enqueue_again(&call),
            FromDistributor::Rejected { call, reason } => {
                if self.calls.contains_key(&call) {
                    tracing::warn!(call_id = %call, %reason, "distributor rejected the call");
                    self.end_call(&call, EndReason::Rejected, now);
                }
            }
            FromDistributor::Redirect {
                call,
                target,
                reason,
            } => self.redirect(&call, target, &reason, now),
            FromDistributor::Announce {
                call,
                position,
                estimated_wait_secs,
            } => self.announce(&call, position, estimated_wait_secs),
            FromDistributor::Dial(dial) => self.dial_callback(*dial, now),
            FromDistributor::Release {
                call,
                agent,
                reason,
            } => self.release_agent(&call, &agent, &reason, now),
        }
    }

    /// The distributor lost this call: a caller still waiting is enqueued
    /// again rather than left on hold.
    fn enqueue_again(&mut self, id: &CallId) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let (Phase::Queued, Some(enqueue)) = (&call.phase, call.enqueued.clone()) else {
            return;
        };
        tracing::warn!(call_id = %id, queue = %enqueue.queue, "distributor lost the call; enqueuing it again");
        metrics::counter!("acd_edge_reenqueued_calls_total").increment(1);
        self.report(ToDistributor::Enqueue(enqueue));
    }

    pub(crate) fn connect_agent(
        &mut self,
        id: CallId,
        target: RingTarget,
        ring_also: Vec<RingTarget>,
        survey_flow: String,
        now: Instant,
    ) {
        let agent = target.agent.clone();
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let Some(call) = self.calls.get(&id) else {
            if self.is_dialling(&id) {
                // A callback's customer is being dialled: the agent is rung
                // once they answer.
                tracing::info!(%agent, "connect for a callback still dialling; ignored");
                return;
            }
            // The caller left while the offer was on its way.
            self.report(ToDistributor::Abandon { call: id });
            return;
        };
        if already_connecting(&call.phase, &agent) {
            // The distributor sends an offer again after a fail-over or a
            // re-attach; the agent's phone already rings (or talks).
            tracing::info!(%agent, phase = call.phase.name(), "repeated connect for the same agent ignored");
            metrics::counter!("acd_edge_connect_repeated_total").increment(1);
            return;
        }
        if !matches!(call.phase, Phase::Queued) {
            tracing::warn!(%agent, phase = call.phase.name(), "connect for a call not waiting in a queue; refused");
            metrics::counter!("acd_edge_connect_refused_total", "reason" => "not_queued")
                .increment(1);
            return self.report(ToDistributor::AgentFailed {
                call: id,
                agent,
                reason: "call is not waiting".into(),
                sip_status: 0,
            });
        }
        let Some(leg) = self.ring_leg(&id, &target, now) else {
            let extension = target.extension;
            tracing::warn!(%agent, %extension, "agent's extension is not registered");
            return self.report(ToDistributor::AgentFailed {
                call: id,
                agent,
                reason: format!("extension {extension} not registered"),
                sip_status: 0,
            });
        };
        // The caller hears the hold music again, never half an announcement.
        self.stop_announcement(&id);
        let forks = ring_also
            .iter()
            .filter_map(|t| self.ring_leg(&id, t, now))
            .collect();
        if let Some(note) = self.note_mut(&id) {
            // This queue's survey, if any (a transfer's next offer may differ).
            note.survey_flow = survey_flow;
        }
        if let Some(call) = self.calls.get_mut(&id) {
            call.phase = Phase::Ringing(Box::new(RingingAgent {
                agent: leg.agent,
                extension: leg.extension,
                invite: leg.invite,
                key: leg.key,
                peer: leg.peer,
                cancelled: false,
                sdp: leg.sdp,
                transfer: None,
                forks,
                main_gone: false,
            }));
        }
        let ring = self.cfg.ring_timeout;
        self.set_timer(&id, TimerKind::Ring, ring, now);
    }

    /// Sends the INVITE that rings `target`'s phone for call `id` (our offer
    /// on the call's agent port); `None` when the extension is nowhere
    /// registered.
    fn ring_leg(&mut self, id: &CallId, target: &RingTarget, now: Instant) -> Option<Fork> {
        let RingTarget {
            agent,
            extension,
            contact: offered,
            auto_answer,
        } = target;
        let (contact, peer, via) = self.agent_target(extension, offered.as_ref(), now)?;
        metrics::counter!("acd_edge_agent_routes_total", "via" => via).increment(1);
        let call = self.calls.get(id)?;
        let ip = self.cfg.listen.public_ip;
        let (caller_codec, agent_port, caller) = {
            let c = &call.caller;
            let port = call.ports.map(|p| p.agent).unwrap_or(0);
            (c.sdp.codec, port, caller_info(&c.invite, &call.did))
        };
        let mut sdp = LegSdp::new(u64::from(self.rng.next_u32()), caller_codec);
        sdp.port = agent_port;
        let body = sdp.offer(ip);
        let to = format!("sip:{extension}@{}", self.cfg.realm);
        let mut req = self.outbound_invite(id, &contact, &to, peer, &caller, body);
        if *auto_answer {
            self.ask_auto_answer(&mut req);
        }
        tracing::info!(%agent, %extension, %contact, peer = %peer.addr, via, auto_answer, "ringing agent");
        let key = self.send_request(req.clone(), peer, now);
        self.by_invite
            .insert(key.clone(), (id.clone(), Side::Agent));
        Some(Fork {
            agent: agent.clone(),
            extension: extension.clone(),
            invite: req,
            key,
            peer,
            sdp,
        })
    }

    /// The INVITE that rings an agent's phone (or a transfer target): the
    /// caller shown as From (the call pop on the phone), `to` as To, our
    /// offer, our session timer and the call's id for the phone's logs.
    pub(crate) fn outbound_invite(
        &mut self,
        id: &CallId,
        contact: &str,
        to: &str,
        peer: acd_sip::Peer,
        caller: &crate::io::CallerInfo,
        offer: String,
    ) -> Request {
        let branch = self.rng.branch();
        let from_tag = self.rng.tag();
        let sip_call_id = format!("{:016x}@acd", self.rng.next_u64());
        let realm = &self.cfg.realm;
        let display = if caller.display_name.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", caller.display_name.replace('"', ""))
        };
        let caller_user = uri_user(&caller.from_uri).unwrap_or("anonymous");
        let mut req = Request::new(Method::Invite, contact.to_string());
        let h = &mut req.headers;
        h.push(
            "Via",
            format!("{};branch={branch};rport", self.via(peer.transport)),
        );
        h.push("Max-Forwards", "70");
        h.push(
            "From",
            format!("{display}<sip:{caller_user}@{realm}>;tag={from_tag}"),
        );
        h.push("To", format!("<{to}>"));
        h.push("Call-ID", sip_call_id);
        h.push("CSeq", "1 INVITE");
        h.push(
            "Contact",
            format!("<{}>", self.local_contact(peer.transport)),
        );
        h.push("Allow", ALLOW);
        h.push("Supported", SUPPORTED);
        h.push(
            "Session-Expires",
            self.cfg.session_expires.as_secs().to_string(),
        );
        h.push("X-ACD-Call-ID", id.0.clone());
        h.push("Content-Type", "application/sdp");
        req.body = offer.into_bytes();
        req
    }

    /// Headers common softphones honour to answer by themselves: Call-Info
    /// answer-after=0 (Polycom, Yealink, Linphone) and Alert-Info
    /// info=alert-autoanswer (Grandstream, Snom).
    fn ask_auto_answer(&self, req: &mut Request) {
        let edge = host_port(self.cfg.listen.public_ip, self.cfg.listen.udp_port);
        req.headers
            .push("Call-Info", format!("<sip:{edge}>;answer-after=0"));
        req.headers
            .push("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer");
    }

    /// Ring-no-answer: CANCEL the agent's INVITE; its 487 reports the failure.
    pub(crate) fn ring_timeout(&mut self, id: &CallId, now: Instant) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Phase::Ringing(r) = &mut call.phase else {
            return;
        };
        if r.cancelled {
            return;
        }
        r.cancelled = true;
        tracing::info!(agent = %r.agent, "agent did not answer in time");
        let (invite, peer, main_gone) = (r.invite.clone(), r.peer, r.main_gone);
        let agent = r.agent.clone();
        self.cancel_forks(id, now);
        if main_gone {
            // Only other phones rang, now cancelled: nothing else will report.
            return self.agent_failed(id, agent, "no answer", 487, now);
        }
        self.send_request(build_cancel(&invite), peer, now);
    }

    /// Responses to our client transactions.
    pub(crate) fn response(&mut self, key: &TxKey, resp: Response, now: Instant) {
        if key.method == Method::Invite && self.dial_response(key, resp.clone(), now) {
            return;
        }
        if let Some((id, Side::Agent)) = self.by_invite.get(key).cloned() {
            let span = tracing::info_span!("call", call_id = %id);
            let _e = span.enter();
            return self.agent_invite_response(&id, key, resp, now);
        }
        if let Some(invite) = self.orphans.get(key).cloned() {
            if resp.is_success() {
                self.ack_and_bye(&invite, &resp, now);
            }
            return;
        }
        if let Some((id, side, purpose)) = self.by_client_tx.get(key).cloned() {
            if resp.status >= 200 {
                self.by_client_tx.remove(key);
            }
            if purpose == ClientTx::Reinvite {
                self.reinvite_response(&id, side, key, resp, now);
            }
            return;
        }
        if key.method == Method::Invite && resp.is_success() {
            // A 2xx for an INVITE we no longer know: the phone is in a call
            // nobody will use. ACK and BYE it (§13.2.2.4, §15).
            metrics::counter!("acd_sip_orphan_2xx_total").increment(1);
            self.ack_and_bye_unknown(&resp, now);
        }
    }

    fn agent_invite_response(&mut self, id: &CallId, key: &TxKey, resp: Response, now: Instant) {
        if self.fork_response(id, key, &resp, now) {
            return;
        }
        let Some(call) = self.calls.get(id) else {
            return;
        };
        match &call.phase {
            Phase::Ringing(r) if r.key == *key => {
                if resp.is_provisional() {
                    return;
                }
                if resp.is_success() && !r.cancelled {
                    return self.agent_answered(id, resp, now);
                }
                let (agent, invite, cancelled) = (r.agent.clone(), r.invite.clone(), r.cancelled);
                if resp.is_success() {
                    // Our CANCEL crossed the answer: hang the phone up.
                    self.ack_and_bye(&invite, &resp, now);
                }
                if self.main_leg_failed(id) {
                    return;
                }
                let reason = if cancelled {
                    "no answer".to_string()
                } else {
                    format!("{} {}", resp.status, resp.reason)
                };
                self.agent_failed(id, agent, &reason, resp.status, now);
            }
            Phase::Bridged(a) if a.key == *key && resp.is_success() => {
                // The agent retransmits its 2xx: our ACK was lost.
                let (to, ack) = (a.ack_to, a.ack.clone());
                self.transmit(to, ack);
            }
            _ => {
                if resp.is_success() {
                    self.ack_and_bye_unknown(&resp, now);
                }
            }
        }
    }

    pub(crate) fn agent_answered(&mut self, id: &CallId, resp: Response, now: Instant) {
        self.cancel_forks(id, now);
        let branch = self.rng.branch();
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Phase::Ringing(r) = &call.phase else {
            return;
        };
        let r = r.clone();
        let dialog = match Dialog::uac(&r.invite, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "agent's 200 OK cannot form a dialog");
                metrics::counter!("acd_agent_leg_failures_total", "reason" => "bad_2xx")
                    .increment(1);
                return self.agent_failed(id, r.agent, "unusable 200 OK", 500, now);
            }
        };
        let via = self.via(r.peer.transport);
        let ack = dialog.ack_for_2xx(1, &via, &branch);
        let ack_to = next_hop(&dialog, r.peer);
        let ack_bytes = ack.to_bytes();
        self.transmit(ack_to, ack_bytes.clone());
        self.cancel_timer(id, TimerKind::Ring);
        let mut sdp = r.sdp.clone();
        let answer = acd_media::parse_sdp(&resp.body).ok();
        let media = answer.as_ref().and_then(|a| {
            let codec = a.payload_types.iter().find_map(|pt| a.codec_for(*pt))?;
            Some((SocketAddr::new(a.conn_ip, a.audio_port), codec, a))
        });
        if let Some((remote, codec, a)) = &media {
            sdp.codec = *codec;
            sdp.pt = a.pt_for(*codec).unwrap_or(sdp.pt);
            sdp.remote = Some(*remote);
            sdp.direction = a.direction.reversed();
        }
        self.by_dialog.insert(
            (
                dialog.call_id.clone(),
                dialog.local_tag.clone(),
                dialog.remote_tag.clone(),
            ),
            (id.clone(), Side::Agent),
        );
        let timer = session_timer::from_uac_2xx(&resp);
        let call = match self.calls.get_mut(id) {
            Some(c) => c,
            None => return,
        };
        call.phase = Phase::Bridged(Box::new(AgentLeg {
            agent: r.agent.clone(),
            key: r.key.clone(),
            invite_cseq: 1,
            ack: ack_bytes,
            ack_to,
            est: Established {
                dialog,
                peer: r.peer,
                awaiting_ack: None,
                session_timer: timer,
                reinvite_out: None,
                reoffer_pending: false,
            },
            sdp,
            transfer: r.transfer.as_ref().map(|_| r.extension.clone()),
        }));
        match media {
            Some((agent_remote, agent_codec, _)) => self.media(
                id,
                MediaCommand::Bridge {
                    agent_remote,
                    agent_codec,
                },
            ),
            None => tracing::warn!("agent answered without usable SDP; no media bridge"),
        }
        if let Some(st) = timer {
            self.arm_session_timer(id, Side::Agent, st, now);
        }
        if r.transfer.is_some() {
            crate::transfer::answered(&r.extension);
        } else {
            tracing::info!(agent = %r.agent, "agent answered, bridged");
            metrics::counter!("acd_calls_bridged_total").increment(1);
            self.report(ToDistributor::AgentAnswered {
                call: id.clone(),
                agent: r.agent,
            });
        }
        let caller_answered = self
            .calls
            .get(id)
            .is_some_and(|c| matches!(c.caller.state, CallerState::Answered(_)));
        if !caller_answered {
            self.answer_caller(id, now);
        }
    }

    pub(crate) fn agent_failed(
        &mut self,
        id: &CallId,
        agent: AgentId,
        reason: &str,
        status: u16,
        now: Instant,
    ) {
        if self.transfer_failed(id, reason, status, now) {
            return;
        }
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if let Phase::Ringing(r) = &call.phase {
            self.by_invite.remove(&r.key);
        }
        call.phase = Phase::Queued;
        self.timers
            .cancel(&TimerKey::Call(id.clone(), TimerKind::Ring));
        tracing::warn!(%agent, %reason, "agent leg failed, call back to queue");
        metrics::counter!("acd_agent_leg_failures_total", "reason" => "response").increment(1);
        self.report(ToDistributor::AgentFailed {
            call: id.clone(),
            agent,
            reason: reason.to_string(),
            sip_status: status,
        });
    }

    /// Timer B or F of one of our client transactions.
    pub(crate) fn client_timeout(&mut self, key: &TxKey, now: Instant) {
        if self.dial_tx_timeout(key) {
            return;
        }
        if let Some((id, Side::Agent)) = self.by_invite.get(key).cloned() {
            if let Some(Phase::Ringing(r)) = self.phase_of(&id) {
                if r.key == *key {
                    let agent = r.agent.clone();
                    return self.agent_failed(
                        &id,
                        agent,
                        "agent did not respond (timer B)",
                        408,
                        now,
                    );
                }
            }
            return;
        }
        if let Some((id, side, ClientTx::Reinvite)) = self.by_client_tx.remove(key) {
            tracing::warn!(call_id = %id, ?side, "re-INVITE timed out: the peer is gone");
            metrics::counter!("acd_calls_dead_total", "reason" => "reinvite_timeout").increment(1);
            self.end_call(&id, EndReason::DialogGone(side), now);
        }
    }

    /// ACK a 2xx to `invite` and hang up at once (§15: a UAC that does not
    /// want the session sends ACK then BYE).
    pub(crate) fn ack_and_bye(&mut self, invite: &Request, resp: &Response, now: Instant) {
        let Ok(mut d) = Dialog::uac(invite, resp) else {
            return;
        };
        let peer = contact_peer(&d.remote_target).or_else(|| contact_peer(&invite.uri));
        let Some(peer) = peer else {
            return;
        };
        let dialog = (d.call_id.clone(), d.remote_tag.clone());
        if let Some((to, ack)) = self.hung_up_2xx.get(&dialog) {
            // The phone did not get our ACK and resends its 2xx: ACK again;
            // our BYE is already under way.
            let (to, ack) = (*to, ack.clone());
            return self.transmit(to, ack);
        }
        let via = self.via(peer.transport);
        let (b1, b2) = (self.rng.branch(), self.rng.branch());
        let to = next_hop(&d, peer);
        let ack = d.ack_for_2xx(1, &via, &b1).to_bytes();
        self.transmit(to, ack.clone());
        let linger = self.cfg.sip.t1x64();
        self.timers.set(
            TimerKey::HungUp(dialog.0.clone(), dialog.1.clone()),
            now + linger,
        );
        self.hung_up_2xx.insert(dialog, (to, ack));
        let bye = d.request(Method::Bye, &via, &b2, "");
        let key = self.send_request(bye, to, now);
        metrics::counter!("acd_agent_legs_hung_up_total", "reason" => "late_2xx").increment(1);
        tracing::info!(bye = %key.branch, "late 200 OK acknowledged and hung up");
    }

    fn ack_and_bye_unknown(&mut self, resp: &Response, now: Instant) {
        let Some(contact) = resp.headers.contact_uri().map(str::to_string) else {
            return;
        };
        let mut req = Request::new(Method::Invite, contact);
        for h in ["From", "Call-ID"] {
            if let Some(v) = resp.headers.get(h) {
                req.headers.push(h, v);
            }
        }
        req.headers.push("To", resp.headers.get("To").unwrap_or(""));
        req.headers.push("CSeq", "1 INVITE");
        self.ack_and_bye(&req, resp, now);
    }
}

/// The call already rings `agent` or is bridged to them.
fn already_connecting(phase: &Phase, agent: &AgentId) -> bool {
    match phase {
        Phase::Ringing(r) => r.agent == *agent,
        Phase::Bridged(leg) => leg.agent == *agent,
        _ => false,
    }
}
