//! The agent leg: commands from the distributor, the INVITE to the agent's
//! softphone, its answer or failure, ring-no-answer.

use std::net::SocketAddr;
use std::time::Instant;

use acd_media::{Codec, SessionDesc};
use acd_proto::v1 as pb;
use acd_sip::dialog::Dialog;
use acd_sip::message::uri_user;
use acd_sip::transaction::{build_cancel, new_branch, new_tag};
use acd_sip::{Method, Request, Response, TxKey};
use pb::edge_message::Kind as ToDist;

use super::call::*;
use super::*;
use crate::media::MediaCmd;
use crate::registrar::contact_peer;

impl Engine {
    // ----- distributor ----------------------------------------------------

    pub(super) fn distributor(&mut self, msg: pb::DistributorMessage, now: Instant) {
        // Fencing: never act on a leader older than one already heard.
        if msg.term < self.term {
            metrics::counter!("acd_edge_stale_term_total").increment(1);
            tracing::warn!(
                term = msg.term,
                current = self.term,
                "command from a stale distributor refused"
            );
            return;
        }
        self.term = msg.term;
        use pb::distributor_message::Kind;
        match msg.kind {
            Some(Kind::Connect(c)) => self.connect_agent(c, now),
            Some(Kind::Queued(q)) => {
                if let Some(call) = self.calls.get(&q.call_id) {
                    tracing::info!(parent: &call.span, queue = %q.queue_id, position = q.position, "queued");
                }
            }
            Some(Kind::Unknown(u)) => self.enqueue_again(&u.call_id),
            Some(Kind::Rejected(r)) => {
                if let Some(call) = self.calls.get(&r.call_id) {
                    tracing::warn!(parent: &call.span, reason = %r.reason, "distributor rejected the call");
                    self.end_call(&r.call_id, EndReason::Rejected, now);
                }
            }
            None => {}
        }
    }

