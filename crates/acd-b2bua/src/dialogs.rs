//! In-dialog requests (RFC 3261 §12.2.2): matched on Call-ID and both tags,
//! else 481. BYE, re-INVITE and UPDATE (offer/answer, hold passed to the
//! other leg), ACK, and our 2xx retransmission until the ACK (§13.3.1.4) on
//! every transport.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use acd_media::sdp::{Direction, SessionDesc};
use acd_sip::{Method, Peer, Request, Response, TxKey};

use crate::call::{AwaitAck, CallerState, Established, LegSdp, Phase};
use crate::core::{ClientTx, EdgeCore, ALLOW, SUPPORTED};
use crate::ids::{CallId, Side};
use crate::incoming::CODECS;
use crate::io::MediaCommand;
use crate::teardown::EndReason;
use crate::timers::TimerKind;

impl EdgeCore {
    pub(crate) fn established(&self, id: &CallId, side: Side) -> Option<&Established> {
        let call = self.calls.get(id)?;
        match side {
            Side::Caller => match &call.caller.state {
                CallerState::Answered(e) => Some(e),
                CallerState::Proceeding { .. } => None,
            },
            Side::Agent => match &call.phase {
                Phase::Bridged(a) => Some(&a.est),
                _ => None,
            },
        }
    }

    pub(crate) fn established_mut(&mut self, id: &CallId, side: Side) -> Option<&mut Established> {
        let call = self.calls.get_mut(id)?;
        match side {
            Side::Caller => match &mut call.caller.state {
                CallerState::Answered(e) => Some(e),
                CallerState::Proceeding { .. } => None,
            },
            Side::Agent => match &mut call.phase {
                Phase::Bridged(a) => Some(&mut a.est),
                _ => None,
            },
        }
    }

    pub(crate) fn leg_sdp_mut(&mut self, id: &CallId, side: Side) -> Option<&mut LegSdp> {
        let call = self.calls.get_mut(id)?;
        match side {
            Side::Caller => Some(&mut call.caller.sdp),
            Side::Agent => match &mut call.phase {
                Phase::Bridged(a) => Some(&mut a.sdp),
                _ => None,
            },
        }
    }

    fn find_dialog(&self, req: &Request) -> Option<(CallId, Side)> {
        let key = (
            req.headers.call_id()?.to_string(),
            req.headers.to_tag()?.to_string(),
            req.headers.from_tag().unwrap_or_default().to_string(),
        );
        self.by_dialog.get(&key).cloned()
    }

    pub(crate) fn in_dialog(&mut self, key: TxKey, req: Request, from: Peer, now: Instant) {
        let Some((id, side)) = self.find_dialog(&req) else {
            metrics::counter!("acd_sip_unmatched_dialog_total", "method" => req.method.label())
                .increment(1);
            let resp = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
            return self.respond(&key, resp, now);
        };
        let span = tracing::info_span!("call", call_id = %id);
        let _e = span.enter();
        let Some(est) = self.established_mut(&id, side) else {
            // Early dialog: the caller may end it with BYE (§15).
            if req.method == Method::Bye && side == Side::Caller {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
                return self.end_call(&id, EndReason::CallerCancel, now);
            }
            let resp = Response::for_request(&req, 481, "Call/Transaction Does Not Exist");
            return self.respond(&key, resp, now);
        };
        if !est.dialog.accept_request(&req) {
            // §12.2.2: a CSeq lower than the last one is out of order.
            let resp =
                Response::for_request(&req, 500, "Server Internal Error (CSeq out of order)");
            return self.respond(&key, resp, now);
        }
        match req.method {
            Method::Bye => {
                self.respond(&key, Response::for_request(&req, 200, "OK"), now);
                self.end_call(&id, EndReason::Hangup(side), now);
            }
            Method::Invite => self.reinvite(&id, side, key, &req, from, now),
            Method::Update => self.update(&id, side, key, &req, now),
            Method::Info => self.info(&id, side, key, &req, now),
            Method::Options | Method::Notify => {
                let mut resp = Response::for_request(&req, 200, "OK");
                if req.method == Method::Options {
                    resp.headers.push("Allow", ALLOW);
                    resp.headers.push("Accept", "application/sdp");
                    resp.headers.push("Supported", SUPPORTED);
                }
                self.respond(&key, resp, now);
            }
            _ => {
                let mut resp = Response::for_request(&req, 405, "Method Not Allowed");
                resp.headers.push("Allow", ALLOW);
                self.respond(&key, resp, now);
            }
        }
    }

