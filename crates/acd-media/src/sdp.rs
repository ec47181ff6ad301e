//! Minimal SDP (RFC 4566) and offer/answer (RFC 3264) for one audio stream.
//!
//! acd only ever negotiates a single G.711 audio stream plus RFC 4733 telephone-events,
//! so this reads what that needs and ignores every other line, as RFC 4566 §5 asks of
//! receivers. Errors name the offending line so a SIP 488 can say what was wrong.

use std::fmt::Write as _;
use std::net::IpAddr;

use thiserror::Error;

use crate::codec::Codec;

/// Why an SDP body was rejected (the peer's fault: answer 488 Not Acceptable Here).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("SDP is not valid UTF-8")]
    NotUtf8,
    #[error("SDP line {line} {text:?}: {reason}")]
    BadLine {
        line: usize,
        text: String,
        reason: &'static str,
    },
    #[error("SDP has no {0} line")]
    Missing(&'static str),
    #[error("SDP has no connection address for the audio stream")]
    NoConnection,
}

/// Media direction attribute (RFC 4566 §6, RFC 3264 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    #[default]
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The attribute name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answerer uses for this offered one (RFC 3264 §6.1): the
    /// mirror image, so a `sendonly` hold offer is answered `recvonly`.
    #[must_use]
    pub const fn reversed(self) -> Direction {
        match self {
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            d => d,
        }
    }

    fn parse(s: &str) -> Option<Direction> {
        Some(match s {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }
}

/// The parts of a session description acd uses: the first `m=audio` stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDesc {
    /// `o=` session id and version (a re-offer bumps the version).
    pub session_id: u64,
    pub session_version: u64,
    pub origin_ip: IpAddr,
    /// Where to send audio: media-level `c=`, else session-level.
    pub conn_ip: IpAddr,
    /// `m=audio` port; 0 means the stream was rejected/disabled (RFC 3264 §6).
    pub audio_port: u16,
    /// Payload types from the `m=` line, in the offerer's order of preference.
    pub payload_types: Vec<u8>,
    /// `a=rtpmap` entries of the audio stream: PT and `encoding/clock[/channels]`.
    pub rtpmap: Vec<(u8, String)>,
    /// PT of `telephone-event/8000`, if offered.
    pub telephone_event: Option<u8>,
    /// Media-level direction, else session-level, else `sendrecv`.
    pub direction: Direction,
    /// `a=ptime`, if given.
    pub ptime: Option<u32>,
}

impl SessionDesc {
    /// The codec a payload type stands for here: by `a=rtpmap` if present, else by the
    /// static assignment (RFC 3551 §6; PCMU/PCMA need no rtpmap).
    #[must_use]
    pub fn codec_for(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap.iter().find(|(p, _)| *p == pt) {
            Some((_, name)) => Codec::from_rtpmap_name(name),
            None => Codec::from_payload_type(pt),
        }
    }

    /// The payload type this description uses for `codec`, if it offers it.
    #[must_use]
    pub fn pt_for(&self, codec: Codec) -> Option<u8> {
        self.payload_types
            .iter()
            .copied()
            .find(|&pt| self.codec_for(pt) == Some(codec))
    }

    /// Whether the peer is putting us on hold (RFC 3264 §8.4: `sendonly`/`inactive`,
    /// or the RFC 2543-style `c=0.0.0.0`).
    #[must_use]
    pub fn is_hold(&self) -> bool {
        matches!(self.direction, Direction::SendOnly | Direction::Inactive)
            || self.conn_ip.is_unspecified()
    }
}

fn bad(line: usize, text: &str, reason: &'static str) -> SdpError {
    SdpError::BadLine {
        line,
        text: text.to_owned(),
        reason,
    }
}

/// Parse `IN IP4 <addr>` / `IN IP6 <addr>` (a multicast `/ttl` suffix is dropped).
fn parse_addr(nettype: Option<&str>, addrtype: Option<&str>, addr: Option<&str>) -> Option<IpAddr> {
    if nettype? != "IN" {
        return None;
    }
    let addr = addr?.split('/').next()?;
    let ip: IpAddr = addr.parse().ok()?;
    match (addrtype?, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Some(ip),
        _ => None,
    }
}

