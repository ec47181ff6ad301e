//! Requests from outside the dialogs: REGISTER, OPTIONS, new calls, CANCEL;
//! answering the caller (183 early media or 200 OK, with or without an offer
//! from the caller).

use std::net::SocketAddr;
use std::time::Instant;

use acd_ivr::AnswerMode;
use acd_media::sdp::SessionDesc;
use acd_media::Codec;
use acd_sip::dialog::Dialog;
use acd_sip::message::{uri_user, NameAddr};
use acd_sip::{Method, Peer, Request, Response, TxKey};

use crate::call::{Call, CallerLeg, CallerState, Established, LegSdp, Phase};
use crate::core::{EdgeCore, ALLOW, SUPPORTED};
use crate::ids::{CallId, Side};
use crate::io::{CallerInfo, MediaCommand, MediaPorts};
use crate::note::{EdgeOutcome, NoteState};
use crate::session_timer;
use crate::trunks::TrunkId;

pub(crate) const CODECS: [Codec; 2] = [Codec::Pcmu, Codec::Pcma];

impl EdgeCore {
    pub(crate) fn request(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        crate::telemetry::count_request(&req.method, crate::telemetry::Direction::In);
        if req.headers.to_tag().is_some() {
            return self.in_dialog(key, req, from, now);
        }
        match req.method {
            Method::Register => {
                let unix = self.unix_now(now);
                let (resp, outcome) = self.registrar.handle(&req, from, now, unix);
                self.respond(&key, resp, now);
                self.registration_changed(&req, &outcome, now);
            }
            Method::Options => self.options(&key, &req, now),
            Method::Invite => self.new_call(key, req, from, now),
            Method::Bye | Method::Info | Method::Update => self.respond(
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

    fn options(&mut self, key: &TxKey, req: &Request, now: Instant) {
        let (status, reason) = if self.draining {
            (503, "Service Unavailable")
        } else {
            (200, "OK")
        };
        let mut resp = Response::for_request(req, status, reason);
        if self.draining {
            resp.headers.push(
                "Retry-After",
                self.cfg.admission.retry_after_secs.to_string(),
            );
        }
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Accept", "application/sdp");
        resp.headers.push("Supported", SUPPORTED);
        self.respond(key, resp, now);
    }

    fn refuse(&mut self, key: &TxKey, req: &Request, status: u16, reason: &str, now: Instant) {
        metrics::counter!("acd_calls_refused_total", "status" => status.to_string()).increment(1);
        self.respond(key, Response::for_request(req, status, reason), now);
    }

    fn shed(&mut self, key: &TxKey, req: &Request, why: &'static str, now: Instant) {
        metrics::counter!("acd_calls_shed_total", "reason" => why).increment(1);
        let mut resp = Response::for_request(req, 503, "Service Unavailable");
        resp.headers.push(
            "Retry-After",
            self.cfg.admission.retry_after_secs.to_string(),
        );
        self.respond(key, resp, now);
    }

    pub(crate) fn new_call(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        if self.draining {
            return self.shed(&key, &req, "draining", now);
        }
        // Before anything is allocated: who is calling, and may they?
        let trunk = match self.admit_trunk(&key, &req, from, now) {
            Some(t) => t,
            None => return,
        };
        let admitted = self.load.admit(&self.cfg.admission, self.calls.len(), now);
        if let Err(why) = admitted {
            return self.shed(&key, &req, why.as_str(), now);
        }
        let mut req = req;
        let Wanted {
            did,
            flow,
            offer,
            codec,
        } = match self.check_new_call(&mut req, from) {
            Ok(w) => w,
            Err(Refusal::Status(status, reason)) => {
                return self.refuse(&key, &req, status, reason, now)
            }
            Err(Refusal::Response(resp)) => return self.respond(&key, resp, now),
        };
        let id = CallId(format!("acd-{:016x}", self.rng.next_u64()));
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let mut sdp = LegSdp::new(u64::from(self.rng.next_u32()), codec);
        let remote = offer.as_ref().map(|o| {
            sdp.pt = o.pt_for(codec).unwrap_or(sdp.pt);
            sdp.telephone_event = o.telephone_event;
            sdp.direction = o.direction.reversed();
            SocketAddr::new(o.conn_ip, o.audio_port)
        });
        sdp.remote = remote;
        let sip_call_id = req.headers.call_id().unwrap_or_default().to_string();
        tracing::info!(%did, %flow, from = req.headers.get("From").unwrap_or(""), %sip_call_id, late_offer = offer.is_none(), "incoming call");
        metrics::counter!("acd_calls_total", "outcome" => "accepted").increment(1);
        let local_tag = self.rng.tag();
        let from_tag = req.headers.from_tag().unwrap_or_default().to_string();
        self.by_dialog.insert(
            (sip_call_id, local_tag.clone(), from_tag),
            (id.clone(), Side::Caller),
        );
        self.by_invite
            .insert(key.clone(), (id.clone(), Side::Caller));
        let note = NoteState::new(self.unix_ms(now), &flow);
        let call = Call {
            id: id.clone(),
            did,
            flow,
            caller: CallerLeg {
                offer: offer.is_some().then(|| req.body.clone()),
                invite: req,
                invite_key: key,
                peer: from,
                local_tag,
                sdp,
                state: CallerState::Proceeding { early_sent: false },
            },
            ports: None,
            phase: Phase::Setup,
            enqueued: None,
            trunk: Some(trunk),
            note: Some(Box::new(note)),
        };
        self.trunks.call_started(trunk);
        self.calls.insert(id.clone(), call);
        self.media(
            &id,
            MediaCommand::Allocate {
                caller_remote: remote,
                caller_codec: codec,
            },
        );
    }

    /// What a new INVITE asks for, or why it cannot be taken: Contact
    /// present (§8.1.1.8), session interval acceptable (RFC 4028), a known
    /// number with its flow, and an offer we can answer (or none: late offer).
    fn check_new_call(&self, req: &mut Request, from: Peer) -> Result<Wanted, Refusal> {
        if req.headers.contact_uri().is_none() {
            // RFC 2543 did not require Contact (RFC 4475 §3.4.1): for such a
            // peer, its source address is the only target there is.
            let legacy = req.top_via().is_some_and(|v| !v.has_rfc3261_branch());
            if !legacy {
                return Err(Refusal::Status(400, "Bad Request (Contact required)"));
            }
            req.headers.push("Contact", format!("<sip:{}>", from.addr));
        }
        if let Some(resp) = session_timer::check_invite(req, self.cfg.min_se) {
            return Err(Refusal::Response(resp));
        }
        let did = uri_user(&req.uri).unwrap_or_default().to_string();
        let Some(flow) = self.cfg.dids.get(&did).cloned() else {
            tracing::info!(sip_call_id = req.headers.call_id().unwrap_or(""), %did, "no such number");
            return Err(Refusal::Status(404, "Not Found"));
        };
        if !self.cfg.flows.contains_key(&flow) {
            return Err(Refusal::Status(500, "Server Internal Error (flow missing)"));
        }
        let offer = parse_offer(req).map_err(|why| Refusal::Status(488, why))?;
        let codec = match &offer {
            Some(o) => acd_media::negotiate(o, &CODECS).ok_or(Refusal::Status(
                488,
                "Not Acceptable Here (PCMU or PCMA required)",
            ))?,
            None => Codec::Pcmu,
        };
        Ok(Wanted {
            did,
            flow,
            offer,
            codec,
        })
    }

    /// The trunk this INVITE comes from, if its source is allowed, it is
    /// within its limits, and (for a trunk with credentials) its digest is
    /// right; otherwise the refusal is sent and `None` returned.
    fn admit_trunk(
        &mut self,
        key: &TxKey,
        req: &Request,
        from: Peer,
        now: Instant,
    ) -> Option<TrunkId> {
        let ip = from.addr.ip();
        let trunk = match self.trunks.admit(ip, now) {
            Ok(t) => t,
            Err(refusal) => {
                metrics::counter!("acd_calls_total", "outcome" => refusal.label()).increment(1);
                tracing::info!(peer = %from.addr, reason = refusal.label(), "INVITE refused by trunk policy");
                let (status, reason) = refusal.status();
                let mut resp = Response::for_request(req, status, reason);
                if let Some(secs) = refusal.retry_after_secs() {
                    resp.headers.push("Retry-After", secs.to_string());
                }
                self.respond(key, resp, now);
                return None;
            }
        };
        let Some((user, password)) = self
            .trunks
            .credentials(trunk)
            .map(|(u, p)| (u.to_string(), p.to_string()))
        else {
            return Some(trunk);
        };
        let unix = self.unix_now(now);
        let auth = self.registrar.auth();
        let decision = auth.authenticate(
            req.headers.get("Authorization"),
            "INVITE",
            &req.uri,
            ip,
            now,
            unix,
            |u| (u == user).then(|| password.clone()),
        );
        match auth.response(req, &decision, unix) {
            None => Some(trunk),
            Some(resp) => {
                metrics::counter!("acd_calls_total", "outcome" => decision.label()).increment(1);
                if matches!(decision, acd_sip::auth::Decision::Refused(_)) {
                    auth.failure(ip, now);
                }
                self.respond(key, resp, now);
                None
            }
        }
    }

    pub(crate) fn media_ready(&mut self, id: &CallId, ports: MediaPorts, now: Instant) {
        if self.dial_media_ready(id, ports, now) {
            return;
        }
        let Some(call) = self.calls.get_mut(id) else {
            // The caller left while the sockets were bound.
            self.media(id, MediaCommand::Release);
            return;
        };
        if !matches!(call.phase, Phase::Setup) {
            return;
        }
        call.ports = Some(ports);
        call.caller.sdp.port = ports.caller;
        let flow = call.flow.clone();
        let did = call.did.clone();
        let from = caller_info(&call.caller.invite, &did);
        let caller = caller_number(&from.from_uri);
        let late_offer = call.caller.offer.is_none();
        let mode = self
            .cfg
            .flows
            .get(&flow)
            .map(|f| f.answer)
            .unwrap_or_default();
        match mode {
            // Without 100rel an offer cannot go in a 183: answer at once.
            AnswerMode::Early if !late_offer => self.early_media(id, now),
            _ => self.answer_caller(id, now),
        }
        self.sync_telephone_event(id);
        self.start_ivr(id, did, caller, from.display_name, now);
    }

    pub(crate) fn media_failed(&mut self, id: &CallId, reason: &str, now: Instant) {
        if self.dial_media_failed(id) {
            return;
        }
        let Some(call) = self.calls.get(id) else {
            return;
        };
        tracing::warn!(call_id = %id, %reason, "cannot allocate media");
        metrics::counter!("acd_calls_refused_total", "status" => "503").increment(1);
        let key = call.caller.invite_key.clone();
        let mut resp =
            Response::for_request(&call.caller.invite, 503, "Service Unavailable (media)")
                .with_to_tag(&call.caller.local_tag);
        resp.headers.push(
            "Retry-After",
            self.cfg.admission.retry_after_secs.to_string(),
        );
        self.respond(&key, resp, now);
        if let Some(call) = self.forget_call(id) {
            self.send_note(&call, EdgeOutcome::Refused, now);
        }
    }

    fn early_media(&mut self, id: &CallId, now: Instant) {
        let ip = self.cfg.listen.public_ip;
        let Some(transport) = self.calls.get(id).map(|c| c.caller.peer.transport) else {
            return;
        };
        let contact = self.local_contact(transport);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let body = call.caller.sdp.answer(ip);
        let mut resp = Response::for_request(&call.caller.invite, 183, "Session Progress")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push("Contact", format!("<{contact}>"));
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = body.into_bytes();
        call.caller.state = CallerState::Proceeding { early_sent: true };
        let key = call.caller.invite_key.clone();
        self.respond(&key, resp, now);
    }

    /// Sends 200 OK (our answer, or our offer when the INVITE had none) and
    /// waits for the ACK on every transport.
    pub(crate) fn answer_caller(&mut self, id: &CallId, now: Instant) {
        let ip = self.cfg.listen.public_ip;
        let Some(call) = self.calls.get(id) else {
            return;
        };
        if matches!(call.caller.state, CallerState::Answered(_)) {
            return;
        }
        let contact = self.local_contact(call.caller.peer.transport);
        let timer = session_timer::negotiate_uas(&call.caller.invite, self.cfg.session_expires);
        let Some(call) = self.calls.get_mut(id) else {
            return;
        };
        let late_offer = call.caller.offer.is_none();
        let body = if late_offer {
            call.caller.sdp.offer(ip)
        } else {
            call.caller.sdp.answer(ip)
        };
        let mut resp = Response::for_request(&call.caller.invite, 200, "OK")
            .with_to_tag(&call.caller.local_tag);
        copy_record_route(&call.caller.invite, &mut resp);
        resp.headers.push("Contact", format!("<{contact}>"));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Supported", SUPPORTED);
        if let Some((st, header)) = &timer {
            resp.headers.push("Session-Expires", header.clone());
            if !st.we_refresh {
                resp.headers.push("Require", "timer");
            }
        }
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = body.into_bytes();
        let dialog = match Dialog::uas(&call.caller.invite, &call.caller.local_tag, &contact) {
            Ok(d) => d,
            Err(e) => {
                // Contact was checked on arrival; From/To/CSeq by validation.
                tracing::warn!(error = %e, "cannot form caller dialog");
                return;
            }
        };
        let cseq = call
            .caller
            .invite
            .headers
            .cseq()
            .map(|(n, _)| n)
            .unwrap_or(1);
        let bytes = resp.to_bytes();
        call.caller.state = CallerState::Answered(Box::new(Established {
            dialog,
            peer: call.caller.peer,
            awaiting_ack: None,
            session_timer: timer.as_ref().map(|(st, _)| *st),
            reinvite_out: None,
            reoffer_pending: false,
        }));
        tracing::info!("caller answered");
        let key = call.caller.invite_key.clone();
        let (peer, their_contact) = (call.caller.peer, contact_of(&call.caller.invite));
        self.announce_stream_route(peer, &their_contact);
        self.await_ack(id, Side::Caller, cseq, bytes, late_offer, now);
        if let Some((st, _)) = timer {
            self.arm_session_timer(id, Side::Caller, st, now);
        }
        self.respond(&key, resp, now);
    }

    pub(crate) fn cancel(
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
        let Some((id, Side::Caller)) = self.by_invite.get(&invite).cloned() else {
            return;
        };
        let pending = self
            .calls
            .get(&id)
            .is_some_and(|c| matches!(c.caller.state, CallerState::Proceeding { .. }));
        if pending {
            self.end_call(&id, crate::teardown::EndReason::CallerCancel, now);
        }
    }
}

/// What a new INVITE asks for, once it passed [`EdgeCore::check_new_call`].
struct Wanted {
    did: String,
    flow: String,
    offer: Option<SessionDesc>,
    codec: Codec,
}

/// Why a new INVITE is not taken: a status and reason, or a whole response
/// (422 carries Min-SE).
enum Refusal {
    Status(u16, &'static str),
    Response(Response),
}

/// The INVITE's offer: `Ok(None)` for a late offer (no body).
fn parse_offer(req: &Request) -> Result<Option<SessionDesc>, &'static str> {
    if req.body.is_empty() {
        return Ok(None);
    }
    // The body type was checked with the request (415 unless SDP).
    match acd_media::parse_sdp(&req.body) {
        Ok(o) if o.audio_port == 0 => Err("Not Acceptable Here (audio stream disabled)"),
        Ok(o) => Ok(Some(o)),
        Err(e) => {
            tracing::warn!(error = %e, "INVITE with an unusable SDP offer");
            Err("Not Acceptable Here (bad SDP)")
        }
    }
}

/// A UAS copies Record-Route into responses that create a dialog
/// (RFC 3261 §12.1.1), verbatim: proxies rely on their own parameters.
pub(crate) fn copy_record_route(req: &Request, resp: &mut Response) {
    let routes: Vec<String> = req
        .headers
        .get_all("Record-Route")
        .map(str::to_string)
        .collect();
    for r in routes {
        resp.headers.push("Record-Route", r);
    }
}

/// The Contact URI of a request, for routes.
pub(crate) fn contact_of(req: &Request) -> String {
    req.headers.contact_uri().unwrap_or_default().to_string()
}

/// Caller data for the distributor and the agent's call pop.
/// The caller's number as flows see it (VIP lists, callbacks): the user part
/// of the From URI without its parameters or password
/// (`sip:+4930123;npdi@host` -> `+4930123`), else the whole URI.
pub(crate) fn caller_number(from_uri: &str) -> String {
    uri_user(from_uri)
        .and_then(|u| u.split([';', ':']).next())
        .filter(|u| !u.is_empty())
        .unwrap_or(from_uri)
        .to_string()
}

pub(crate) fn caller_info(invite: &Request, did: &str) -> CallerInfo {
    let from = invite.headers.get("From").and_then(NameAddr::parse);
    let from_uri = from.map(|f| f.uri.to_string()).unwrap_or_default();
    CallerInfo {
        number: caller_number(&from_uri),
        from_uri,
        display_name: from
            .and_then(|f| f.display)
            .map(|d| d.trim_matches('"').to_string())
            .unwrap_or_default(),
        did: did.to_string(),
        variables: Default::default(),
    }
}

#[cfg(test)]
mod caller_number_tests {
    use super::caller_number;

    #[test]
    fn the_user_part_without_parameters_else_the_uri() {
        assert_eq!(caller_number("sip:0611223344@10.0.0.1:5060"), "0611223344");
        assert_eq!(caller_number("sip:+4930123;npdi@host"), "+4930123");
        assert_eq!(caller_number("sips:alice:secret@host"), "alice");
        assert_eq!(caller_number("sip:host.example"), "sip:host.example");
        assert_eq!(caller_number(""), "");
    }
}