    /// A re-INVITE: with an offer we answer it (and pass a hold change on to
    /// the other leg); without one, our 2xx carries an offer and the ACK the
    /// answer.
    fn reinvite(
        &mut self,
        id: &CallId,
        side: Side,
        key: TxKey,
        req: &Request,
        from: Peer,
        now: Instant,
    ) {
        let busy = self
            .established(id, side)
            .is_some_and(|e| e.reinvite_out.is_some() || e.awaiting_ack.is_some());
        if busy {
            // §14.2: an offer crossing ours (or an unacknowledged one).
            let mut resp = Response::for_request(req, 491, "Request Pending");
            resp.headers.push("Retry-After", "1");
            return self.respond(&key, resp, now);
        }
        let offer = if req.body.is_empty() {
            None
        } else {
            match self.parse_reoffer(req) {
                Ok(o) => Some(o),
                Err(resp) => return self.respond(&key, resp, now),
            }
        };
        let ip = self.cfg.listen.public_ip;
        let changed = offer.as_ref().map(|o| self.apply_offer(id, side, o));
        let contact = self.local_contact(from.transport);
        let Some(sdp) = self.leg_sdp_mut(id, side) else {
            return;
        };
        let body = if offer.is_some() {
            sdp.answer(ip)
        } else {
            sdp.offer(ip)
        };
        let mut resp = Response::for_request(req, 200, "OK");
        resp.headers.push("Contact", format!("<{contact}>"));
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Supported", SUPPORTED);
        self.add_session_expires(id, side, &mut resp);
        resp.headers.push("Content-Type", "application/sdp");
        resp.body = body.into_bytes();
        let cseq = req.headers.cseq().map(|(n, _)| n).unwrap_or(0);
        let bytes = resp.to_bytes();
        if let Some(est) = self.established_mut(id, side) {
            est.peer = from;
        }
        self.await_ack(id, side, cseq, bytes, offer.is_none(), now);
        self.respond(&key, resp, now);
        self.session_refreshed(id, side, now);
        if let Some(Some(direction)) = changed {
            self.pass_direction(id, side.other(), direction, now);
        }
    }

    /// UPDATE (RFC 3311): offer/answer inside one transaction, no ACK.
    fn update(&mut self, id: &CallId, side: Side, key: TxKey, req: &Request, now: Instant) {
        let ip = self.cfg.listen.public_ip;
        let mut resp = Response::for_request(req, 200, "OK");
        self.add_session_expires(id, side, &mut resp);
        let mut changed = None;
        if !req.body.is_empty() {
            let offer = match self.parse_reoffer(req) {
                Ok(o) => o,
                Err(resp) => return self.respond(&key, resp, now),
            };
            changed = self.apply_offer(id, side, &offer);
            if let Some(sdp) = self.leg_sdp_mut(id, side) {
                resp.headers.push("Content-Type", "application/sdp");
                resp.body = sdp.answer(ip).into_bytes();
            }
        }
        self.respond(&key, resp, now);
        self.session_refreshed(id, side, now);
        if let Some(direction) = changed {
            self.pass_direction(id, side.other(), direction, now);
        }
    }

    fn add_session_expires(&self, id: &CallId, side: Side, resp: &mut Response) {
        if let Some(st) = self.established(id, side).and_then(|e| e.session_timer) {
            let who = if st.we_refresh { "uas" } else { "uac" };
            resp.headers.push(
                "Session-Expires",
                format!("{};refresher={who}", st.interval.as_secs()),
            );
        }
    }

    fn parse_reoffer(&self, req: &Request) -> Result<SessionDesc, Response> {
        let offer = acd_media::parse_sdp(&req.body)
            .map_err(|_| Response::for_request(req, 488, "Not Acceptable Here (bad SDP)"))?;
        if acd_media::negotiate(&offer, &CODECS).is_none() {
            return Err(Response::for_request(
                req,
                488,
                "Not Acceptable Here (PCMU or PCMA required)",
            ));
        }
        Ok(offer)
    }

