//! A raw SIP user agent over UDP or TCP, for scenarios SIPp cannot drive
//! step by step from the test (send a CANCEL once an agent's phone rings,
//! forge a BYE's tags, never ACK over TCP). Every receive waits for a
//! message matching a predicate, bounded by a deadline; messages that did not
//! match are kept for later receives, so arrival order across methods does
//! not matter.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use crate::sip::{header, headers, status_code, tag_param};

enum Link {
    Udp(UdpSocket),
    Tcp { stream: TcpStream, buf: Vec<u8> },
}

/// One received SIP message and where it came from.
#[derive(Debug, Clone)]
pub struct Received {
    pub text: String,
    pub from: SocketAddr,
    pub at: Instant,
}

impl Received {
    pub fn status(&self) -> Option<u16> {
        status_code(&self.text)
    }
    /// Method of a request (None for a response).
    pub fn method(&self) -> Option<&str> {
        let first = self.text.lines().next()?;
        (!first.starts_with("SIP/2.0")).then(|| first.split_whitespace().next())?
    }
    /// Method named in the CSeq header.
    pub fn cseq_method(&self) -> Option<&str> {
        header(&self.text, "CSeq")?.split_whitespace().nth(1)
    }
    pub fn cseq_num(&self) -> Option<u32> {
        header(&self.text, "CSeq")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
    pub fn body(&self) -> &str {
        self.text.split_once("\r\n\r\n").map_or("", |(_, b)| b)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.text, name)
    }
    pub fn to_tag(&self) -> Option<&str> {
        self.header("To").and_then(tag_param)
    }
    pub fn from_tag(&self) -> Option<&str> {
        self.header("From").and_then(tag_param)
    }
    /// The URI of the Contact header (between `<` and `>`, or the value).
    pub fn contact_uri(&self) -> Option<&str> {
        let c = self.header("Contact")?;
        Some(match (c.find('<'), c.find('>')) {
            (Some(a), Some(b)) if a < b => &c[a + 1..b],
            _ => c.split(';').next().unwrap_or(c).trim(),
        })
    }
}

pub struct RawUa {
    link: Link,
    pub local: SocketAddr,
    /// Received and not yet taken by a matching receive.
    backlog: Vec<Received>,
    /// Every message received, in order, for failure reports.
    pub log: Vec<Received>,
}

impl RawUa {
    pub async fn udp(port: u16) -> Result<Self> {
        Self::udp_on("127.0.0.1", port).await
    }

    /// A UDP UA on another loopback address (e.g. `127.0.0.2`), as a second host.
    pub async fn udp_on(ip: &str, port: u16) -> Result<Self> {
        let sock = UdpSocket::bind((ip, port)).await?;
        let local = sock.local_addr()?;
        Ok(Self::with(Link::Udp(sock), local))
    }

    /// A TCP connection to `to` (the edge), from an ephemeral port.
    pub async fn tcp(to: SocketAddr) -> Result<Self> {
        let stream = TcpStream::connect(to).await?;
        let local = stream.local_addr()?;
        Ok(Self::with(
            Link::Tcp {
                stream,
                buf: Vec::new(),
            },
            local,
        ))
    }

    fn with(link: Link, local: SocketAddr) -> Self {
        RawUa {
            link,
            local,
            backlog: Vec::new(),
            log: Vec::new(),
        }
    }

