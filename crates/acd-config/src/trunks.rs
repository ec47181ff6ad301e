//! `[auth]` (digest algorithms, failure back-off) and `[[trunks]]` (carriers
//! allowed to send calls, with optional digest and call limits).
//!
//! No `[[trunks]]` section means "any source may call", as before trunks
//! existed: the edge then admits INVITEs from anywhere (see
//! `acd_edge::trunks::TrunkGuard::open`). Once one trunk is listed, INVITEs
//! from sources outside every trunk's `sources` are refused with 403.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::{Seg, Validator};

/// Digest hash algorithms (RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DigestAlgorithm {
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
}

/// `[auth]`: how credentials are challenged and how failures are punished.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Algorithms offered in 401s, most preferred first.
    pub algorithms: Vec<DigestAlgorithm>,
    /// Failed attempts from one source address within `failure_window_secs`
    /// that start a ban.
    pub max_failures: u32,
    pub failure_window_secs: u64,
    /// First ban; each further ban of the same source doubles it.
    pub first_ban_secs: u64,
    pub max_ban_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            // MD5 only: common clients (SIPp 3.6, baresip 1.0) fail on a
            // SHA-256 challenge instead of skipping it. Configure
            // ["SHA-256", "MD5"] (RFC 8760 §2.4 order) where every phone can.
            algorithms: vec![DigestAlgorithm::Md5],
            max_failures: 5,
            failure_window_secs: 60,
            first_ban_secs: 30,
            max_ban_secs: 3600,
        }
    }
}

/// An address block, `203.0.113.0/24` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside the block (an IPv4-mapped IPv6 address counts
    /// as its IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        (a[full] & mask) == (b[full] & mask)
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = |why: &str| format!("bad CIDR `{s}`: {why}");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.as_str(), None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad("not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad(&format!("prefix must be 0-{max}")))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// `[[trunks]]`: a carrier or PBX allowed to send calls.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkDef {
    pub name: String,
    /// Source addresses the trunk's INVITEs come from.
    pub sources: Vec<Cidr>,
    /// When set (with `password`), INVITEs from this trunk must carry digest
    /// credentials for this user.
    pub username: Option<String>,
    pub password: Option<String>,
    /// Calls up at once from this trunk; none = unlimited.
    pub max_concurrent_calls: Option<u32>,
    /// New calls per second (token bucket, burst of one second's worth);
    /// none = unlimited.
    pub max_calls_per_second: Option<f64>,
    /// Outbound calls (callbacks) through this trunk: the request URI with
    /// `{number}` replaced, `sip:{number}@203.0.113.1:5060`.
    #[serde(default)]
    pub dial: Option<String>,
}

impl Validator<'_> {
    pub(crate) fn auth(&mut self, a: &AuthConfig) {
        let at = |key: &'static str| [Seg::Key("auth"), Seg::Key(key)];
        if a.max_failures == 0 {
            self.push(&at("max_failures"), "must be at least 1");
        }
        if a.first_ban_secs == 0 || a.first_ban_secs > a.max_ban_secs {
            self.push(&at("first_ban_secs"), "must be 1 to max_ban_secs");
        }
        for (i, alg) in a.algorithms.iter().enumerate() {
            if a.algorithms[..i].contains(alg) {
                self.push(&at("algorithms"), &format!("{alg:?} is listed twice"));
            }
        }
    }

    pub(crate) fn trunks(&mut self, trunks: &[TrunkDef]) {
        self.unique(trunks.iter().map(|t| t.name.as_str()), "trunks", "name");
        for (i, t) in trunks.iter().enumerate() {
            let at = |key: &'static str| [Seg::Key("trunks"), Seg::Index(i), Seg::Key(key)];
            if t.sources.is_empty() {
                self.push(&at("sources"), "must list at least one address");
            }
            match (&t.username, &t.password) {
                (Some(_), None) => self.push(&at("password"), "must be set with username"),
                (None, Some(_)) => self.push(&at("username"), "must be set with password"),
                (Some(u), Some(p)) if u.is_empty() || p.is_empty() => {
                    self.push(&at("password"), "username and password must not be empty")
                }
                _ => {}
            }
            if t.max_concurrent_calls == Some(0) {
                self.push(
                    &at("max_concurrent_calls"),
                    "must be at least 1 (omit for no limit)",
                );
            }
            if let Some(dial) = &t.dial {
                if !dial.starts_with("sip:") || !dial.contains("{number}") {
                    self.push(
                        &at("dial"),
                        "must be a SIP URI with {number}, e.g. sip:{number}@203.0.113.1:5060",
                    );
                }
            }
            if t.max_calls_per_second
                .is_some_and(|r| !r.is_finite() || r <= 0.0)
            {
                self.push(
                    &at("max_calls_per_second"),
                    "must be above 0 (omit for no limit)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        Cidr::try_from(s.to_string()).unwrap()
    }

    #[test]
    fn cidr_matching() {
        let net = cidr("203.0.113.0/24");
        assert!(net.contains("203.0.113.7".parse().unwrap()));
        assert!(!net.contains("203.0.114.7".parse().unwrap()));
        assert!(net.contains("::ffff:203.0.113.9".parse().unwrap()));
        let odd = cidr("10.0.0.128/25");
        assert!(odd.contains("10.0.0.200".parse().unwrap()));
        assert!(!odd.contains("10.0.0.127".parse().unwrap()));
        let host = cidr("127.0.0.1");
        assert_eq!(host.prefix, 32);
        assert!(host.contains("127.0.0.1".parse().unwrap()));
        assert!(!host.contains("127.0.0.2".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("198.51.100.1".parse().unwrap()));
        assert!(cidr("2001:db8::/32").contains("2001:db8:1::5".parse().unwrap()));
        assert!(!cidr("2001:db8::/32").contains("203.0.113.7".parse().unwrap()));
        for bad in ["203.0.113.0/33", "203.0.113/24", "host.example", "::/129"] {
            let e = Cidr::try_from(bad.to_string()).unwrap_err();
            assert!(e.contains(bad), "{e}");
        }
    }
}