    /// Takes a peer's offer into the leg and the media. Returns the peer's
    /// new direction if it changed (a hold or an unhold).
    pub(crate) fn apply_offer(
        &mut self,
        id: &CallId,
        side: Side,
        o: &SessionDesc,
    ) -> Option<Direction> {
        self.apply_sdp(id, side, o, true)
    }

    /// Takes a peer's answer to our offer: its address and codec; our
    /// direction stays what we offered.
    pub(crate) fn apply_answer(&mut self, id: &CallId, side: Side, a: &SessionDesc) {
        let _ = self.apply_sdp(id, side, a, false);
    }

    fn apply_sdp(
        &mut self,
        id: &CallId,
        side: Side,
        o: &SessionDesc,
        is_offer: bool,
    ) -> Option<Direction> {
        let sdp = self.leg_sdp_mut(id, side)?;
        let before = (sdp.remote, sdp.codec, sdp.direction);
        let te_before = sdp.telephone_event;
        if let Some(codec) = acd_media::negotiate(o, &CODECS) {
            sdp.codec = codec;
            sdp.pt = o.pt_for(codec).unwrap_or(sdp.pt);
        }
        sdp.telephone_event = o.telephone_event.or(sdp.telephone_event);
        if is_offer {
            sdp.direction = o.direction.reversed();
        }
        // c=0.0.0.0 (RFC 2543 hold) keeps the old address.
        if !o.conn_ip.is_unspecified() && o.audio_port != 0 {
            sdp.remote = Some(SocketAddr::new(o.conn_ip, o.audio_port));
        }
        let (remote, codec, direction) = (sdp.remote, sdp.codec, sdp.direction);
        if side == Side::Caller && sdp.telephone_event != te_before {
            self.sync_telephone_event(id);
        }
        let changed = (before.2 != direction).then_some(o.direction);
        if (remote, codec, direction) == before {
            // A session refresh or a repeated answer: the media stays as it
            // is (a renegotiation would reopen the RTP latch for anyone).
            return changed;
        }
        tracing::info!(?side, ?direction, ?codec, "media renegotiated");
        // `remote` only when the address or codec moved: that is what
        // reopens the latch and switches transcoding.
        let moved = (remote, codec) != (before.0, before.1);
        self.media(
            id,
            MediaCommand::Update {
                side,
                remote: if moved { remote } else { None },
                codec,
                direction,
            },
        );
        changed
    }

    /// Hold or unhold on one leg becomes a re-INVITE on the other, offering
    /// the held party's direction (caller sendonly → we offer sendonly).
    fn pass_direction(&mut self, id: &CallId, to: Side, direction: Direction, now: Instant) {
        let Some(sdp) = self.leg_sdp_mut(id, to) else {
            return;
        };
        if sdp.direction == direction {
            return;
        }
        sdp.direction = direction;
        tracing::info!(?to, ?direction, "passing hold state to the other leg");
        metrics::counter!("acd_hold_changes_total").increment(1);
        let _ = self.send_reinvite(id, to, now);
    }

    /// Sends a re-INVITE with our current description on `side`; `None` if
    /// one is already out.
    pub(crate) fn send_reinvite(&mut self, id: &CallId, side: Side, now: Instant) -> Option<TxKey> {
        let ip = self.cfg.listen.public_ip;
        let branch = self.rng.branch();
        let est = self.established_mut(id, side)?;
        if est.reinvite_out.is_some() || est.awaiting_ack.is_some() {
            est.reoffer_pending = true;
            return None;
        }
        est.reoffer_pending = false;
        let transport = est.peer.transport;
        let via = self.via(transport);
        let contact = self.local_contact(transport);
        let body = self.leg_sdp_mut(id, side)?.answer(ip);
        let est = self.established_mut(id, side)?;
        let mut req = est.dialog.request(Method::Invite, &via, &branch, &contact);
        if let Some(st) = est.session_timer {
            let who = if st.we_refresh { "uac" } else { "uas" };
            req.headers.push("Supported", SUPPORTED);
            req.headers.push(
                "Session-Expires",
                format!("{};refresher={who}", st.interval.as_secs()),
            );
        }
        req.headers.push("Content-Type", "application/sdp");
        req.body = body.into_bytes();
        let to = next_hop(&est.dialog, est.peer);
        let key = self.send_request(req, to, now);
        if let Some(est) = self.established_mut(id, side) {
            est.reinvite_out = Some(key.clone());
        }
        self.by_client_tx
            .insert(key.clone(), (id.clone(), side, ClientTx::Reinvite));
        Some(key)
    }

