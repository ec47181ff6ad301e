//! A short, deterministic fuzz run of the core's input handling in the
//! normal test suite: whole-call scripts, then seeded mutations of them.
//! The long runs use the same harness from `fuzz/` (cargo-fuzz).

mod sim;

use acd_b2bua::fuzz_harness::run;
use sim::*;

fn record(op: u8, body: &str) -> Vec<u8> {
    let mut v = vec![op];
    v.extend_from_slice(body.as_bytes());
    v.push(0);
    v
}

/// Scripts of whole calls, in the harness's record format.
fn seeds() -> Vec<Vec<u8>> {
    let inv = invite(
        "f1",
        "f1",
        Some(SDP_CALLER),
        "Supported: timer\r\nSession-Expires: 120\r\n",
        "UDP",
    );
    let late = invite("f2", "f2", None, "", "UDP");
    let tcp = invite("f3", "f3", Some(SDP_CALLER), "", "TCP");
    let tag = "@TAG@"; // the harness puts the edge's real To tag here
    let bye = caller_request("BYE", "f1", tag, 2, "b1", None, "");
    let reinvite = caller_request(
        "INVITE",
        "f1",
        tag,
        3,
        "r1",
        Some(&SDP_CALLER.replace("sendrecv", "sendonly")),
        "",
    );
    let cancel = inv
        .replace("INVITE sip:", "CANCEL sip:")
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    let reg = register("g1", 1, None);
    let mut whole = Vec::new();
    for r in [
        record(b'P', &reg),
        record(b'S', &inv),
        record(b'I', "\x02"),
        record(b'C', ""),
        record(b'T', "\x05"),
        record(b'S', &reinvite),
        record(b'X', ""),
        record(b'S', &bye),
        record(b'T', "\x7f"),
    ] {
        whole.extend(r);
    }
    let mut races = Vec::new();
    for r in [
        record(b'S', &inv),
        record(b'S', &inv),
        record(b'I', "\x00"),
        record(b'M', ""),
        record(b'I', "\x02"),
        record(b'S', &cancel),
        record(b'C', ""),
        record(b's', &tcp),
        record(b'S', &late),
        record(b'D', ""),
        record(b'T', "\x7f"),
        record(b'X', ""),
        record(b'T', "\x7f"),
    ] {
        races.extend(r);
    }
    vec![whole, races]
}

/// xorshift64*: deterministic mutations, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len());
        match rng.below(6) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v.truncate(i),
            2 => {
                let j = rng.below(other.len());
                let k = (j + rng.below(64)).min(other.len());
                let splice = other[j..k].to_vec();
                v.splice(i..i, splice);
            }
            3 => {
                // duplicate a line (repeated headers, repeated records)
                let start = v[..i]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = v[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(v.len(), |p| i + p + 1);
                let line = v[start..end].to_vec();
                v.splice(end..end, line);
            }
            4 => v.insert(i, [b'\r', b'\n', 0, b' ', b':', b';'][rng.below(6)]),
            _ => v[i] = rng.next() as u8,
        }
    }
    v
}

#[test]
fn seed_scripts_run() {
    for s in seeds() {
        run(&s);
    }
}

#[test]
fn seeded_mutations_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5EED_ACD0_B2B0_A001);
    for i in 0..3000 {
        let a = &seeds[i % seeds.len()];
        let b = &seeds[(i + 1) % seeds.len()];
        run(&mutate(&mut rng, a, b));
    }
}