/// Parse an SDP body. Unknown lines and non-audio media sections are skipped.
pub fn parse_sdp(body: &[u8]) -> Result<SessionDesc, SdpError> {
    let text = std::str::from_utf8(body).map_err(|_| SdpError::NotUtf8)?;
    let mut version_seen = false;
    let mut origin = None;
    let mut session_conn = None;
    let mut session_dir = None;
    // Sections: None = session level, Some(true) = our audio stream, Some(false) = other media.
    let mut section: Option<bool> = None;
    let mut audio_seen = false;
    let mut audio_conn = None;
    let mut audio_dir = None;
    let mut audio_port = 0u16;
    let mut pts = Vec::new();
    let mut rtpmap = Vec::new();
    let mut ptime = None;

    for (idx, raw) in text.split('\n').enumerate() {
        let n = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.trim().is_empty() {
            continue; // tolerate blank lines, e.g. a trailing CRLF
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(bad(n, line, "expected <type>=<value>"));
        };
        if key.len() != 1 {
            continue; // not RFC 4566, but harmless: skip like any unknown line
        }
        let mut words = value.split_whitespace();
        match key {
            "v" => {
                if value.trim() != "0" {
                    return Err(bad(n, line, "only SDP version 0 is supported"));
                }
                version_seen = true;
            }
            "o" => {
                let (_user, id, ver) = (words.next(), words.next(), words.next());
                let ip = parse_addr(words.next(), words.next(), words.next())
                    .ok_or_else(|| bad(n, line, "origin address must be IN IP4/IP6 <addr>"))?;
                let id = id
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(n, line, "session id is not a number"))?;
                let ver = ver
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| bad(n, line, "session version is not a number"))?;
                origin = Some((id, ver, ip));
            }
            "c" => {
                let ip = parse_addr(words.next(), words.next(), words.next())
                    .ok_or_else(|| bad(n, line, "connection must be IN IP4/IP6 <addr>"))?;
                match section {
                    None => session_conn = Some(ip),
                    Some(true) => audio_conn = Some(ip),
                    Some(false) => {}
                }
            }
            "m" => {
                let media = words.next().unwrap_or("");
                let is_ours = media == "audio" && !audio_seen;
                section = Some(is_ours);
                if !is_ours {
                    continue;
                }
                audio_seen = true;
                let port = words.next().ok_or_else(|| bad(n, line, "missing port"))?;
                // `<port>/<count>` is legal; we use the first port.
                audio_port = port
                    .split('/')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad(n, line, "port is not a number 0-65535"))?;
                let proto = words
                    .next()
                    .ok_or_else(|| bad(n, line, "missing transport"))?;
                if !proto.starts_with("RTP/") {
                    return Err(bad(n, line, "transport is not RTP"));
                }
                for fmt in words {
                    let pt = fmt.parse::<u8>().ok().filter(|pt| *pt < 128);
                    pts.push(pt.ok_or_else(|| bad(n, line, "payload type is not a number 0-127"))?);
                }
            }
            "a" => {
                if section == Some(false) {
                    continue;
                }
                let (name, arg) = value.split_once(':').unwrap_or((value, ""));
                if let Some(dir) = Direction::parse(name) {
                    if section.is_none() {
                        session_dir = Some(dir);
                    } else {
                        audio_dir = Some(dir);
                    }
                } else if name == "rtpmap" && section == Some(true) {
                    let (pt, enc) = arg
                        .split_once(' ')
                        .ok_or_else(|| bad(n, line, "rtpmap needs <pt> <encoding>"))?;
                    let pt = pt
                        .parse::<u8>()
                        .ok()
                        .filter(|pt| *pt < 128)
                        .ok_or_else(|| bad(n, line, "rtpmap payload type is not a number 0-127"))?;
                    rtpmap.push((pt, enc.trim().to_owned()));
                } else if name == "ptime" && section == Some(true) {
                    ptime = arg.trim().parse().ok();
                }
            }
            _ => {} // s=, t=, b=, i=, k=, ... are not needed
        }
    }

    if !version_seen {
        return Err(SdpError::Missing("v="));
    }
    let (session_id, session_version, origin_ip) = origin.ok_or(SdpError::Missing("o="))?;
    if !audio_seen {
        return Err(SdpError::Missing("m=audio"));
    }
    let conn_ip = audio_conn.or(session_conn).ok_or(SdpError::NoConnection)?;
    // The first rtpmap of a PT decides what it is, as in `SessionDesc::codec_for`. With
    // `any` rtpmap here, an offer mapping PT 0 twice (PCMU and telephone-event) made
    // us answer `RTP/AVP 0 0` with PT 0 as both audio and events (found by the
    // `sdp_parse` fuzz target).
    let telephone_event = pts.iter().copied().find(|pt| {
        rtpmap
            .iter()
            .find(|(p, _)| p == pt)
            .and_then(|(_, name)| name.get(..16))
            .is_some_and(|n| n.eq_ignore_ascii_case("telephone-event/"))
    });
    Ok(SessionDesc {
        session_id,
        session_version,
        origin_ip,
        conn_ip,
        audio_port,
        payload_types: pts,
        rtpmap,
        telephone_event,
        direction: audio_dir.or(session_dir).unwrap_or_default(),
        ptime,
    })
}