    pub fn transport(&self) -> &'static str {
        match self.link {
            Link::Udp(_) => "UDP",
            Link::Tcp { .. } => "TCP",
        }
    }

    pub async fn send(&mut self, to: SocketAddr, text: &str) -> Result<()> {
        match &mut self.link {
            Link::Udp(s) => {
                s.send_to(text.as_bytes(), to).await?;
            }
            Link::Tcp { stream, .. } => stream.write_all(text.as_bytes()).await?,
        }
        Ok(())
    }

    /// The first message (backlog first) for which `pred` holds, within `within`.
    pub async fn recv_where(
        &mut self,
        what: &str,
        within: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> Result<Received> {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return Ok(self.backlog.remove(i));
        }
        let deadline = Instant::now() + within;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.recv_one()).await {
                Ok(m) => m?,
                Err(_) => bail!(
                    "{}: no {what} within {within:?}; received so far:\n{}",
                    self.local,
                    self.summary()
                ),
            };
            self.log.push(msg.clone());
            if pred(&msg) {
                return Ok(msg);
            }
            self.backlog.push(msg);
        }
    }

    /// A request `method`.
    pub async fn recv_request(&mut self, method: &str, within: Duration) -> Result<Received> {
        self.recv_where(&format!("{method} request"), within, |m| {
            m.method() == Some(method)
        })
        .await
    }

    /// A final (>= 200) response to a `method` request with CSeq `cseq`.
    pub async fn recv_final(
        &mut self,
        method: &str,
        cseq: u32,
        within: Duration,
    ) -> Result<Received> {
        self.recv_where(&format!("final response to {cseq} {method}"), within, |m| {
            m.status().is_some_and(|s| s >= 200)
                && m.cseq_method() == Some(method)
                && m.cseq_num() == Some(cseq)
        })
        .await
    }

    /// Whether anything matching `pred` arrives (or already arrived) within `within`.
    pub async fn saw_within(&mut self, within: Duration, pred: impl Fn(&Received) -> bool) -> bool {
        self.recv_where("", within, pred).await.is_ok()
    }

    /// One line per message received so far.
    pub fn summary(&self) -> String {
        self.log
            .iter()
            .map(|m| {
                format!(
                    "  {:?} from {}: {} / CSeq {}",
                    m.at,
                    m.from,
                    m.text.lines().next().unwrap_or(""),
                    m.header("CSeq").unwrap_or("?")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    async fn recv_one(&mut self) -> Result<Received> {
        match &mut self.link {
            Link::Udp(s) => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, from) = s.recv_from(&mut buf).await?;
                    let text = String::from_utf8_lossy(&buf[..n]).to_string();
                    if text.trim().is_empty() {
                        continue; // keep-alive
                    }
                    return Ok(Received {
                        text,
                        from,
                        at: Instant::now(),
                    });
                }
            }
            Link::Tcp { stream, buf } => {
                let from = stream.peer_addr()?;
                loop {
                    // Keep-alive CRLFs between messages.
                    let lead = buf
                        .iter()
                        .take_while(|b| **b == b'\r' || **b == b'\n')
                        .count();
                    buf.drain(..lead);
                    if let Some(len) = framed_len(buf)? {
                        let bytes: Vec<u8> = buf.drain(..len).collect();
                        return Ok(Received {
                            text: String::from_utf8_lossy(&bytes).to_string(),
                            from,
                            at: Instant::now(),
                        });
                    }
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        bail!("TCP connection closed by {from}");
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

/// Length of the first whole message in a TCP stream buffer, if complete.
fn framed_len(buf: &[u8]) -> Result<Option<usize>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end + 4]).to_string();
    let len: usize = header(&head, "Content-Length")
        .map(|v| v.parse())
        .transpose()
        .map_err(|e| anyhow!("bad Content-Length in {head:?}: {e}"))?
        .unwrap_or(0);
    let total = end + 4 + len;
    Ok((buf.len() >= total).then_some(total))
}

/// An audio SDP on `ip:port` offering or answering `pts` (0 = PCMU,
/// 8 = PCMA) with direction `dir`; `version` goes into the o= line.
pub fn sdp(ip: &str, port: u16, pts: &[u8], dir: &str, version: u32) -> String {
    let list: Vec<String> = pts.iter().map(u8::to_string).collect();
    let mut s = format!(
        "v=0\r\no=e2e 1 {version} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP {}\r\n",
        list.join(" ")
    );
    for pt in pts {
        match pt {
            0 => s.push_str("a=rtpmap:0 PCMU/8000\r\n"),
            8 => s.push_str("a=rtpmap:8 PCMA/8000\r\n"),
            _ => {}
        }
    }
    s.push_str(&format!("a={dir}\r\n"));
    s
}

/// The `a=sendrecv|sendonly|recvonly|inactive` of an SDP (sendrecv if absent).
pub fn direction(sdp: &str) -> &str {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a="))
        .find(|a| matches!(*a, "sendrecv" | "sendonly" | "recvonly" | "inactive"))
        .unwrap_or("sendrecv")
}

/// A response to `req`: its Vias, From, Call-ID, CSeq; To with `to_tag`
/// added unless it has one; a Contact at `contact`; an SDP body if given.
pub fn response(
    req: &Received,
    status: u16,
    reason: &str,
    to_tag: &str,
    contact: SocketAddr,
    sdp: Option<&str>,
) -> String {
    let mut m = format!("SIP/2.0 {status} {reason}\r\n");
    for v in headers(&req.text, "Via") {
        m.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.header("To").unwrap_or("");
    let to = if tag_param(to).is_some() {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    m.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\nContact: <sip:e2e@{contact}>\r\n",
        req.header("From").unwrap_or(""),
        req.header("Call-ID").unwrap_or(""),
        req.header("CSeq").unwrap_or(""),
    ));
    body(&mut m, sdp);
    m
}

fn body(m: &mut String, sdp: Option<&str>) {
    match sdp {
        Some(s) => m.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{s}",
            s.len()
        )),
        None => m.push_str("Content-Length: 0\r\n\r\n"),
    }
}

/// The caller's side of a dialog with the edge, built up from the INVITE
/// and the edge's 2xx; requests can be forged with other tags.
#[derive(Debug, Clone)]
pub struct CallerDialog {
    pub edge: SocketAddr,
    pub local: SocketAddr,
    pub transport: &'static str,
    pub did: String,
    pub call_id: String,
    pub from_tag: String,
    /// The edge's tag (from its 2xx), empty before.
    pub to_tag: String,
    /// Where in-dialog requests go (the 2xx's Contact).
    pub target: String,
    pub cseq: u32,
    branches: u32,
}

