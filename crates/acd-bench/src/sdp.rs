//! The little SDP the generator needs: a PCMU offer/answer at a socket, and
//! the RTP address (c= and m=audio) of the other side's SDP.

use std::net::{Ipv4Addr, SocketAddrV4};

/// A PCMU-only audio SDP at `addr`; `version` feeds the o= line.
pub fn pcmu(addr: SocketAddrV4, session: u64) -> String {
    let ip = addr.ip();
    format!(
        "v=0\r\no=rtpload {session} {session} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        addr.port()
    )
}

/// The audio stream's address: the media-level c= if any, else the
/// session-level one, and the m=audio port. `None` when missing or not IPv4.
pub fn audio_addr(sdp: &str) -> Option<SocketAddrV4> {
    let (mut session_ip, mut media_ip, mut port) = (None, None, None);
    for line in sdp.lines().map(str::trim) {
        if let Some(c) = line.strip_prefix("c=IN IP4 ") {
            let ip: Ipv4Addr = c.split('/').next()?.trim().parse().ok()?;
            if port.is_some() {
                media_ip.get_or_insert(ip);
            } else {
                session_ip = Some(ip);
            }
        } else if let Some(m) = line.strip_prefix("m=audio ") {
            if port.is_some() {
                break; // a second audio stream: the first one is ours
            }
            port = m.split_whitespace().next()?.parse::<u16>().ok();
        }
    }
    Some(SocketAddrV4::new(media_ip.or(session_ip)?, port?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_its_own_offer() {
        let a = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 61000);
        assert_eq!(audio_addr(&pcmu(a, 1)), Some(a));
    }

    #[test]
    fn media_level_connection_wins() {
        let sdp = "v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 127.0.0.1\r\n";
        assert_eq!(
            audio_addr(sdp),
            Some(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000))
        );
        assert_eq!(audio_addr("v=0\r\nm=audio 4000 RTP/AVP 0\r\n"), None);
    }
}
