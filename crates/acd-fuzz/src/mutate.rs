//! A small deterministic mutator for the stable-toolchain smoke run: no coverage
//! feedback, so it leans on mutations that matter to line-based text protocols —
//! CRLF games, duplicated and dropped lines, boundary numbers, splicing — on top of
//! byte-level flips and truncation. Seeded, so a failure names a reproducible input.

/// splitmix64: tiny, seedable, good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that are syntax somewhere in SIP, SDP, Digest or RTP headers.
const INTERESTING_BYTES: &[u8] = b"\r\n \t:;,=\"<>/\\@[]?%0\x00\x7f\x80\xff";
/// Strings that end up as numbers, separators or line structure.
const INTERESTING_TEXT: &[&str] = &[
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    "\r\n ",
    "\r\n\t",
    "0",
    "-1",
    "65535",
    "65536",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999",
    "\"",
    "\\",
    "<",
    ">",
    ";",
    ",",
    "=",
    ";tag=",
    ";branch=z9hG4bK",
    "[::1]",
    ":",
    "Content-Length: 5\r\n",
    "l: 0\r\n",
    "v: SIP/2.0/UDP h\r\n",
    "\u{feff}",
    "\u{2028}",
    "SIP/2.0",
    "m=audio 0 RTP/AVP 0\r\n",
    "a=rtpmap:0 telephone-event/8000\r\n",
    "c=IN IP6 ::\r\n",
];

/// Mutates `input` with 1–4 stacked edits; `others` is the corpus to splice from.
pub fn mutate(rng: &mut Rng, input: &[u8], others: &[&[u8]]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        edit(rng, &mut data, others);
    }
    data
}

fn edit(rng: &mut Rng, data: &mut Vec<u8>, others: &[&[u8]]) {
    let len = data.len();
    match rng.below(12) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(INTERESTING_BYTES);
        }
        2 => data.truncate(rng.below(len + 1)),
        3 => {
            let at = rng.below(len + 1);
            let text = rng.pick(INTERESTING_TEXT).as_bytes();
            data.splice(at..at, text.iter().copied());
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            data.drain(start..end);
        }
        5 => duplicate_line(rng, data),
        6 => remove_line(rng, data),
        7 => swap_lines(rng, data),
        8 => replace_number(rng, data),
        9 => crlf_game(rng, data),
        10 if !others.is_empty() => {
            // Splice: our prefix, another input's suffix (headers of one, body of another).
            let other = *rng.pick(others);
            let cut = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            data.truncate(cut);
            data.extend_from_slice(&other[from..]);
        }
        11 if len > 0 => {
            // Repeat a chunk many times: long values, many headers, deep nesting.
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let chunk = data[start..end].to_vec();
            let times = 1 + rng.below(200);
            let tail = data.split_off(end);
            for _ in 0..times {
                data.extend_from_slice(&chunk);
            }
            data.extend_from_slice(&tail);
        }
        _ => {
            let at = rng.below(len + 1);
            data.insert(at, rng.next_u64() as u8);
        }
    }
}

/// Byte ranges of the lines of `data` (each including its `\n`, if any).
fn lines(data: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push((start, data.len()));
    }
    out
}

fn duplicate_line(rng: &mut Rng, data: &mut Vec<u8>) {
    let ls = lines(data);
    if ls.is_empty() {
        return;
    }
    let (s, e) = *rng.pick(&ls);
    let line = data[s..e].to_vec();
    let at = rng.pick(&ls).0;
    data.splice(at..at, line);
}

fn remove_line(rng: &mut Rng, data: &mut Vec<u8>) {
    let ls = lines(data);
    if ls.is_empty() {
        return;
    }
    let (s, e) = *rng.pick(&ls);
    data.drain(s..e);
}

fn swap_lines(rng: &mut Rng, data: &mut Vec<u8>) {
    let ls = lines(data);
    if ls.len() < 2 {
        return;
    }
    let a = rng.below(ls.len() - 1);
    let (s1, e1) = ls[a];
    let (s2, e2) = ls[a + 1 + rng.below(ls.len() - a - 1)];
    let mut out = Vec::with_capacity(data.len());
    out.extend_from_slice(&data[..s1]);
    out.extend_from_slice(&data[s2..e2]);
    out.extend_from_slice(&data[e1..s2]);
    out.extend_from_slice(&data[s1..e1]);
    out.extend_from_slice(&data[e2..]);
    *data = out;
}

/// Replaces one run of ASCII digits with a boundary value.
fn replace_number(rng: &mut Rng, data: &mut Vec<u8>) {
    let runs: Vec<(usize, usize)> = {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if data[i].is_ascii_digit() {
                let s = i;
                while i < data.len() && data[i].is_ascii_digit() {
                    i += 1;
                }
                runs.push((s, i));
            } else {
                i += 1;
            }
        }
        runs
    };
    if runs.is_empty() {
        return;
    }
    let (s, e) = *rng.pick(&runs);
    let n = *rng.pick(&[
        "0",
        "1",
        "-1",
        "127",
        "128",
        "255",
        "256",
        "65535",
        "65536",
        "4294967296",
        "18446744073709551615",
        "1048577",
        "",
    ]);
    data.splice(s..e, n.bytes());
}

/// Line-ending games: CRLF→LF, CRLF→CR, LF→CRLF, or a fold (`CRLF SP`) inserted.
fn crlf_game(rng: &mut Rng, data: &mut Vec<u8>) {
    let ends: Vec<usize> = data
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    if ends.is_empty() {
        return;
    }
    let i = *rng.pick(&ends);
    let has_cr = i > 0 && data[i - 1] == b'\r';
    match rng.below(4) {
        0 if has_cr => {
            data.remove(i - 1);
        }
        1 if has_cr => {
            data.remove(i);
        }
        2 if !has_cr => data.insert(i, b'\r'),
        _ => {
            let fold = *rng.pick(&[" ", "\t", "  \r\n"]);
            data.splice(i + 1..i + 1, fold.bytes());
        }
    }
}
