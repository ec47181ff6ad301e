//! Raw SIP over UDP for what SIPp cannot express (garbage, missing headers).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Result};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Sends `request` from `sock` to `to` and returns the first final (>= 200)
/// response whose Via branch is `branch`, within `within`.
pub async fn request(
    sock: &UdpSocket,
    to: SocketAddr,
    request: &str,
    branch: &str,
    within: Duration,
) -> Result<String> {
    sock.send_to(request.as_bytes(), to).await?;
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => bail!(
                "no final response (branch {branch}) from {to} within {within:?} to:\n{request}"
            ),
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if !text.contains(branch) {
            continue;
        }
        if let Some(code) = status_code(&text) {
            if code >= 200 {
                return Ok(text);
            }
        }
    }
}

/// Status code of a response's first line.
pub fn status_code(msg: &str) -> Option<u16> {
    let first = msg.lines().next()?;
    let mut it = first.split_whitespace();
    if it.next()? != "SIP/2.0" {
        return None;
    }
    it.next()?.parse().ok()
}

/// An OPTIONS request (CRLF line endings); `call_id: None` leaves Call-ID out.
pub fn options(
    target: SocketAddr,
    local: SocketAddr,
    branch: &str,
    call_id: Option<&str>,
) -> String {
    let mut m = format!(
        "OPTIONS sip:5550100@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:probe@{local}>;tag=e2e{branch}\r\n\
         To: <sip:5550100@{target}>\r\n"
    );
    if let Some(c) = call_id {
        m.push_str(&format!("Call-ID: {c}\r\n"));
    }
    m.push_str("CSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n");
    m
}

/// Sends `bytes` from `sock` to `to` without waiting for anything.
pub async fn send(sock: &UdpSocket, to: SocketAddr, bytes: &[u8]) -> Result<()> {
    sock.send_to(bytes, to).await?;
    Ok(())
}

/// Every response whose Via branch is `branch` received on `sock` within
/// `within` (provisional and final, in arrival order).
pub async fn collect(sock: &UdpSocket, branch: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::new();
    while let Ok(Ok((n, _))) = tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.contains(branch) && status_code(&text).is_some() {
            out.push(text);
        }
    }
    out
}

/// First final (>= 200) response with Via branch `branch` on `sock` within
/// `within`, without sending anything first.
pub async fn recv_final(sock: &UdpSocket, branch: &str, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, _) = match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => bail!("no final response (branch {branch}) within {within:?}"),
        };
        let text = String::from_utf8_lossy(&buf[..n]).to_string();
        if text.contains(branch) && status_code(&text).is_some_and(|c| c >= 200) {
            return Ok(text);
        }
    }
}

/// Compact header forms (RFC 3261 §7.3.3 and extensions).
const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("e", "Content-Encoding"),
    ("k", "Supported"),
    ("s", "Subject"),
];

/// Value of the first header `name` of a message (case-insensitive, long or
/// compact form; folded lines are not joined), trimmed.
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    headers(msg, name).into_iter().next()
}

/// Values of every header `name` (case-insensitive, long or compact form).
pub fn headers<'a>(msg: &'a str, name: &str) -> Vec<&'a str> {
    let short = COMPACT
        .iter()
        .find(|(_, long)| long.eq_ignore_ascii_case(name))
        .map(|(s, _)| *s);
    let head = msg.split("\r\n\r\n").next().unwrap_or("");
    head.lines()
        .skip(1)
        .filter_map(|l| {
            let (n, v) = l.split_once(':')?;
            let n = n.trim();
            let hit =
                n.eq_ignore_ascii_case(name) || short.is_some_and(|s| n.eq_ignore_ascii_case(s));
            hit.then(|| v.trim())
        })
        .collect()
}

/// The `tag` parameter of a From/To header value.
pub fn tag_param(value: &str) -> Option<&str> {
    value
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("tag"))
        .map(|(_, v)| v.trim())
}

/// An INVITE to `did` at `target` with a PCMU/PCMA SDP offer pointing at
/// `rtp_port` (CRLF line endings, exact Content-Length).
pub fn invite(
    target: SocketAddr,
    local: SocketAddr,
    did: &str,
    branch: &str,
    call_id: &str,
    max_forwards: u32,
    rtp_port: u16,
) -> String {
    let ip = local.ip();
    let sdp = format!(
        "v=0\r\no=probe 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    );
    format!(
        "INVITE sip:{did}@{target} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {local};branch={branch}\r\n\
         Max-Forwards: {max_forwards}\r\n\
         From: <sip:probe@{local}>;tag=e2e{branch}\r\n\
         To: <sip:{did}@{target}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:probe@{local}>\r\n\
         Content-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The ACK of a non-2xx final response `resp` to `invite` (same branch, To
/// with the response's tag, RFC 3261 §17.1.1.3).
pub fn ack_for(invite: &str, resp: &str) -> String {
    let first = invite.lines().next().unwrap_or("");
    let uri = first.split_whitespace().nth(1).unwrap_or("");
    let h = |n: &str| header(invite, n).unwrap_or("");
    let to = header(resp, "To").unwrap_or("");
    let cseq = h("CSeq").split_whitespace().next().unwrap_or("1");
    format!(
        "ACK {uri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {to}\r\n\
         Call-ID: {}\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        h("Via"),
        h("From"),
        h("Call-ID")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_long_and_compact() {
        let m = "SIP/2.0 200 OK\r\nv: SIP/2.0/UDP a;branch=z9\r\ni: abc@h\r\n\
                 To: <sip:x@y>;tag=T1\r\nAllow: INVITE\r\nallow: BYE\r\n\r\nbody: no";
        assert_eq!(header(m, "Call-ID"), Some("abc@h"));
        assert_eq!(header(m, "via"), Some("SIP/2.0/UDP a;branch=z9"));
        assert_eq!(headers(m, "Allow"), vec!["INVITE", "BYE"]);
        assert_eq!(header(m, "body"), None);
        assert_eq!(tag_param(header(m, "To").unwrap()), Some("T1"));
        assert_eq!(status_code(m), Some(200));
    }

    #[test]
    fn invite_content_length_is_exact() {
        let a: SocketAddr = "127.0.0.1:5060".parse().unwrap();
        let m = invite(a, a, "5550100", "z9hG4bK-x", "c@h", 70, 4000);
        let (_, body) = m.split_once("\r\n\r\n").unwrap();
        let cl: usize = header(&m, "Content-Length").unwrap().parse().unwrap();
        assert_eq!(cl, body.len());
        let ack = ack_for(
            &m,
            "SIP/2.0 404 Not Found\r\nTo: <sip:5550100@x>;tag=Q\r\n\r\n",
        );
        assert!(
            ack.starts_with("ACK sip:5550100@127.0.0.1:5060 SIP/2.0\r\n"),
            "{ack}"
        );
        assert!(ack.contains("branch=z9hG4bK-x"), "{ack}");
        assert!(ack.contains("tag=Q"), "{ack}");
        assert!(ack.contains("CSeq: 1 ACK"), "{ack}");
    }
}