/// Everything needed to write our side of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia<'a> {
    pub ip: IpAddr,
    pub port: u16,
    /// Codecs with the payload types to use for them, in preference order.
    pub codecs: &'a [(Codec, u8)],
    pub telephone_event: Option<u8>,
    pub session_id: u64,
    /// Must increase with every re-offer in the same dialog (RFC 3264 §8).
    pub session_version: u64,
    pub direction: Direction,
}

/// Write a session description with CRLF line endings.
#[must_use]
pub fn build_sdp(m: &LocalMedia<'_>) -> String {
    let ipv = if m.ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(256);
    // `write!` into a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=acd {} {} IN {ipv} {}\r\ns=acd\r\nc=IN {ipv} {}\r\nt=0 0\r\nm=audio {} RTP/AVP",
        m.session_id, m.session_version, m.ip, m.ip, m.port
    );
    for (_, pt) in m.codecs {
        let _ = write!(s, " {pt}");
    }
    if let Some(te) = m.telephone_event {
        let _ = write!(s, " {te}");
    }
    s.push_str("\r\n");
    for (codec, pt) in m.codecs {
        let _ = write!(s, "a=rtpmap:{pt} {}\r\n", codec.rtpmap_name());
    }
    if let Some(te) = m.telephone_event {
        // 0-15 are the DTMF digits (RFC 4733 §3.2); we act on nothing else.
        let _ = write!(
            s,
            "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-15\r\n"
        );
    }
    let _ = write!(s, "a=ptime:20\r\na={}\r\n", m.direction.as_str());
    s
}

/// An initial offer: our codecs with their static PTs, `sendrecv`, version = id.
#[must_use]
pub fn build_offer(
    ip: IpAddr,
    port: u16,
    codecs: &[Codec],
    te_pt: Option<u8>,
    session_id: u64,
) -> String {
    let with_pts: Vec<(Codec, u8)> = codecs
        .iter()
        .map(|c| (*c, c.payload_type().get()))
        .collect();
    build_sdp(&LocalMedia {
        ip,
        port,
        codecs: &with_pts,
        telephone_event: te_pt,
        session_id,
        session_version: session_id,
        direction: Direction::SendRecv,
    })
}

/// The first codec in the offer's preference order that we support (RFC 3264 §6.1).
#[must_use]
pub fn negotiate(offer: &SessionDesc, supported: &[Codec]) -> Option<Codec> {
    offer
        .payload_types
        .iter()
        .find_map(|&pt| offer.codec_for(pt).filter(|c| supported.contains(c)))
}

