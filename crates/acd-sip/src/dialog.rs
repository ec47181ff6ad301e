//! RFC 3261 §12 dialog state and the UAS-core 2xx retransmission (§13.3.1.4).
//!
//! A [`Dialog`] is created from the INVITE/2xx pair and builds in-dialog requests
//! (BYE, re-INVITE, INFO …) and the ACK for a 2xx, applying the route set
//! (§12.2.1.1, loose and strict routing). Route-set entries are kept verbatim so
//! Record-Route parameters such as `;lr` and `;du=` survive.

use std::time::{Duration, Instant};

use crate::message::{Method, NameAddr, Request, Response, Uri};
use crate::transaction::{Config, Peer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialogError {
    #[error("missing or malformed {0} header")]
    BadHeader(&'static str),
    #[error("response has no To tag")]
    MissingToTag,
    #[error("missing Contact (remote target)")]
    MissingContact,
}

/// Dialog state (§12.1). `secure` is always false: no SIPS here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dialog {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
    pub local_uri: String,
    pub remote_uri: String,
    /// Last CSeq we used; 0 until we send our first in-dialog request.
    pub local_seq: u32,
    /// Last CSeq seen from the peer, if any (§12.2.2 ordering check).
    pub remote_seq: Option<u32>,
    pub remote_target: String,
    /// Route set as header values (`<sip:p1;lr;du=...>`), first hop first.
    pub route_set: Vec<String>,
    /// Our Contact, sent on requests we build.
    pub local_target: String,
    pub secure: bool,
}

fn name_addr_uri<'a>(
    req_or_resp: Option<&'a str>,
    name: &'static str,
) -> Result<NameAddr<'a>, DialogError> {
    req_or_resp
        .and_then(NameAddr::parse)
        .ok_or(DialogError::BadHeader(name))
}

fn angle(uri: &str) -> String {
    if uri.trim_start().starts_with('<') {
        uri.trim().to_string()
    } else {
        format!("<{}>", uri.trim())
    }
}

impl Dialog {
    /// UAS side (§12.1.1), created when we answer `req` with a tag of `local_tag`.
    /// Route set = Record-Route in order.
    pub fn uas(req: &Request, local_tag: &str, local_contact: &str) -> Result<Dialog, DialogError> {
        let from = name_addr_uri(req.headers.get("From"), "From")?;
        let to = name_addr_uri(req.headers.get("To"), "To")?;
        let call_id = req.call_id().ok_or(DialogError::BadHeader("Call-ID"))?;
        let (seq, _) = req.cseq().ok_or(DialogError::BadHeader("CSeq"))?;
        let target = req.contact_uri().ok_or(DialogError::MissingContact)?;
        Ok(Dialog {
            call_id: call_id.to_string(),
            local_tag: local_tag.to_string(),
            remote_tag: from.tag().unwrap_or("").to_string(),
            local_uri: to.uri.to_string(),
            remote_uri: from.uri.to_string(),
            local_seq: 0,
            remote_seq: Some(seq),
            remote_target: target.to_string(),
            route_set: req
                .headers
                .get_all("Record-Route")
                .map(str::to_string)
                .collect(),
            local_target: local_contact.to_string(),
            secure: false,
        })
    }