    /// The response to one of our re-INVITEs.
    pub(crate) fn reinvite_response(
        &mut self,
        id: &CallId,
        side: Side,
        key: &TxKey,
        resp: Response,
        now: Instant,
    ) {
        if resp.is_provisional() {
            return;
        }
        let branch = self.rng.branch();
        let Some(est) = self.established_mut(id, side) else {
            return;
        };
        if est.reinvite_out.as_ref() == Some(key) {
            est.reinvite_out = None;
        }
        match resp.status {
            200..=299 => {
                let cseq = resp.headers.cseq().map(|(n, _)| n).unwrap_or(0);
                let transport = est.peer.transport;
                let to = next_hop(&est.dialog, est.peer);
                let via = self.via(transport);
                let Some(est) = self.established(id, side) else {
                    return;
                };
                let ack = est.dialog.ack_for_2xx(cseq, &via, &branch);
                self.transmit(to, ack.to_bytes());
                if let Ok(answer) = acd_media::parse_sdp(&resp.body) {
                    self.apply_answer(id, side, &answer);
                }
                self.session_refreshed(id, side, now);
            }
            408 | 481 => {
                tracing::warn!(
                    ?side,
                    status = resp.status,
                    "re-INVITE found the dialog gone"
                );
                metrics::counter!("acd_calls_dead_total", "reason" => "reinvite_failed")
                    .increment(1);
                self.end_call(id, EndReason::DialogGone(side), now);
            }
            491 => {
                // Glare (§14.1): both offered at once; ours goes again later.
                let jitter = Duration::from_millis(2100 + self.rng.next_u64() % 1900);
                if let Some(est) = self.established_mut(id, side) {
                    est.reoffer_pending = true;
                }
                self.set_timer(id, TimerKind::Reoffer(side), jitter, now);
                return;
            }
            _ => {
                // A refusal: the session carries on unchanged.
                tracing::info!(?side, status = resp.status, "re-INVITE refused");
            }
        }
        self.reoffer_if_pending(id, side, now);
    }

    /// An offer completed on `side`: send the one that had to wait.
    pub(crate) fn reoffer_if_pending(&mut self, id: &CallId, side: Side, now: Instant) {
        if self.established(id, side).is_some_and(|e| {
            e.reoffer_pending
                && !self.timers.is_armed(&crate::timers::TimerKey::Call(
                    id.clone(),
                    TimerKind::Reoffer(side),
                ))
        }) {
            let _ = self.send_reinvite(id, side, now);
        }
    }

    /// Keeps our 2xx until its ACK: resent with back-off on UDP (§13.3.1.4),
    /// and on every transport the dialog ends if no ACK comes in 64*T1.
    pub(crate) fn await_ack(
        &mut self,
        id: &CallId,
        side: Side,
        cseq: u32,
        bytes: Vec<u8>,
        offer_in_2xx: bool,
        now: Instant,
    ) {
        let t1 = self.cfg.sip.t1;
        let t1x64 = self.cfg.sip.t1x64();
        let Some(est) = self.established_mut(id, side) else {
            return;
        };
        let reliable = est.peer.transport.is_reliable();
        est.awaiting_ack = Some(AwaitAck {
            cseq,
            bytes,
            interval: t1,
            offer_in_2xx,
        });
        if !reliable {
            self.set_timer(id, TimerKind::Retransmit2xx(side), t1, now);
        }
        self.set_timer(id, TimerKind::NoAck(side), t1x64, now);
    }