/// An answer accepting `codec` (normally from [`negotiate`]) and telephone-events if
/// offered, using the offerer's PT numbers and the mirrored direction (RFC 3264 §6.1).
/// `None` if the offer does not contain `codec`.
#[must_use]
pub fn build_answer(
    offer: &SessionDesc,
    ip: IpAddr,
    port: u16,
    codec: Codec,
    session_id: u64,
) -> Option<String> {
    let pt = offer.pt_for(codec)?;
    Some(build_sdp(&LocalMedia {
        ip,
        port,
        codecs: &[(codec, pt)],
        telephone_event: offer.telephone_event,
        session_id,
        session_version: session_id,
        direction: offer.direction.reversed(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SIPP: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5));

    #[test]
    fn sipp_offer() {
        let d = parse_sdp(SIPP.as_bytes()).unwrap();
        let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(d.session_id, 53655765);
        assert_eq!(d.session_version, 2353687637);
        assert_eq!((d.origin_ip, d.conn_ip, d.audio_port), (lo, lo, 6000));
        assert_eq!(d.payload_types, [0, 8, 101]);
        assert_eq!(d.rtpmap.len(), 3);
        assert_eq!(d.rtpmap[2], (101, "telephone-event/8000".to_owned()));
        assert_eq!(d.telephone_event, Some(101));
        assert_eq!(d.direction, Direction::SendRecv);
        assert!(!d.is_hold());
        assert_eq!(negotiate(&d, &Codec::ALL), Some(Codec::Pcmu));
        assert_eq!(negotiate(&d, &[Codec::Pcma]), Some(Codec::Pcma));
        // LF-only line endings (some test tools) parse the same.
        assert_eq!(parse_sdp(SIPP.replace("\r\n", "\n").as_bytes()).unwrap(), d);
    }

    #[test]
    fn answer_to_sipp_offer() {
        let d = parse_sdp(SIPP.as_bytes()).unwrap();
        let a = build_answer(&d, LOCAL, 20000, Codec::Pcmu, 77).unwrap();
        assert_eq!(
            a,
            "v=0\r\no=acd 77 77 IN IP4 10.0.0.5\r\ns=acd\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n\
             m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
        );
        let back = parse_sdp(a.as_bytes()).unwrap();
        assert_eq!(
            (back.conn_ip, back.audio_port, back.payload_types.clone()),
            (LOCAL, 20000, vec![0, 101])
        );
        assert_eq!(
            build_answer(&d, LOCAL, 1, Codec::Pcma, 1).map(|s| s.contains("RTP/AVP 8 101")),
            Some(true)
        );
        let only_pcma = parse_sdp(SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 8").as_bytes()).unwrap();
        assert_eq!(build_answer(&only_pcma, LOCAL, 1, Codec::Pcmu, 1), None);
        assert_eq!(
            only_pcma.telephone_event, None,
            "rtpmap for an unlisted PT is ignored"
        );
    }

    /// Fuzz regression (fuzz/corpus/sdp_parse/duplicate_rtpmap.sdp): a second rtpmap
    /// for PT 0 must not turn the audio PT into the telephone-event PT.
    #[test]
    fn duplicate_rtpmap_does_not_make_audio_pt_telephone_event() {
        let offer = SIPP.replace(
            "a=rtpmap:101 telephone-event/8000",
            "a=rtpmap:0 telephone-event/8000\r\na=rtpmap:101 telephone-event/8000",
        );
        let d = parse_sdp(offer.as_bytes()).unwrap();
        assert_eq!(d.codec_for(0), Some(Codec::Pcmu));
        assert_eq!(d.telephone_event, Some(101));
        let a = build_answer(&d, LOCAL, 20000, Codec::Pcmu, 7).unwrap();
        assert!(a.contains("m=audio 20000 RTP/AVP 0 101\r\n"), "{a}");
    }

    #[test]
    fn offer_round_trip_ipv6() {
        let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let o = build_offer(ip, 4000, &[Codec::Pcma, Codec::Pcmu], Some(96), 9);
        assert!(o.ends_with("\r\n") && !o.replace("\r\n", "").contains('\n'));
        let d = parse_sdp(o.as_bytes()).unwrap();
        assert_eq!((d.conn_ip, d.audio_port), (ip, 4000));
        assert_eq!(d.payload_types, [8, 0, 96]);
        assert_eq!(d.telephone_event, Some(96));
        assert_eq!(
            negotiate(&d, &Codec::ALL),
            Some(Codec::Pcma),
            "offerer's preference wins"
        );
    }

    #[test]
    fn media_level_overrides_and_unknown_lines() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=call\r\ni=info\r\nc=IN IP4 192.0.2.1\r\nb=AS:64\r\nt=0 0\r\na=sendrecv\r\nx-vendor=thing\r\n\
                   m=video 7000 RTP/AVP 96\r\nc=IN IP4 192.0.2.9\r\na=rtpmap:96 H264/90000\r\na=inactive\r\n\
                   m=audio 6000/2 RTP/SAVP 18 0\r\nc=IN IP4 192.0.2.2/127\r\na=rtpmap:18 G729/8000\r\na=ptime:30\r\na=sendonly\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:xyz\r\n\
                   m=audio 6002 RTP/AVP 8\r\n";
        let d = parse_sdp(sdp.as_bytes()).unwrap();
        assert_eq!(d.conn_ip, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
        assert_eq!(d.audio_port, 6000);
        assert_eq!(d.payload_types, [18, 0]);
        assert_eq!(d.direction, Direction::SendOnly);
        assert_eq!(d.ptime, Some(30));
        assert!(d.is_hold());
        assert_eq!(negotiate(&d, &Codec::ALL), Some(Codec::Pcmu));
        let a = build_answer(&d, LOCAL, 1, Codec::Pcmu, 1).unwrap();
        assert!(a.contains("a=recvonly\r\n"));
        assert!(!a.contains("telephone-event"));
    }

    #[test]
    fn old_style_hold_and_rejected_stream() {
        let d = parse_sdp(
            SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
                .replace("6000", "0")
                .as_bytes(),
        )
        .unwrap();
        assert!(d.is_hold());
        assert_eq!(d.audio_port, 0);
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_sdp(SIPP.replace("m=audio 6000", "m=audio 70000").as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SDP line 6 \"m=audio 70000 RTP/AVP 0 8 101\": port is not a number 0-65535"
        );
        let e = parse_sdp(
            SIPP.replace("c=IN IP4 127.0.0.1", "c=IN IP4 localhost")
                .as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(e, SdpError::BadLine { line: 4, .. }), "{e}");
        let e = parse_sdp(SIPP.replace("RTP/AVP 0 8 101", "RTP/AVP 0 x").as_bytes()).unwrap_err();
        assert!(e.to_string().contains("payload type"), "{e}");
        let e = parse_sdp(b"v=0\r\ngarbage\r\n").unwrap_err();
        assert_eq!(
            e,
            SdpError::BadLine {
                line: 2,
                text: "garbage".into(),
                reason: "expected <type>=<value>"
            }
        );
        assert_eq!(
            parse_sdp(b"v=1\r\n").unwrap_err().to_string(),
            "SDP line 1 \"v=1\": only SDP version 0 is supported"
        );
        assert_eq!(
            parse_sdp(b"o=- 1 1 IN IP4 1.2.3.4\r\n").unwrap_err(),
            SdpError::Missing("v=")
        );
        assert_eq!(
            parse_sdp(SIPP.split("m=").next().unwrap().as_bytes()).unwrap_err(),
            SdpError::Missing("m=audio")
        );
        let no_c = SIPP.replace("c=IN IP4 127.0.0.1\r\n", "");
        assert_eq!(
            parse_sdp(no_c.as_bytes()).unwrap_err(),
            SdpError::NoConnection
        );
        assert_eq!(parse_sdp(&[0xff, 0xfe]).unwrap_err(), SdpError::NotUtf8);
    }
}