    /// UAC side (§12.1.2) from our request and the dialog-creating response.
    /// Route set = Record-Route of the response, reversed.
    pub fn uac(req: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let from = name_addr_uri(req.headers.get("From"), "From")?;
        let to = name_addr_uri(resp.headers.get("To"), "To")?;
        let remote_tag = to.tag().ok_or(DialogError::MissingToTag)?;
        let call_id = req.call_id().ok_or(DialogError::BadHeader("Call-ID"))?;
        let (seq, _) = req.cseq().ok_or(DialogError::BadHeader("CSeq"))?;
        let target = resp.contact_uri().ok_or(DialogError::MissingContact)?;
        let mut route_set: Vec<String> = resp
            .headers
            .get_all("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Ok(Dialog {
            call_id: call_id.to_string(),
            local_tag: from.tag().unwrap_or("").to_string(),
            remote_tag: remote_tag.to_string(),
            local_uri: from.uri.to_string(),
            remote_uri: to.uri.to_string(),
            local_seq: seq,
            remote_seq: None,
            remote_target: target.to_string(),
            route_set,
            local_target: req.contact_uri().unwrap_or("").to_string(),
            secure: false,
        })
    }

    /// Does `req` belong to this dialog (§12.2.2: Call-ID, remote tag = From tag,
    /// local tag = To tag)?
    pub fn matches_request(&self, req: &Request) -> bool {
        req.call_id() == Some(self.call_id.as_str())
            && req.from_tag().unwrap_or("") == self.remote_tag
            && req.to_tag().unwrap_or("") == self.local_tag
    }

    /// §12.2.2: accepts an in-dialog request's CSeq. Returns false if it is lower
    /// than the last one (answer 500). Also applies a target refresh for re-INVITE /
    /// UPDATE with a Contact.
    pub fn accept_request(&mut self, req: &Request) -> bool {
        let Some((seq, _)) = req.cseq() else {
            return false;
        };
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(last) = self.remote_seq {
                if seq <= last {
                    return false;
                }
            }
            self.remote_seq = Some(seq);
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Some(c) = req.contact_uri() {
                self.remote_target = c.to_string();
            }
        }
        true
    }

    fn local_party(&self) -> String {
        format!("{};tag={}", angle(&self.local_uri), self.local_tag)
    }

    fn remote_party(&self) -> String {
        if self.remote_tag.is_empty() {
            angle(&self.remote_uri)
        } else {
            format!("{};tag={}", angle(&self.remote_uri), self.remote_tag)
        }
    }

    /// Request-URI and Route headers per §12.2.1.1: loose routing when the first
    /// route has `;lr`, else strict routing (first route becomes the Request-URI and
    /// the remote target is appended as the last Route).
    fn target_and_routes(&self) -> (String, Vec<String>) {
        let Some(first) = self.route_set.first() else {
            return (self.remote_target.clone(), Vec::new());
        };
        let first_uri = NameAddr::parse(first)
            .map(|n| n.uri)
            .unwrap_or(first.as_str());
        let loose = Uri::parse(first_uri).is_some_and(|u| u.param("lr").is_some());
        if loose {
            (self.remote_target.clone(), self.route_set.clone())
        } else {
            // Strict router: strip URI headers/params not allowed in Request-URI is
            // left to the peer; the URI is used as given.
            let mut routes: Vec<String> = self.route_set.iter().skip(1).cloned().collect();
            routes.push(angle(&self.remote_target));
            (first_uri.to_string(), routes)
        }
    }

    fn base_request(
        &self,
        method: Method,
        cseq: u32,
        via_host_port: &str,
        branch: &str,
    ) -> Request {
        let (uri, routes) = self.target_and_routes();
        let mut req = Request::new(method.clone(), uri);
        req.headers.push("Via", via_value(via_host_port, branch));
        req.headers.push("Max-Forwards", "70");
        req.headers.push("From", self.local_party());
        req.headers.push("To", self.remote_party());
        req.headers.push("Call-ID", self.call_id.as_str());
        req.headers.push("CSeq", format!("{cseq} {method}"));
        for r in routes {
            req.headers.push("Route", r);
        }
        req
    }

    /// A new in-dialog request (BYE, re-INVITE, INFO, UPDATE …) with the next local
    /// CSeq (§12.2.1.1). Not for ACK (see [`Dialog::ack_for_2xx`]) or CANCEL.
    ///
    /// `via_host_port` is `host:port` (sent over UDP) or a full sent-protocol and
    /// sent-by such as `SIP/2.0/TCP 10.0.0.1:5060`.
    pub fn request(
        &mut self,
        method: Method,
        via_host_port: &str,
        branch: &str,
        local_contact: &str,
    ) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1).max(1);
        let mut req = self.base_request(method, self.local_seq, via_host_port, branch);
        if !local_contact.is_empty() {
            self.local_target = local_contact.to_string();
            req.headers.push("Contact", angle(local_contact));
        }
        req
    }

    /// ACK for a 2xx to the INVITE with CSeq `invite_cseq` (§13.2.2.4): same CSeq
    /// number, new branch, the dialog's route set; local CSeq is not advanced.
    pub fn ack_for_2xx(&self, invite_cseq: u32, via_host_port: &str, branch: &str) -> Request {
        self.base_request(Method::Ack, invite_cseq, via_host_port, branch)
    }
}

