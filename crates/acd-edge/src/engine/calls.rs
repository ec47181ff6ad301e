//! Requests from outside: REGISTER, OPTIONS, new calls, in-dialog requests,
//! ACK and CANCEL; answering the caller (183 early media or 200 OK).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;

use acd_ivr::AnswerMode;
use acd_proto::v1 as pb;
use acd_sip::dialog::{Dialog, Retransmit2xx};
use acd_sip::message::uri_user;
use acd_sip::transaction::new_tag;
use acd_sip::{Method, Peer, Request, Response, Transport, TxKey};

use super::call::*;
use super::*;
use crate::media::{self};

impl Engine {
    // ----- requests -------------------------------------------------------

    pub(super) fn request(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        metrics::counter!("acd_sip_requests_total", "method" => req.method.as_str().to_string())
            .increment(1);
        let in_dialog = req.headers.to_tag().is_some();
        match (&req.method, in_dialog) {
            (Method::Register, _) => {
                let (resp, _outcome) = self.registrar.handle(&req, from, now, crate::unix_now());
                self.shared
                    .registrations
                    .store(self.registrar.count(now) as u32, Ordering::Relaxed);
                self.respond(&key, resp, now);
            }
            (Method::Options, false) => {
                let status = if self.draining() {
                    (503, "Service Unavailable")
                } else {
                    (200, "OK")
                };
                let mut resp = Response::for_request(&req, status.0, status.1);
                resp.headers.push("Allow", ALLOW);
                resp.headers.push("Accept", "application/sdp");
                self.respond(&key, resp, now);
            }
            (Method::Invite, false) => self.new_call(key, req, from, now),
            (_, true) => self.in_dialog(key, req, now),
            (Method::Bye, false) | (Method::Info, false) => self.respond(
                &key,
                Response::for_request(&req, 481, "Call/Transaction Does Not Exist"),
                now,
            ),
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                resp.headers.push("Allow", ALLOW);
                self.respond(&key, resp, now);
            }
        }
    }

    pub(super) fn respond(&mut self, key: &TxKey, resp: Response, now: Instant) {
        let resp = with_local_tag(resp);
        if resp.status >= 300 {
            metrics::counter!("acd_sip_error_responses_total", "status" => resp.status.to_string())
                .increment(1);
        }
        self.tx.send_response(key, resp, now);
    }

    pub(super) fn draining(&self) -> bool {
        self.shared.draining.load(Ordering::Relaxed)
    }

    pub(super) fn new_call(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        let refuse = |this: &mut Self, status: u16, reason: &str| {
            this.respond(&key, Response::for_request(&req, status, reason), now);
        };
        if self.draining() {
            let mut resp = Response::for_request(&req, 503, "Service Unavailable");
            resp.headers.push("Retry-After", "5");
            self.respond(&key, resp, now);
            return;
        }
        let did = uri_user(&req.uri).unwrap_or_default().to_string();
        let Some(flow_id) = self.cfg.dids.get(&did).cloned() else {
            tracing::info!(sip_call_id = req.headers.call_id().unwrap_or(""), %did, "no such number");
            metrics::counter!("acd_calls_total", "outcome" => "not_found").increment(1);
            return refuse(self, 404, "Not Found");
        };
        let Some(flow) = self.cfg.flows.get(&flow_id) else {
            return refuse(self, 500, "Server Internal Error (flow missing)");
        };
        let answer_mode = flow.answer;
        let offer = match acd_media::parse_sdp(&req.body) {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(error = %e, "INVITE without a usable SDP offer");
                metrics::counter!("acd_calls_total", "outcome" => "bad_sdp").increment(1);
                return refuse(self, 488, "Not Acceptable Here (SDP offer required)");
            }
        };
        let Some(codec) = acd_media::negotiate(&offer, &SUPPORTED) else {
            metrics::counter!("acd_calls_total", "outcome" => "no_codec").increment(1);
            return refuse(self, 488, "Not Acceptable Here (PCMU or PCMA required)");
        };
        let id = format!("acd-{:016x}", rand::random::<u64>());
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.clone().entered();
        let remote = SocketAddr::new(offer.conn_ip, offer.audio_port);
        let media = match media::start(
            &self.ports,
            id.clone(),
            remote,
            codec,
            self.media_events.clone(),
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "cannot allocate media");
                metrics::counter!("acd_calls_total", "outcome" => "no_media").increment(1);
                return refuse(self, 503, "Service Unavailable (media)");
            }
        };
        let sdp = match acd_media::build_answer(
            &offer,
            self.cfg.public_ip,
            media.caller_port,
            codec,
            rand::random::<u32>().into(),
        ) {
            Some(s) => s,
            None => return refuse(self, 488, "Not Acceptable Here"),
        };
        let sip_call_id = req.headers.call_id().unwrap_or_default().to_string();
        tracing::info!(%did, flow = %flow_id, from = req.headers.get("From").unwrap_or(""), %sip_call_id, "incoming call");
        metrics::counter!("acd_calls_total", "outcome" => "accepted").increment(1);
        let local_tag = new_tag(rand::random());
        let call = Call {
            span: span.clone(),
            did: did.clone(),
            flow_id: flow_id.clone(),
            caller: CallerLeg {
                invite: req,
                invite_key: key,
                peer: from,
                local_tag,
                sdp,
                codec,
                answered: false,
                dialog: None,
                retransmit: None,
            },
            agent: None,
            media,
            phase: Phase::Ivr,
            session: pb::IvrSession {
                flow_id,
                node: String::new(),
                variables: Default::default(),
            },
            prompt_token: 0,
            digit_deadline: None,
            enqueued: None,
        };
        self.dialogs.insert(sip_call_id, (id.clone(), Side::Caller));
        self.calls.insert(id.clone(), call);
        match answer_mode {
            AnswerMode::Immediate => self.answer_caller(&id, now),
            AnswerMode::Early => self.early_media(&id, now),
        }
        let caller = self
            .calls
            .get(&id)
            .map(|c| caller_data(&c.caller.invite, &did))
            .unwrap_or_default();
        self.ivr_step(
            &id,
            pb::ivr_event::Kind::Started(pb::Started {
                did,
                caller: caller.from_uri,
            }),
        );
    }

    pub(super) fn local_contact(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!(
                "sip:acd@{}",
                host_port(self.cfg.public_ip, self.cfg.udp_port)
            ),
            Transport::Tcp => format!(
                "sip:acd@{};transport=tcp",
                host_port(self.cfg.public_ip, self.cfg.tcp_port)
            ),
        }
    }

    pub(super) fn via(&self, transport: Transport) -> String {
        match transport {
            Transport::Udp => format!(
                "SIP/2.0/UDP {}",
                host_port(self.cfg.public_ip, self.cfg.udp_port)
            ),
            Transport::Tcp => format!(
                "SIP/2.0/TCP {}",
                host_port(self.cfg.public_ip, self.cfg.tcp_port)
            ),
        }
    }

    pub(super) fn early_media(&mut self, id: &str, now: Instant) {
        let Some(call) = self.calls.get(id) else {
            return;
        };
        let mut resp = Response::for_request(&call.caller.invite, 183, "Session Progress")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push(
            "Contact",
            format!("<{}>", self.local_contact(call.caller.peer.transport)),
        );
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = call.caller.sdp.clone().into_bytes();
        let key = call.caller.invite_key.clone();
        self.respond(&key, resp, now);
    }

    /// Sends 200 OK with our SDP to the caller and starts its retransmission.
    pub(super) fn answer_caller(&mut self, id: &str, now: Instant) {
        let contact = {
            let Some(call) = self.calls.get(id) else {
                return;
            };
            self.local_contact(call.caller.peer.transport)
        };
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        if call.caller.answered {
            return;
        }
        let mut resp = Response::for_request(&call.caller.invite, 200, "OK")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push("Contact", format!("<{contact}>"));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = call.caller.sdp.clone().into_bytes();
        match Dialog::uas(&call.caller.invite, &call.caller.local_tag, &contact) {
            Ok(d) => call.caller.dialog = Some(d),
            Err(e) => tracing::warn!(parent: &call.span, error = %e, "cannot form caller dialog"),
        }
        call.caller.answered = true;
        if !call.caller.peer.transport.is_reliable() {
            let rt = Retransmit2xx::new(resp.to_bytes(), call.caller.peer, self.tx.config(), now);
            call.caller.retransmit = Some(rt);
        }
        tracing::info!(parent: &call.span, "caller answered");
        let key = call.caller.invite_key.clone();
        self.respond(&key, resp, now);
    }

    pub(super) fn in_dialog(&mut self, key: TxKey, req: Request, now: Instant) {
        let call_id = req.headers.call_id().unwrap_or_default().to_string();
        let Some((id, side)) = self.dialogs.get(&call_id).cloned() else {
            self.respond(
                &key,
                Response::for_request(&req, 481, "Call/Transaction Does Not Exist"),
                now,
            );
            return;
        };
        match req.method {
            Method::Bye => {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
                let reason = if side == Side::Caller {
                    EndReason::CallerHangup
                } else {
                    EndReason::AgentHangup
                };
                self.end_call(&id, reason, now);
            }
            Method::Invite => {
                // Session refresh or re-offer: keep the media as it is.
                let sdp = self.calls.get(&id).map(|c| match side {
                    Side::Caller => c.caller.sdp.clone(),
                    Side::Agent => c.agent.as_ref().map(|a| a.sdp.clone()).unwrap_or_default(),
                });
                let mut resp = Response::for_request(&req, 200, "OK");
                resp.headers.push(
                    "Contact",
                    format!("<{}>", self.local_contact(Transport::Udp)),
                );
                resp.headers.push("Content-Type", "application/sdp");
                resp.body = sdp.unwrap_or_default().into_bytes();
                self.respond(&key, resp, now);
            }
            Method::Info | Method::Update | Method::Options => {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
            }
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                resp.headers.push("Allow", ALLOW);
                self.respond(&key, resp, now);
            }
        }
    }

    pub(super) fn ack(&mut self, req: &Request) {
        let call_id = req.headers.call_id().unwrap_or_default();
        if let Some((id, Side::Caller)) = self.dialogs.get(call_id) {
            if let Some(rt) = self
                .calls
                .get_mut(id)
                .and_then(|c| c.caller.retransmit.as_mut())
            {
                rt.ack_received();
            }
        }
    }

    pub(super) fn cancel(
        &mut self,
        key: TxKey,
        invite: Option<TxKey>,
        req: &Request,
        now: Instant,
    ) {
        // §9.2: no matching INVITE transaction → 481; otherwise 200, and the
        // CANCEL only has an effect while the INVITE has no final response.
        let Some(invite) = invite else {
            self.respond(
                &key,
                Response::for_request(req, 481, "Call/Transaction Does Not Exist"),
                now,
            );
            return;
        };
        self.respond(&key, Response::for_request(req, 200, "OK"), now);
        let pending = self
            .calls
            .iter()
            .find(|(_, c)| c.caller.invite_key == invite && !c.caller.answered)
            .map(|(id, _)| id.clone());
        if let Some(id) = pending {
            self.end_call(&id, EndReason::CallerCancel, now);
        }
    }
}
