//! Harnesses for `acd-media`: SDP offer/answer and the RTP path (parse, DTMF, relay).

use std::net::{IpAddr, Ipv4Addr};

use acd_media::rtp::{self, HEADER_LEN};
use acd_media::{
    build_answer, is_rtp, negotiate, parse_dtmf, parse_sdp, Codec, Leg, OutboundStream,
    PayloadType, Relay, SeqNo, Ssrc,
};

use crate::escape;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
const LOCAL_PORT: u16 = 20_000;

/// `sdp_parse`: an offer through parse → negotiate → build_answer, for each codec set
/// the edge may support. The answer we would send must parse back to what we meant:
/// our address, the chosen codec, the mirrored direction, and a telephone-event PT
/// that is not also the audio PT.
pub fn sdp_parse(data: &[u8]) {
    let Ok(offer) = parse_sdp(data) else {
        return;
    };
    let _ = offer.is_hold();
    for &pt in &offer.payload_types {
        let _ = offer.codec_for(pt);
    }
    for supported in [&Codec::ALL[..], &[Codec::Pcmu], &[Codec::Pcma]] {
        let Some(codec) = negotiate(&offer, supported) else {
            continue;
        };
        assert!(supported.contains(&codec));
        let Some(answer) = build_answer(&offer, LOCAL, LOCAL_PORT, codec, 7) else {
            panic!("negotiated {codec:?} but cannot answer with it: {offer:?}");
        };
        let back = parse_sdp(answer.as_bytes())
            .unwrap_or_else(|e| panic!("our answer does not parse ({e}): {answer:?}"));
        assert_eq!((back.conn_ip, back.audio_port), (LOCAL, LOCAL_PORT));
        assert_eq!(negotiate(&back, &[codec]), Some(codec), "{answer:?}");
        assert_eq!(back.direction, offer.direction.reversed());
        assert_eq!(back.telephone_event, offer.telephone_event, "{answer:?}");
        assert_ne!(
            back.telephone_event,
            back.pt_for(codec),
            "one PT for both audio and events: {answer:?}"
        );
    }
}

/// `rtp_parse`: the input as one packet (parse, payload bounds, DTMF decode/encode),
/// then cut into a sequence of packets relayed between two legs with a player
/// writing in between now and then. A forwarded packet keeps its length, parses
/// again and carries the destination stream's SSRC.
pub fn rtp_parse(data: &[u8]) {
    check_packet(data);
    check_dtmf(data);
    relay_sequence(data);
}

fn check_packet(data: &[u8]) {
    let Ok(info) = rtp::parse(data) else {
        return;
    };
    assert!(
        is_rtp(data),
        "parse accepts what is_rtp refuses: {}",
        escape(data)
    );
    assert!(
        HEADER_LEN <= info.payload_offset
            && info.payload_offset <= info.payload_end
            && info.payload_end <= data.len(),
        "{info:?} for {} bytes",
        data.len()
    );
    assert_eq!(info.payload(data).len(), info.payload_len());
    check_dtmf(info.payload(data));
}

fn check_dtmf(payload: &[u8]) {
    let Some(ev) = parse_dtmf(payload) else {
        return;
    };
    // Encoding drops only the reserved R bit (RFC 4733 §2.3).
    let expected = [payload[0], payload[1] & !0x40, payload[2], payload[3]];
    assert_eq!(ev.encode(), Some(expected), "{ev:?}");
}

/// Each packet is `[control, length, bytes…]`: control bit 0 = from leg B, bit 1 = a
/// player writes to the destination stream first.
fn relay_sequence(data: &[u8]) {
    let mut relay = Relay::new();
    relay.set_telephone_event(Leg::A, pt(101), pt(96));
    let mut streams = [
        OutboundStream::new(Ssrc(0xa), SeqNo(65_530), u32::MAX - 400, Codec::Pcmu),
        OutboundStream::new(Ssrc(0xb), SeqNo(1), 0, Codec::Pcma),
    ];
    let mut out = [0u8; 256];
    // The whole input as one packet each way first, so raw RTP seeds reach forward().
    for (from, to) in [(Leg::A, 1), (Leg::B, 0)] {
        forward_one(&mut relay, from, data, &mut streams[to]);
    }
    let mut rest = data;
    while let [ctl, len, tail @ ..] = rest {
        let (ctl, len) = (*ctl, usize::from(*len).min(tail.len()));
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        let from = if ctl & 1 == 0 { Leg::A } else { Leg::B };
        let to = &mut streams[usize::from(from == Leg::A)];
        if ctl & 2 != 0 {
            let _ = to.write_packet(&[0xff; 160], false, &mut out);
        }
        forward_one(&mut relay, from, packet, to);
    }
}

fn forward_one(relay: &mut Relay, from: Leg, packet: &[u8], to: &mut OutboundStream) {
    let mut buf = packet.to_vec();
    let before = to.packets();
    match relay.forward(from, &mut buf, to) {
        Ok(dest) => {
            assert_eq!(dest, from.other());
            assert_eq!(buf.len(), packet.len(), "forward changed the length");
            let info = rtp::parse(&buf)
                .unwrap_or_else(|e| panic!("forwarded packet does not parse ({e})"));
            assert_eq!(info.ssrc, to.ssrc());
            assert_eq!(to.packets(), before + 1);
        }
        Err(_) => assert_eq!(buf, packet, "a refused packet was modified"),
    }
}

fn pt(n: u8) -> PayloadType {
    PayloadType::new(n).unwrap_or(PayloadType::PCMU)
}
