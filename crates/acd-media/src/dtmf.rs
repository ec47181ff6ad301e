//! RFC 4733 telephone-events from the caller turned into digits, each once.
//!
//! An event is named by its RTP timestamp (§2.3.1: the start of the event,
//! the same in every packet of it) and the stream's SSRC. A sender repeats
//! packets of one event as the key stays down (growing duration), sends the
//! end packet three times (§2.5.1.4) and may retransmit any of them; all of
//! them carry the same timestamp, so they give one digit. A new timestamp is
//! a new key press, even of the same key.
//!
//! The digit is reported at the first packet seen of the event, not at its
//! end: a prompt with barge-in stops while the key is still down. A lost
//! start packet does not matter (any packet of the event reports it, end
//! packets too). A late packet of an event already reported is ignored
//! however late it comes, as long as the event is one of the last
//! [`REMEMBERED`] ones.
//!
//! An event longer than the 16-bit duration (about 8 s, §2.5.1.3) is
//! continued by the sender under a new timestamp, the old one plus 0xFFFF,
//! without an end bit on the segment before: that segment is the same press,
//! not a second one.

use serde::{Deserialize, Serialize};

use crate::rtp::{parse_dtmf, RtpInfo};

/// How many recent events are remembered to drop their late packets.
pub const REMEMBERED: usize = 8;

/// The detector of one caller leg (sans-IO, no allocation per packet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DtmfDetector {
    /// (SSRC, RTP timestamp) of the last events reported, a ring.
    seen: [Option<(u32, u32)>; REMEMBERED],
    next: usize,
    /// The latest segment seen, for long events continued under a new timestamp.
    #[serde(default)]
    last: Option<Segment>,
}

/// A telephone-event segment as far as it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Segment {
    ssrc: u32,
    ts: u32,
    digit: char,
    /// Longest duration seen in its packets.
    duration: u16,
    ended: bool,
}

impl Segment {
    /// Whether `next` continues this press (§2.5.1.3): same stream and key,
    /// this one ran to the longest duration without ending, and `next`
    /// starts where it stopped.
    fn continued_by(&self, next: &Segment) -> bool {
        self.ssrc == next.ssrc
            && self.digit == next.digit
            && !self.ended
            && self.duration == u16::MAX
            && next.ts == self.ts.wrapping_add(u32::from(u16::MAX))
    }
}