impl CallerDialog {
    pub fn new(ua: &RawUa, edge: SocketAddr, did: &str, call_id: &str) -> Self {
        CallerDialog {
            edge,
            local: ua.local,
            transport: ua.transport(),
            did: did.to_string(),
            call_id: call_id.to_string(),
            from_tag: format!("e2e-{call_id}"),
            to_tag: String::new(),
            target: format!("sip:{did}@{edge}"),
            cseq: 0,
            branches: 0,
        }
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK-e2e-{}-{}", self.call_id, self.branches)
    }

    /// The initial INVITE (CSeq 1), with `sdp` or none (late offer);
    /// `contact: false` leaves the Contact header out.
    pub fn invite(&mut self, sdp: Option<&str>, contact: bool) -> String {
        self.cseq = 1;
        let branch = self.branch();
        let (edge, local, did, t) = (self.edge, self.local, self.did.clone(), self.transport);
        let mut m = format!(
            "INVITE sip:{did}@{edge};transport={} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:0611223344@{local}>;tag={}\r\n\
             To: <sip:{did}@{edge}>\r\n\
             Call-ID: {}\r\nCSeq: 1 INVITE\r\n",
            t.to_ascii_lowercase(),
            self.from_tag,
            self.call_id
        );
        if contact {
            m.push_str(&format!(
                "Contact: <sip:0611223344@{local};transport={}>\r\n",
                t.to_ascii_lowercase()
            ));
        }
        body(&mut m, sdp);
        m
    }

    /// Takes the edge's tag and Contact from its 2xx to the INVITE.
    pub fn established(&mut self, ok: &Received) {
        self.to_tag = ok.to_tag().unwrap_or_default().to_string();
        if let Some(c) = ok.contact_uri() {
            self.target = c.to_string();
        }
    }

    /// The ACK of the 2xx to the INVITE with CSeq `cseq` (a new transaction).
    pub fn ack(&mut self, cseq: u32, sdp: Option<&str>) -> String {
        let (from, to) = (self.from_tag.clone(), self.to_tag.clone());
        self.request_as("ACK", cseq, &from, &to, sdp)
    }

    /// The next in-dialog request `method` (CSeq incremented).
    pub fn request(&mut self, method: &str, sdp: Option<&str>) -> String {
        self.cseq += 1;
        let (from, to) = (self.from_tag.clone(), self.to_tag.clone());
        self.request_as(method, self.cseq, &from, &to, sdp)
    }

    /// An in-dialog-looking request with the given CSeq and tags (forgeries too).
    pub fn request_as(
        &mut self,
        method: &str,
        cseq: u32,
        from_tag: &str,
        to_tag: &str,
        sdp: Option<&str>,
    ) -> String {
        let branch = self.branch();
        let (edge, local, t) = (self.edge, self.local, self.transport);
        let mut m = format!(
            "{method} {} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:0611223344@{local}>;tag={from_tag}\r\n\
             To: <sip:{}@{edge}>;tag={to_tag}\r\n\
             Call-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <sip:0611223344@{local};transport={}>\r\n",
            self.target,
            self.did,
            self.call_id,
            t.to_ascii_lowercase()
        );
        body(&mut m, sdp);
        m
    }

    /// A CANCEL of the initial INVITE: same branch (the first one), CSeq 1.
    pub fn cancel(&self) -> String {
        let branch = format!("z9hG4bK-e2e-{}-1", self.call_id);
        let (edge, local, did, t) = (self.edge, self.local, &self.did, self.transport);
        format!(
            "CANCEL sip:{did}@{edge};transport={} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:0611223344@{local}>;tag={}\r\n\
             To: <sip:{did}@{edge}>\r\n\
             Call-ID: {}\r\nCSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
            t.to_ascii_lowercase(),
            self.from_tag,
            self.call_id
        )
    }

    /// The ACK of a non-2xx final response to the INVITE (same branch).
    pub fn ack_non_2xx(&self, resp: &Received) -> String {
        let branch = format!("z9hG4bK-e2e-{}-1", self.call_id);
        let (edge, local, did, t) = (self.edge, self.local, &self.did, self.transport);
        format!(
            "ACK sip:{did}@{edge};transport={} SIP/2.0\r\n\
             Via: SIP/2.0/{t} {local};branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:0611223344@{local}>;tag={}\r\n\
             To: {}\r\n\
             Call-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            t.to_ascii_lowercase(),
            self.from_tag,
            resp.header("To").unwrap_or(""),
            self.call_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_waits_for_the_whole_body() {
        let m = b"SIP/2.0 200 OK\r\nContent-Length: 3\r\n\r\nabcSIP";
        assert_eq!(framed_len(&m[..20]).unwrap(), None);
        assert_eq!(framed_len(&m[..38]).unwrap(), None);
        assert_eq!(framed_len(m).unwrap(), Some(40));
    }

    #[test]
    fn direction_and_sdp() {
        let s = sdp("127.0.0.1", 4000, &[0, 8], "sendonly", 2);
        assert_eq!(direction(&s), "sendonly");
        assert!(s.contains("m=audio 4000 RTP/AVP 0 8\r\n"));
        assert_eq!(direction("v=0\r\nm=audio 1 RTP/AVP 0\r\n"), "sendrecv");
    }
}
