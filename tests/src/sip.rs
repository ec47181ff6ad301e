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