fn via_value(via_host_port: &str, branch: &str) -> String {
    let v = via_host_port.trim();
    if v.get(..8)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/2.0/"))
    {
        format!("{v};branch={branch};rport")
    } else {
        format!("SIP/2.0/UDP {v};branch={branch};rport")
    }
}

/// UAS-core retransmission of a 2xx to INVITE until the ACK arrives (§13.3.1.4):
/// the server transaction stops at the 2xx (RFC 6026), so the TU owns this.
/// [`Retransmit2xx::handle_timeout`] returns the bytes to resend; after 64*T1
/// without ACK it gives up and [`Retransmit2xx::gave_up`] turns true so the TU can
/// send BYE.
#[derive(Clone, Debug)]
pub struct Retransmit2xx {
    bytes: Vec<u8>,
    peer: Peer,
    next: Option<Instant>,
    interval: Duration,
    t2: Duration,
    give_up_at: Instant,
    acked: bool,
    gave_up: bool,
}

impl Retransmit2xx {
    /// Starts after the first 2xx was sent at `now` (through the server tx).
    /// Retransmits at T1, doubling to T2, regardless of transport (§13.3.1.4: the 2xx
    /// may cross a UDP hop beyond a reliable first hop).
    pub fn new(bytes: Vec<u8>, peer: Peer, config: &Config, now: Instant) -> Self {
        let t1 = config.t1.max(Duration::from_millis(1));
        Retransmit2xx {
            bytes,
            peer,
            next: Some(now + t1),
            interval: t1,
            t2: config.t2.max(t1),
            give_up_at: now + t1 * 64,
            acked: false,
            gave_up: false,
        }
    }

    pub fn peer(&self) -> Peer {
        self.peer
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next.map(|n| n.min(self.give_up_at))
    }