impl DtmfDetector {
    /// A telephone-event packet (`info` parsed from `packet`): the digit if
    /// this packet starts a key press not seen before.
    #[must_use]
    pub fn on_packet(&mut self, info: &RtpInfo, packet: &[u8]) -> Option<char> {
        let event = parse_dtmf(info.payload(packet))?;
        let seg = Segment {
            ssrc: info.ssrc.0,
            ts: info.ts,
            digit: event.digit,
            duration: event.duration,
            ended: event.end,
        };
        let id = (info.ssrc.0, info.ts);
        if self.seen.contains(&Some(id)) {
            if let Some(last) = self.last.as_mut().filter(|l| (l.ssrc, l.ts) == id) {
                last.duration = last.duration.max(seg.duration);
                last.ended |= seg.ended;
            }
            return None;
        }
        let continued = self.last.is_some_and(|l| l.continued_by(&seg));
        self.seen[self.next] = Some(id);
        self.next = (self.next + 1) % REMEMBERED;
        self.last = Some(seg);
        (!continued).then_some(event.digit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{PayloadType, SeqNo, Ssrc};
    use crate::rtp::{parse, DtmfEvent, Header, HEADER_LEN};

    /// One telephone-event packet (PT 101).
    fn te(seq: u16, ts: u32, digit: char, end: bool, duration: u16) -> Vec<u8> {
        te_from(0x1234, seq, ts, digit, end, duration)
    }

    fn te_from(ssrc: u32, seq: u16, ts: u32, digit: char, end: bool, duration: u16) -> Vec<u8> {
        let mut hdr = [0u8; HEADER_LEN];
        Header {
            pt: PayloadType::new(101).unwrap(),
            seq: SeqNo(seq),
            ts,
            ssrc: Ssrc(ssrc),
            marker: duration <= 160 && !end,
        }
        .write(&mut hdr);
        let mut v = hdr.to_vec();
        let ev = DtmfEvent {
            digit,
            end,
            duration,
            volume: 10,
        };
        v.extend_from_slice(&ev.encode().unwrap());
        v
    }

    /// A whole key press as a phone sends it: start, continuations every
    /// 20 ms, three end packets.
    fn press(seq: &mut u16, ts: u32, digit: char) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        for d in [160u16, 320, 480, 640] {
            v.push(te(*seq, ts, digit, false, d));
            *seq += 1;
        }
        for _ in 0..3 {
            v.push(te(*seq, ts, digit, true, 800));
            *seq += 1;
        }
        v
    }

    fn run(d: &mut DtmfDetector, packets: &[Vec<u8>]) -> String {
        packets
            .iter()
            .filter_map(|p| d.on_packet(&parse(p).unwrap(), p))
            .collect()
    }

    #[test]
    fn one_press_with_redundant_ends_is_one_digit_at_its_first_packet() {
        let mut d = DtmfDetector::default();
        let mut seq = 1;
        let p = press(&mut seq, 8000, '5');
        assert_eq!(d.on_packet(&parse(&p[0]).unwrap(), &p[0]), Some('5'));
        assert_eq!(run(&mut d, &p[1..]), "");
    }

    #[test]
    fn a_key_held_past_the_longest_duration_is_one_press() {
        // §2.5.1.3: the first segment runs to 0xFFFF without an end bit; the
        // press goes on under the timestamp 0xFFFF later.
        let mut d = DtmfDetector::default();
        let first = [
            te(1, 1000, '7', false, 160),
            te(2, 1000, '7', false, 40_000),
            te(3, 1000, '7', false, u16::MAX),
        ];
        let next_ts = 1000 + u32::from(u16::MAX);
        let second = [
            te(4, next_ts, '7', false, 160),
            te(5, next_ts, '7', true, 2000),
            te(6, next_ts, '7', true, 2000),
        ];
        assert_eq!(run(&mut d, &first), "7");
        assert_eq!(run(&mut d, &second), "", "the same press continued");
        // A real second press afterwards still counts.
        assert_eq!(run(&mut d, &[te(7, next_ts + 8000, '7', false, 160)]), "7");
        // A segment that ended, or another key at that timestamp, is new.
        let mut d = DtmfDetector::default();
        let ended = [te(1, 1000, '7', true, u16::MAX)];
        assert_eq!(run(&mut d, &ended), "7");
        assert_eq!(run(&mut d, &[te(2, next_ts, '7', false, 160)]), "7");
        let mut d = DtmfDetector::default();
        assert_eq!(run(&mut d, &first), "7");
        assert_eq!(run(&mut d, &[te(4, next_ts, '8', false, 160)]), "8");
    }

    #[test]
    fn the_same_key_twice_is_two_digits() {
        let mut d = DtmfDetector::default();
        let mut seq = 1;
        let mut all = press(&mut seq, 8000, '1');
        all.extend(press(&mut seq, 9600, '1'));
        assert_eq!(run(&mut d, &all), "11");
    }

    #[test]
    fn retransmitted_and_reordered_packets_give_each_digit_once() {
        let mut d = DtmfDetector::default();
        let mut seq = 1;
        let a = press(&mut seq, 8000, '4');
        let b = press(&mut seq, 9600, '2');
        // B's start overtakes A's ends; A's end and start come again late.
        let order = vec![
            a[0].clone(),
            a[1].clone(),
            b[0].clone(),
            a[4].clone(),
            a[5].clone(),
            b[1].clone(),
            a[0].clone(),
            b[4].clone(),
            a[6].clone(),
            b[5].clone(),
            b[6].clone(),
            b[4].clone(),
        ];
        assert_eq!(run(&mut d, &order), "42");
    }

    #[test]
    fn only_end_packets_arriving_still_give_the_digit() {
        let mut d = DtmfDetector::default();
        let mut seq = 1;
        let p = press(&mut seq, 16000, '#');
        assert_eq!(run(&mut d, &p[4..]), "#");
    }

    #[test]
    fn a_new_stream_with_a_colliding_timestamp_is_a_new_press() {
        let mut d = DtmfDetector::default();
        let a = te_from(1, 1, 8000, '7', false, 160);
        let b = te_from(2, 1, 8000, '7', false, 160);
        assert_eq!(run(&mut d, &[a, b]), "77");
    }

    #[test]
    fn non_dtmf_events_and_short_payloads_are_ignored() {
        let mut d = DtmfDetector::default();
        let mut flash = te(1, 8000, '1', false, 160);
        flash[HEADER_LEN] = 16; // hook flash
        let mut short = te(2, 9000, '1', false, 160);
        short.truncate(HEADER_LEN + 2);
        assert_eq!(run(&mut d, &[flash, short]), "");
    }

    #[test]
    fn the_ring_forgets_old_events_only_after_many_newer_ones() {
        let mut d = DtmfDetector::default();
        let mut seq = 1;
        let first = press(&mut seq, 0, '9');
        assert_eq!(run(&mut d, &first[..1]), "9");
        let mut later = Vec::new();
        for k in 1..REMEMBERED as u32 {
            later.push(te(seq, k * 1600, '0', false, 160));
            seq += 1;
        }
        assert_eq!(run(&mut d, &later).len(), REMEMBERED - 1);
        assert_eq!(run(&mut d, &first[4..]), "", "still remembered");
    }
}