    /// The distributor lost this call (restarted without a standby): a
    /// caller still waiting is enqueued again rather than left on hold.
    pub(super) fn enqueue_again(&mut self, id: &str) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let (Phase::Queued, Some(enqueue)) = (&call.phase, call.enqueued.clone()) else {
            return;
        };
        tracing::warn!(parent: &call.span, queue = %enqueue.queue_id, "distributor lost the call; enqueuing it again");
        metrics::counter!("acd_edge_reenqueued_calls_total").increment(1);
        self.dist.send(ToDist::Enqueue(enqueue));
    }

    pub(super) fn connect_agent(&mut self, c: pb::ConnectAgent, now: Instant) {
        let Some(call) = self.calls.get(&c.call_id) else {
            // The caller left while the offer was on its way.
            self.dist
                .send(ToDist::Abandon(pb::AbandonCall { call_id: c.call_id }));
            return;
        };
        let _e = call.span.clone().entered();
        if call.agent.is_some() {
            tracing::warn!(agent = %c.agent_id, "connect while an agent leg is up; ignored");
            return;
        }
        let Some(binding) = self.registrar.lookup(&c.extension, now) else {
            tracing::warn!(agent = %c.agent_id, extension = %c.extension, "agent's extension is not registered");
            self.dist.send(ToDist::AgentFailed(pb::AgentFailed {
                call_id: c.call_id,
                agent_id: c.agent_id,
                reason: format!("extension {} not registered", c.extension),
                sip_status: 0,
            }));
            return;
        };
        let peer = contact_peer(&binding.contact).unwrap_or(binding.peer);
        let codecs: Vec<Codec> = std::iter::once(call.caller.codec)
            .chain(SUPPORTED.into_iter().filter(|k| *k != call.caller.codec))
            .collect();
        let sdp = acd_media::build_offer(
            self.cfg.public_ip,
            call.media.agent_port,
            &codecs,
            Some(101),
            rand::random::<u32>().into(),
        );
        let caller = caller_data(&call.caller.invite, &call.did);
        let branch = new_branch(rand::random());
        let sip_call_id = format!("{:016x}@acd", rand::random::<u64>());
        let mut req = Request::new(Method::Invite, binding.contact.clone());
        req.headers.push(
            "Via",
            format!("{};branch={branch};rport", self.via(peer.transport)),
        );
        req.headers.push("Max-Forwards", "70");
        let display = if caller.display_name.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", caller.display_name)
        };
        let caller_user = uri_user(&caller.from_uri).unwrap_or("anonymous");
        req.headers.push(
            "From",
            format!(
                "{display}<sip:{caller_user}@{}>;tag={}",
                self.cfg.realm,
                new_tag(rand::random())
            ),
        );
        req.headers
            .push("To", format!("<sip:{}@{}>", c.extension, self.cfg.realm));
        req.headers.push("Call-ID", sip_call_id.clone());
        req.headers.push("CSeq", "1 INVITE");
        req.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(peer.transport)),
        );
        req.headers.push("Allow", ALLOW);
        req.headers.push("X-ACD-Call-ID", c.call_id.clone());
        req.headers.push("Content-Type", "application/sdp");
        req.body = sdp.clone().into_bytes();
        tracing::info!(agent = %c.agent_id, extension = %c.extension, contact = %binding.contact, "ringing agent");
        let key = self.tx.send_request(req.clone(), peer, now);
        self.dialogs
            .insert(sip_call_id, (c.call_id.clone(), Side::Agent));
        if let Some(call) = self.calls.get_mut(&c.call_id) {
            call.phase = Phase::Connecting;
            call.agent = Some(AgentLeg {
                agent_id: c.agent_id,
                invite: req,
                key,
                peer,
                sdp,
                ring_deadline: Some(now + self.cfg.offer_timeout),
                dialog: None,
                cancelled: false,
            });
        }
    }

    // ----- responses to our requests --------------------------------------

    pub(super) fn response(&mut self, key: &TxKey, resp: Response, now: Instant) {
        if key.method != Method::Invite {
            return; // BYE/CANCEL outcomes need no action
        }
        let call_id = resp.headers.call_id().unwrap_or_default().to_string();
        let Some((id, Side::Agent)) = self.dialogs.get(&call_id).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            // Call gone but the agent answered late: ACK and hang up that leg.
            if resp.is_success() {
                self.ack_and_bye_orphan(&resp, now);
            }
            return;
        };
        let _e = call.span.clone().entered();
        let Some(agent) = call.agent.as_mut().filter(|a| a.key == *key) else {
            if resp.is_success() {
                self.ack_and_bye_orphan(&resp, now);
            }
            return;
        };
        if resp.is_provisional() {
            return;
        }
        if resp.is_success() {
            self.agent_answered(&id, resp, now);
        } else {
            let reason = if agent.cancelled {
                "no answer".to_string()
            } else {
                format!("{} {}", resp.status, resp.reason)
            };
            let status = resp.status;
            self.agent_failed(&id, &reason, status);
        }
    }

    pub(super) fn agent_answered(&mut self, id: &str, resp: Response, now: Instant) {
        let via = {
            let Some(agent) = self.calls.get(id).and_then(|c| c.agent.as_ref()) else {
                return;
            };
            self.via(agent.peer.transport)
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(agent) = call.agent.as_mut() else {
            return;
        };
        // A retransmitted 2xx: the ACK was lost, send it again.
        if let Some(d) = &agent.dialog {
            let ack = d.ack_for_2xx(1, &via, &new_branch(rand::random()));
            let to = next_hop(d, agent.peer);
            self.transports.send(to, ack.to_bytes());
            return;
        }
        let dialog = match Dialog::uac(&agent.invite, &resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "agent's 200 OK cannot form a dialog");
                return;
            }
        };
        let ack = dialog.ack_for_2xx(1, &via, &new_branch(rand::random()));
        let to = next_hop(&dialog, agent.peer);
        self.transports.send(to, ack.to_bytes());
        agent.dialog = Some(dialog);
        agent.ring_deadline = None;
        let agent_id = agent.agent_id.clone();
        let answer: Option<SessionDesc> = acd_media::parse_sdp(&resp.body).ok();
        let agent_media = answer.as_ref().and_then(|a| {
            let codec = a.payload_types.iter().find_map(|pt| a.codec_for(*pt))?;
            Some((SocketAddr::new(a.conn_ip, a.audio_port), codec))
        });
        match agent_media {
            Some((remote, codec)) => call.media.send(MediaCmd::Bridge {
                agent_remote: remote,
                agent_codec: codec,
            }),
            None => tracing::warn!("agent answered without usable SDP; no media bridge"),
        }
        call.phase = Phase::Bridged;
        tracing::info!(agent = %agent_id, "agent answered, bridged");
        metrics::counter!("acd_calls_bridged_total").increment(1);
        self.dist.send(ToDist::AgentAnswered(pb::AgentAnswered {
            call_id: id.to_string(),
            agent_id,
        }));
        self.answer_caller(id, now);
    }

    pub(super) fn agent_failed(&mut self, id: &str, reason: &str, status: u16) {
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let Some(agent) = call.agent.take() else {
            return;
        };
        call.phase = Phase::Queued;
        if let Some(leg_call_id) = agent.invite.headers.call_id() {
            self.dialogs.remove(leg_call_id);
        }
        tracing::warn!(agent = %agent.agent_id, %reason, "agent leg failed, call back to queue");
        metrics::counter!("acd_agent_leg_failures_total").increment(1);
        self.dist.send(ToDist::AgentFailed(pb::AgentFailed {
            call_id: id.to_string(),
            agent_id: agent.agent_id,
            reason: reason.to_string(),
            sip_status: u32::from(status),
        }));
    }

    pub(super) fn tx_timeout(&mut self, key: &TxKey, _now: Instant) {
        if key.method != Method::Invite {
            return;
        }
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.agent.as_ref().is_some_and(|a| a.key == *key))
            .map(|(id, _)| id.clone());
        if let Some(id) = found {
            self.agent_failed(&id, "agent did not respond (timer B)", 408);
        }
    }

    /// Ring-no-answer: give up on the agent leg (its 487 reports the failure).
    pub(super) fn cancel_agent_leg(&mut self, id: &str, now: Instant) {
        let Some(agent) = self.calls.get_mut(id).and_then(|c| c.agent.as_mut()) else {
            return;
        };
        agent.ring_deadline = None;
        agent.cancelled = true;
        let cancel = build_cancel(&agent.invite);
        let peer = agent.peer;
        self.tx.send_request(cancel, peer, now);
    }

    pub(super) fn ack_and_bye_orphan(&mut self, resp: &Response, now: Instant) {
        let Some(contact) = resp.headers.contact_uri().map(str::to_string) else {
            return;
        };
        let Some(peer) = contact_peer(&contact) else {
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
        if let Ok(mut d) = Dialog::uac(&req, resp) {
            let via = self.via(peer.transport);
            self.transports.send(
                peer,
                d.ack_for_2xx(1, &via, &new_branch(rand::random()))
                    .to_bytes(),
            );
            let bye = d.request(Method::Bye, &via, &new_branch(rand::random()), "");
            self.tx.send_request(bye, peer, now);
        }
    }
}