    /// Bytes to resend if a retransmission is due; `None` otherwise (also when
    /// finished). Check [`Self::gave_up`] after calling.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Vec<u8>> {
        let next = self.next?;
        if now >= self.give_up_at {
            self.next = None;
            self.gave_up = true;
            return None;
        }
        if now < next {
            return None;
        }
        self.interval = (self.interval * 2).min(self.t2);
        self.next = Some(now + self.interval);
        Some(self.bytes.clone())
    }

    pub fn ack_received(&mut self) {
        self.acked = true;
        self.next = None;
    }

    pub fn is_acked(&self) -> bool {
        self.acked
    }

    /// True once 64*T1 passed without ACK: confirm then terminate the session (BYE).
    pub fn gave_up(&self) -> bool {
        self.gave_up
    }

    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::parse;
    use crate::message::Message;

    fn req(text: &str) -> Request {
        match parse(text.replace('\n', "\r\n").as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    const INVITE: &str = "INVITE sip:queue@acd.example.com SIP/2.0
Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1
Via: SIP/2.0/UDP alice.example.com:5060;branch=z9hG4bKa
Record-Route: <sip:p1.example.com;lr;du=sip:10.1.1.1:5070>
Record-Route: <sip:p2.example.com;lr>
Max-Forwards: 69
From: \"Alice\" <sip:alice@example.com>;tag=a1
To: <sip:queue@acd.example.com>
Call-ID: call-1
CSeq: 7 INVITE
Contact: <sip:alice@192.0.2.5:5060>
Content-Length: 0

";

    #[test]
    fn uas_dialog_builds_bye_with_route_set() {
        let r = req(INVITE);
        let mut d = Dialog::uas(&r, "l1", "sip:acd@10.0.0.1:5060").unwrap();
        assert_eq!(d.remote_tag, "a1");
        assert_eq!(d.remote_seq, Some(7));
        assert_eq!(d.remote_target, "sip:alice@192.0.2.5:5060");
        let bye = d.request(
            Method::Bye,
            "10.0.0.1:5060",
            "z9hG4bKbye",
            "sip:acd@10.0.0.1:5060",
        );
        assert_eq!(bye.uri, "sip:alice@192.0.2.5:5060");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(
            routes,
            vec![
                "<sip:p1.example.com;lr;du=sip:10.1.1.1:5070>",
                "<sip:p2.example.com;lr>"
            ]
        );
        assert_eq!(bye.cseq(), Some((1, Method::Bye)));
        assert_eq!(bye.from_tag(), Some("l1"));
        assert_eq!(bye.to_tag(), Some("a1"));
        assert_eq!(bye.top_via().unwrap().branch.as_deref(), Some("z9hG4bKbye"));
        let info = d.request(Method::Info, "SIP/2.0/TCP 10.0.0.1:5060", "z9hG4bKinfo", "");
        assert_eq!(info.cseq(), Some((2, Method::Info)));
        assert_eq!(info.top_via().unwrap().transport, "TCP");
    }

    #[test]
    fn uac_dialog_reverses_route_set_and_acks() {
        let mut r = req(INVITE);
        r.headers.set("Contact", "<sip:acd@10.0.0.1>");
        let mut resp = Response::for_request(&r, 200, "OK").with_to_tag("q9");
        for rr in r.headers.get_all("Record-Route") {
            resp.headers.push("Record-Route", rr);
        }
        resp.headers.push("Contact", "<sip:agent@10.9.9.9>");
        let d = Dialog::uac(&r, &resp).unwrap();
        assert_eq!(d.remote_tag, "q9");
        assert_eq!(d.local_tag, "a1");
        assert_eq!(d.route_set[0], "<sip:p2.example.com;lr>");
        let ack = d.ack_for_2xx(7, "10.0.0.1", "z9hG4bKack");
        assert_eq!(ack.cseq(), Some((7, Method::Ack)));
        assert_eq!(ack.uri, "sip:agent@10.9.9.9");
        assert_eq!(d.local_seq, 7);
    }

    #[test]
    fn strict_routing_puts_target_last() {
        let mut r = req(INVITE);
        r.headers.set("Record-Route", "<sip:strict.example.com>");
        let mut d = Dialog::uas(&r, "l1", "sip:acd@10.0.0.1").unwrap();
        let bye = d.request(Method::Bye, "10.0.0.1", "z9hG4bKx", "");
        assert_eq!(bye.uri, "sip:strict.example.com");
        let routes: Vec<_> = bye.headers.get_all("Route").collect();
        assert_eq!(routes, vec!["<sip:alice@192.0.2.5:5060>"]);
    }

    #[test]
    fn cseq_ordering_and_matching() {
        let r = req(INVITE);
        let mut d = Dialog::uas(&r, "l1", "sip:acd@10.0.0.1").unwrap();
        let mut bye = req(INVITE);
        bye.method = Method::Bye;
        bye.headers.set("CSeq", "8 BYE");
        bye.headers.set("To", "<sip:queue@acd.example.com>;tag=l1");
        assert!(d.matches_request(&bye));
        assert!(d.accept_request(&bye));
        assert!(!d.accept_request(&bye), "same CSeq again is out of order");
    }

    #[test]
    fn missing_headers_are_errors() {
        let mut r = req(INVITE);
        r.headers.remove("Contact");
        assert_eq!(Dialog::uas(&r, "x", "c"), Err(DialogError::MissingContact));
        let resp = Response::for_request(&req(INVITE), 200, "OK");
        assert_eq!(
            Dialog::uac(&req(INVITE), &resp),
            Err(DialogError::MissingToTag)
        );
    }

    #[test]
    fn retransmit_2xx_schedule_and_give_up() {
        let cfg = Config::default();
        let t0 = Instant::now();
        let peer = Peer {
            addr: "127.0.0.1:5060".parse().unwrap(),
            transport: crate::transaction::Transport::Udp,
        };
        let mut r = Retransmit2xx::new(b"200".to_vec(), peer, &cfg, t0);
        // Early fire is a no-op.
        assert_eq!(r.handle_timeout(t0), None);
        let mut sends = Vec::new();
        let mut steps = 0;
        while let Some(at) = r.poll_timeout() {
            steps += 1;
            assert!(steps < 100, "livelock");
            if r.handle_timeout(at).is_some() {
                sends.push(at - t0);
            }
        }
        assert!(r.gave_up());
        let ms: Vec<u128> = sends.iter().map(|d| d.as_millis()).collect();
        assert_eq!(&ms[..5], &[500, 1500, 3500, 7500, 11500]);
        assert!(ms.iter().all(|m| *m < 32_000));

        let mut r = Retransmit2xx::new(b"200".to_vec(), peer, &cfg, t0);
        assert!(r.handle_timeout(t0 + cfg.t1).is_some());
        r.ack_received();
        assert!(r.is_done() && r.is_acked() && !r.gave_up());
        assert_eq!(r.poll_timeout(), None);
    }
}
