//! rtpengine's ng control protocol: `<cookie> <bencoded dict>` over UDP,
//! the reply echoing the cookie. Only what the bench sends (`offer`,
//! `answer`, `delete`, dicts of strings) and reads (`result`, `sdp`,
//! `error-reason`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// A decoded bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// A dict of strings (keys sorted, as bencode wants).
pub fn encode_dict(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut sorted: Vec<_> = pairs.to_vec();
    sorted.sort();
    let mut out = b"d".to_vec();
    for (k, v) in sorted {
        for s in [k, v] {
            out.extend_from_slice(format!("{}:", s.len()).as_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out.push(b'e');
    out
}

/// Decodes one value at the start of `b`; returns it and the bytes used.
pub fn decode(b: &[u8]) -> Option<(Value, usize)> {
    match *b.first()? {
        b'i' => {
            let end = b.iter().position(|&c| c == b'e')?;
            let n = std::str::from_utf8(&b[1..end]).ok()?.parse().ok()?;
            Some((Value::Int(n), end + 1))
        }
        b'l' | b'd' => {
            let dict = b[0] == b'd';
            let (mut at, mut items) = (1, Vec::new());
            while *b.get(at)? != b'e' {
                let (v, used) = decode(&b[at..])?;
                items.push(v);
                at += used;
            }
            if !dict {
                return Some((Value::List(items), at + 1));
            }
            if items.len() % 2 != 0 {
                return None;
            }
            let mut map = BTreeMap::new();
            let mut it = items.into_iter();
            while let (Some(Value::Bytes(k)), Some(v)) = (it.next(), it.next()) {
                map.insert(k, v);
            }
            Some((Value::Dict(map), at + 1))
        }
        b'0'..=b'9' => {
            let colon = b.iter().position(|&c| c == b':')?;
            let len: usize = std::str::from_utf8(&b[..colon]).ok()?.parse().ok()?;
            let s = b.get(colon + 1..colon + 1 + len)?;
            Some((Value::Bytes(s.to_vec()), colon + 1 + len))
        }
        _ => None,
    }
}

impl Value {
    pub fn get_str(&self, key: &str) -> Option<String> {
        match self {
            Value::Dict(m) => match m.get(key.as_bytes())? {
                Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A client of one rtpengine's ng port.
pub struct Ng {
    sock: UdpSocket,
    server: SocketAddr,
    next_cookie: u64,
}

impl Ng {
    pub fn new(server: SocketAddr) -> Result<Self> {
        let sock = UdpSocket::bind("127.0.0.1:0").context("bind the ng client socket")?;
        sock.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(Ng {
            sock,
            server,
            next_cookie: 1,
        })
    }

    /// Sends a command, retrying (same cookie: rtpengine answers a repeat
    /// from its cache) up to 4 times; `Err` on no reply or a result other than `ok`.
    pub fn command(&mut self, pairs: &[(&str, &str)]) -> Result<Value> {
        // rtpengine caches replies by cookie: unique per run, not just per command.
        let cookie = format!("rtpload{}-{}", std::process::id(), self.next_cookie);
        self.next_cookie += 1;
        let mut msg = format!("{cookie} ").into_bytes();
        msg.extend_from_slice(&encode_dict(pairs));
        let mut buf = vec![0u8; 65536];
        for _ in 0..4 {
            self.sock.send_to(&msg, self.server)?;
            loop {
                let n = match self.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        break
                    }
                    Err(e) => return Err(e.into()),
                };
                let reply = &buf[..n];
                let Some(body) = reply.strip_prefix(format!("{cookie} ").as_bytes()) else {
                    continue; // a late reply to an earlier try
                };
                let (v, _) = decode(body).ok_or_else(|| anyhow!("undecodable ng reply"))?;
                match v.get_str("result").as_deref() {
                    Some("ok") => return Ok(v),
                    other => bail!(
                        "ng {:?}: result {:?}: {}",
                        pairs.first(),
                        other,
                        v.get_str("error-reason").unwrap_or_default()
                    ),
                }
            }
        }
        bail!("no ng reply from {} after 4 tries", self.server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_of_a_dict() {
        let enc = encode_dict(&[("sdp", "v=0"), ("command", "offer")]);
        assert_eq!(enc, b"d7:command5:offer3:sdp3:v=0e");
        let (v, used) = decode(&enc).expect("decodes");
        assert_eq!(used, enc.len());
        assert_eq!(v.get_str("command").as_deref(), Some("offer"));
    }

    #[test]
    fn decodes_nested_reply() {
        let (v, _) = decode(b"d6:resulti0e4:listl1:a1:be3:sdp2:hie").expect("decodes");
        assert_eq!(v.get_str("sdp").as_deref(), Some("hi"));
        assert_eq!(v.get_str("result"), None);
        assert!(decode(b"d3:abce").is_none());
    }
}