    pub(crate) fn retransmit_2xx(&mut self, id: &CallId, side: Side, now: Instant) {
        let t2 = self.cfg.sip.t2;
        let Some(est) = self.established_mut(id, side) else {
            return;
        };
        let peer = est.peer;
        let Some(pending) = est.awaiting_ack.as_mut() else {
            return;
        };
        pending.interval = (pending.interval * 2).min(t2);
        let (bytes, next) = (pending.bytes.clone(), pending.interval);
        metrics::counter!("acd_sip_2xx_retransmissions_total").increment(1);
        self.transmit(peer, bytes);
        self.set_timer(id, TimerKind::Retransmit2xx(side), next, now);
    }

    pub(crate) fn no_ack(&mut self, id: &CallId, side: Side, now: Instant) {
        let waiting = self
            .established(id, side)
            .is_some_and(|e| e.awaiting_ack.is_some());
        if !waiting {
            return;
        }
        tracing::warn!(?side, "no ACK for our 200 OK: the peer is gone");
        metrics::counter!("acd_calls_dead_total", "reason" => "no_ack").increment(1);
        self.end_call(id, EndReason::NoAck(side), now);
    }

    /// ACK for one of our 2xx (§13.3.1.4); in a late-offer exchange it
    /// carries the answer.
    pub(crate) fn ack(&mut self, req: &Request, now: Instant) {
        let Some((id, side)) = self.find_dialog(req) else {
            metrics::counter!("acd_sip_unmatched_dialog_total", "method" => "ACK").increment(1);
            return;
        };
        let cseq = req.headers.cseq().map(|(n, _)| n);
        let Some(est) = self.established_mut(&id, side) else {
            return;
        };
        let Some(pending) = est.awaiting_ack.as_ref() else {
            return; // a retransmitted ACK
        };
        if Some(pending.cseq) != cseq {
            return;
        }
        let offer_in_2xx = pending.offer_in_2xx;
        est.awaiting_ack = None;
        self.cancel_timer(&id, TimerKind::Retransmit2xx(side));
        self.cancel_timer(&id, TimerKind::NoAck(side));
        if offer_in_2xx {
            match acd_media::parse_sdp(&req.body) {
                Ok(answer) => {
                    self.apply_answer(&id, side, &answer);
                }
                Err(_) => {
                    tracing::warn!(?side, "ACK without a usable answer to our offer");
                    metrics::counter!("acd_sip_bad_answers_total").increment(1);
                }
            }
        }
        self.reoffer_if_pending(&id, side, now);
    }
}

impl EdgeCore {
    /// Tells the shell where a dialog's requests go if its stream connection
    /// closes: the peer's Contact, when that is another address.
    pub(crate) fn announce_stream_route(&mut self, connection: Peer, contact: &str) {
        if !connection.transport.is_reliable() {
            return;
        }
        let Some(mut target) = crate::registrar::contact_peer(contact) else {
            return;
        };
        // A stream dialog stays on a stream (a Contact without `transport=`
        // would otherwise read as UDP).
        target.transport = connection.transport;
        if target.addr == connection.addr {
            return;
        }
        self.emit(crate::io::Output::StreamRoute { connection, target });
    }
}

impl Side {
    pub fn other(self) -> Side {
        match self {
            Side::Caller => Side::Agent,
            Side::Agent => Side::Caller,
        }
    }
}

/// Where an in-dialog request goes: the first route (its `du` if present),
/// else the remote target; over TCP/TLS the connection the dialog uses.
pub(crate) fn next_hop(d: &acd_sip::dialog::Dialog, fallback: Peer) -> Peer {
    use acd_sip::message::{NameAddr, Uri};
    let target = d
        .route_set
        .first()
        .and_then(|r| NameAddr::parse(r).map(|n| n.uri.to_string()))
        .map(
            |uri| match Uri::parse(&uri).and_then(|u| u.param("du").flatten()) {
                Some(du) => du.to_string(),
                None => uri,
            },
        )
        .unwrap_or_else(|| d.remote_target.clone());
    match crate::registrar::contact_peer(target.trim_matches(|c| c == '<' || c == '>')) {
        Some(p) if !fallback.transport.is_reliable() => p,
        _ => fallback,
    }
}
