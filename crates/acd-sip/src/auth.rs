//! HTTP Digest authentication (RFC 7616, RFC 3261 §22.4) with MD5 and
//! SHA-256 (RFC 8760), server and client side, plus the per-source failure
//! back-off ([`backoff`]).
//!
//! Nonces are stateless to verify: `<unix-seconds hex>.<seq hex>.<MAC>` with a
//! MAC over the secret, so any edge sharing the secret (and a restarted one)
//! accepts them, and the age check (≤ 300 s) bounds their life. Their *use* is
//! tracked per edge in a bounded [`nonce::NonceTable`]: with `qop=auth` each
//! nonce count is accepted once and must increase; without qop a nonce is
//! single-use. A replay is answered like a stale nonce (401, `stale=true`, a
//! fresh challenge), so an honest client that lost count recovers at once.
//! Another edge with the same secret does not share the table: a captured
//! header could be replayed there once, which the registrar's rule that a
//! Contact changes only with a newer nonce covers (see `acd-edge`).

pub mod backoff;
pub mod guard;
pub mod nonce;

use md5::Md5;
use sha2::{Digest, Sha256};

pub use backoff::{BackoffConfig, FailureBackoff};
pub use guard::{AuthGuard, Challenge, Decision};
use nonce::NonceTable;

/// Nonces older than this are answered with a `stale=true` challenge.
pub const NONCE_MAX_AGE_SECS: u64 = 300;
/// Nonces whose use is remembered at once (about 100 bytes each).
pub const DEFAULT_NONCE_TABLE: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("challenge is not a Digest challenge")]
    NotDigest,
    #[error("challenge lacks {0}")]
    MissingParam(&'static str),
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("unsupported qop {0:?}")]
    UnsupportedQop(String),
}

/// Digest hash algorithms (RFC 7616 §3.2, RFC 8760). The `-sess` variants
/// are not offered and refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token in `algorithm=`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parses an `algorithm=` token (case-insensitive).
    pub fn parse(token: &str) -> Option<Algorithm> {
        [Algorithm::Md5, Algorithm::Sha256]
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(token))
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    fn hex(self, parts: &[&[u8]]) -> String {
        match self {
            Algorithm::Md5 => hex_of::<Md5>(parts),
            Algorithm::Sha256 => hex_of::<Sha256>(parts),
        }
    }
}

/// Why credentials were refused; `as_str` is the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailReason {
    /// Not Digest, or a parameter missing or unparsable.
    Malformed,
    UnsupportedAlgorithm,
    UnsupportedQop,
    /// The digest `uri` is not the Request-URI (RFC 7616 §3.4.6).
    UriMismatch,
    /// The nonce was not issued with our secret.
    ForeignNonce,
    UnknownUser,
    WrongResponse,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Malformed => "malformed",
            FailReason::UnsupportedAlgorithm => "unsupported_algorithm",
            FailReason::UnsupportedQop => "unsupported_qop",
            FailReason::UriMismatch => "uri_mismatch",
            FailReason::ForeignNonce => "foreign_nonce",
            FailReason::UnknownUser => "unknown_user",
            FailReason::WrongResponse => "wrong_response",
        }
    }
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Credentials that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user: String,
    pub algorithm: Algorithm,
    /// The nonce they answered, and when we issued it (unix seconds): the
    /// registrar lets a binding move only with a nonce newer than its own.
    pub nonce: String,
    pub nonce_issued: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum AuthOutcome {
    /// Credentials verified, and this (nonce, nc) was not seen before.
    Ok(Verified),
    /// Credentials were right but the nonce expired: challenge again with stale=true.
    Stale,
    /// Right credentials, but this nonce (or nonce count) was used before:
    /// challenge again with stale=true, never accept.
    Replay,
    /// Wrong credentials or malformed header.
    Fail(FailReason),
    /// No credentials for our realm: challenge.
    Missing,
}

/// Digest verifier for one realm: stateless nonces, tracked use.
#[derive(Clone)]
pub struct DigestServer {
    pub realm: String,
    secret: [u8; 32],
    /// Makes each challenge's nonce unique, so that two clients never share
    /// one (their nonce counts would collide in the table).
    seq: u64,
    seen: NonceTable,
    /// Algorithms offered, most preferred first.
    offer: Vec<Algorithm>,
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .field("nonces_tracked", &self.seen.len())
            .finish()
    }
}

fn hex_of<D: Digest>(parts: &[&[u8]]) -> String {
    let mut h = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Constant-time comparison of two hex strings (case-insensitive).
fn ct_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| {
        acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
    }) == 0
}

/// Parses `Digest k=v, k="v", …` into (lower-cased key, unquoted value) pairs.
/// Returns None if the scheme is not Digest.
pub fn parse_digest_params(header: &str) -> Option<Vec<(String, String)>> {
    let h = header.trim();
    let scheme = h.get(..6)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let rest = h.get(6..)?;
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ',' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        if key.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                value.push(n);
                            }
                        }
                        '"' => break,
                        _ => value.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        }
        out.push((key.to_ascii_lowercase(), value));
    }
    Some(out)
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// request-digest (RFC 7616 §3.4.1).
fn request_digest(
    alg: Algorithm,
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>, // (nc, cnonce, qop)
    method: &str,
    uri: &str,
) -> String {
    let ha2 = alg.hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some((nc, cnonce, qop)) => alg.hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            qop.as_bytes(),
            ha2.as_bytes(),
        ]),
        None => alg.hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// What the stateless check learnt, before use tracking.
struct Checked {
    verified: Verified,
    nc: Option<u32>,
}

impl DigestServer {
    pub fn new(realm: impl Into<String>, secret: [u8; 32]) -> Self {
        DigestServer {
            realm: realm.into(),
            secret,
            seq: 0,
            seen: NonceTable::new(DEFAULT_NONCE_TABLE),
            offer: vec![Algorithm::Sha256, Algorithm::Md5],
        }
    }

    /// Starts the nonce sequence at `seed` (random, from the shell), so that
    /// edges sharing a secret do not issue the same nonces.
    pub fn seeded(mut self, seed: u64) -> Self {
        self.seq = seed;
        self
    }

    /// Algorithms to offer, most preferred first (default SHA-256, MD5 as
    /// RFC 8760 §2.4 asks). Some clients (SIPp 3.6, older phones) fail on a
    /// first challenge they do not support instead of taking the next one;
    /// putting MD5 first serves them. An empty list keeps the default.
    /// Verification accepts either algorithm whatever the order.
    pub fn offering(mut self, algorithms: &[Algorithm]) -> Self {
        if !algorithms.is_empty() {
            self.offer = algorithms.to_vec();
        }
        self
    }

    /// Bounds the table of used nonces (default [`DEFAULT_NONCE_TABLE`]).
    pub fn with_nonce_capacity(mut self, capacity: usize) -> Self {
        self.seen = NonceTable::new(capacity);
        self
    }

    /// Nonces whose use is being remembered.
    pub fn nonces_tracked(&self) -> usize {
        self.seen.len()
    }

    fn nonce_mac(&self, ts_hex: &str, seq_hex: &str) -> String {
        let mut mac = Algorithm::Sha256.hex(&[
            &self.secret,
            ts_hex.as_bytes(),
            seq_hex.as_bytes(),
            self.realm.as_bytes(),
            &self.secret,
        ]);
        mac.truncate(32); // 128 bits are plenty for a 300 s nonce
        mac
    }

    fn nonce(&mut self, now_unix_secs: u64) -> String {
        self.seq = self.seq.wrapping_add(1);
        let ts = format!("{now_unix_secs:x}");
        let seq = format!("{:x}", self.seq);
        let mac = self.nonce_mac(&ts, &seq);
        format!("{ts}.{seq}.{mac}")
    }

    /// One WWW-Authenticate value for a 401 (RFC 7616 §3.3).
    pub fn challenge(&mut self, now_unix_secs: u64, alg: Algorithm, stale: bool) -> String {
        let nonce = self.nonce(now_unix_secs);
        self.challenge_with(&nonce, alg, stale)
    }

    /// One WWW-Authenticate value per offered algorithm, in order of
    /// preference (a client takes the first it supports, RFC 8760 §2.4),
    /// sharing one nonce. `stale=true` after [`AuthOutcome::Stale`] or
    /// [`AuthOutcome::Replay`].
    pub fn challenges(&mut self, now_unix_secs: u64, stale: bool) -> Vec<String> {
        let nonce = self.nonce(now_unix_secs);
        self.offer
            .iter()
            .map(|alg| self.challenge_with(&nonce, *alg, stale))
            .collect()
    }

    fn challenge_with(&self, nonce: &str, alg: Algorithm, stale: bool) -> String {
        let mut v = format!(
            "Digest realm={}, nonce=\"{nonce}\", algorithm={}, qop=\"auth\"",
            quote(&self.realm),
            alg.name()
        );
        if stale {
            v.push_str(", stale=true");
        }
        v
    }

    /// Returns the nonce's timestamp if it was issued by us (any edge with our secret).
    fn check_nonce(&self, nonce: &str) -> Option<u64> {
        let (head, mac) = nonce.rsplit_once('.')?;
        let (ts, seq) = head.split_once('.')?;
        let well_formed = |s: &str| !s.is_empty() && s.len() <= 16;
        if !well_formed(ts) || !well_formed(seq) || !ct_eq(mac, &self.nonce_mac(ts, seq)) {
            return None;
        }
        u64::from_str_radix(ts, 16).ok()
    }

    /// Verifies an Authorization header value for `method` and records the
    /// use of its nonce. The `uri` parameter must be present and is part of
    /// the digest; use [`Self::verify_request`] to also require it to equal
    /// the Request-URI (RFC 7616 §3.4.6).
    pub fn verify(
        &mut self,
        authorization: &str,
        method: &str,
        now_unix_secs: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        let checked = self.check_inner(authorization, method, None, now_unix_secs, password_of);
        self.track(checked, now_unix_secs)
    }

    /// [`Self::verify`] plus a check that the digest `uri` equals `request_uri`.
    pub fn verify_request(
        &mut self,
        authorization: &str,
        method: &str,
        request_uri: &str,
        now_unix_secs: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        let checked = self.check_inner(
            authorization,
            method,
            Some(request_uri),
            now_unix_secs,
            password_of,
        );
        self.track(checked, now_unix_secs)
    }

    /// The stateless part of [`Self::verify_request`] alone: it does not
    /// record the nonce's use, so a replay passes. For benchmarks and for
    /// checks that must not consume a nonce count.
    pub fn check_request(
        &self,
        authorization: &str,
        method: &str,
        request_uri: &str,
        now_unix_secs: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        match self.check_inner(
            authorization,
            method,
            Some(request_uri),
            now_unix_secs,
            password_of,
        ) {
            Ok(c) => AuthOutcome::Ok(c.verified),
            Err(o) => o,
        }
    }

    /// Records a verified use; only verified ones, so that nobody without
    /// the password can burn an honest client's nonce counts.
    fn track(&mut self, checked: Result<Checked, AuthOutcome>, now: u64) -> AuthOutcome {
        let c = match checked {
            Ok(c) => c,
            Err(o) => return o,
        };
        let expired_before = now.saturating_sub(NONCE_MAX_AGE_SECS);
        if self.seen.admit(
            &c.verified.nonce,
            c.verified.nonce_issued,
            c.nc,
            expired_before,
        ) {
            AuthOutcome::Ok(c.verified)
        } else {
            AuthOutcome::Replay
        }
    }

    fn check_inner(
        &self,
        authorization: &str,
        method: &str,
        request_uri: Option<&str>,
        now: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> Result<Checked, AuthOutcome> {
        use AuthOutcome::{Fail, Missing};
        if authorization.trim().is_empty() {
            return Err(Missing);
        }
        let p = parse_digest_params(authorization).ok_or(Fail(FailReason::Malformed))?;
        // Credentials for another realm are as good as none (RFC 3261 §22.4).
        match param(&p, "realm") {
            Some(r) if r == self.realm => {}
            Some(_) => return Err(Missing),
            None => return Err(Fail(FailReason::Malformed)),
        }
        let fields = (
            param(&p, "username"),
            param(&p, "nonce"),
            param(&p, "uri"),
            param(&p, "response"),
        );
        let (Some(user), Some(nonce), Some(uri), Some(response)) = fields else {
            return Err(Fail(FailReason::Malformed));
        };
        let alg = match param(&p, "algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a).ok_or(Fail(FailReason::UnsupportedAlgorithm))?,
        };
        if request_uri.is_some_and(|expected| uri != expected) {
            return Err(Fail(FailReason::UriMismatch));
        }
        let issued = self
            .check_nonce(nonce)
            .ok_or(Fail(FailReason::ForeignNonce))?;
        let (qop, nc) = match param(&p, "qop") {
            None => (None, None),
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc_s), Some(cnonce)) = (param(&p, "nc"), param(&p, "cnonce")) else {
                    return Err(Fail(FailReason::Malformed));
                };
                let nc = u32::from_str_radix(nc_s, 16).map_err(|_| Fail(FailReason::Malformed))?;
                (Some((nc_s, cnonce, q)), Some(nc))
            }
            Some(_) => return Err(Fail(FailReason::UnsupportedQop)),
        };
        let password = password_of(user).ok_or(Fail(FailReason::UnknownUser))?;
        let ha1 = alg.hex(&[user.as_bytes(), self.realm.as_bytes(), password.as_bytes()]);
        let expected = request_digest(alg, &ha1, nonce, qop, method, uri);
        if !ct_eq(&expected, response) {
            return Err(Fail(FailReason::WrongResponse));
        }
        // Nonces from the future (clock skew between edges) beyond the window fail too.
        // Both sides saturate: `now + MAX_AGE` overflowed (a panic in debug builds) for a
        // `now` near u64::MAX, found by the `digest` fuzz target.
        if now.saturating_sub(issued) > NONCE_MAX_AGE_SECS
            || issued.saturating_sub(now) > NONCE_MAX_AGE_SECS
        {
            return Err(AuthOutcome::Stale);
        }
        Ok(Checked {
            verified: Verified {
                user: user.to_string(),
                algorithm: alg,
                nonce: nonce.to_string(),
                nonce_issued: issued,
            },
            nc,
        })
    }
}

/// Builds an Authorization value answering `www_authenticate` (RFC 7616
/// §3.4), with MD5 or SHA-256 as the challenge names (MD5 when it names
/// none). Uses qop=auth when offered, else the RFC 2069 form. `nc` is the
/// nonce count.
pub fn client_authorization(
    www_authenticate: &str,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
    nc: u32,
) -> Result<String, AuthError> {
    let p = parse_digest_params(www_authenticate).ok_or(AuthError::NotDigest)?;
    let realm = param(&p, "realm").ok_or(AuthError::MissingParam("realm"))?;
    let nonce = param(&p, "nonce").ok_or(AuthError::MissingParam("nonce"))?;
    let alg = match param(&p, "algorithm") {
        None => Algorithm::Md5,
        Some(a) => {
            Algorithm::parse(a).ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_string()))?
        }
    };
    let qop = match param(&p, "qop") {
        None => None,
        Some(list) => {
            if list
                .split(',')
                .any(|q| q.trim().eq_ignore_ascii_case("auth"))
            {
                Some("auth")
            } else {
                return Err(AuthError::UnsupportedQop(list.to_string()));
            }
        }
    };
    let ha1 = alg.hex(&[user.as_bytes(), realm.as_bytes(), password.as_bytes()]);
    let nc_s = format!("{nc:08x}");
    let response = request_digest(
        alg,
        &ha1,
        nonce,
        qop.map(|q| (nc_s.as_str(), cnonce, q)),
        method,
        uri,
    );
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri),
        alg.name()
    );
    if let Some(q) = qop {
        out.push_str(&format!(", cnonce={}, qop={q}, nc={nc_s}", quote(cnonce)));
    }
    if let Some(opaque) = param(&p, "opaque") {
        out.push_str(&format!(", opaque={}", quote(opaque)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_example() {
        let challenge = r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let auth = client_authorization(
            challenge,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            "0a4f113b",
            1,
        )
        .unwrap();
        assert!(
            auth.contains(r#"response="6629fae49393a05397450978507c4ef1""#),
            "{auth}"
        );
        assert!(auth.contains("nc=00000001"));
        assert!(auth.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#));
    }

    /// RFC 7616 §3.9.1: the same request answered with SHA-256 and MD5.
    #[test]
    fn rfc7616_sha256_and_md5_vectors() {
        let challenge = |alg: &str| {
            format!(
                r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={alg}, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#
            )
        };
        let answer = |alg: &str| {
            client_authorization(
                &challenge(alg),
                "Mufasa",
                "Circle of Life",
                "GET",
                "/dir/index.html",
                "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                1,
            )
            .unwrap()
        };
        let sha = answer("SHA-256");
        assert!(
            sha.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{sha}"
        );
        assert!(sha.contains("algorithm=SHA-256"));
        let md5 = answer("MD5");
        assert!(
            md5.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{md5}"
        );
    }

    fn server() -> DigestServer {
        DigestServer::new("acd.example.com", [7u8; 32])
    }

    fn pw(user: &str) -> Option<String> {
        (user == "agent1").then(|| "s3cret".to_string())
    }

    fn answer(ch: &str, nc: u32) -> String {
        client_authorization(
            ch,
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:acd.example.com",
            "c1",
            nc,
        )
        .unwrap()
    }

    fn user_of(o: &AuthOutcome) -> Option<&str> {
        match o {
            AuthOutcome::Ok(v) => Some(v.user.as_str()),
            _ => None,
        }
    }

    #[test]
    fn challenges_offer_sha256_first_then_md5_with_one_nonce() {
        let mut s = server();
        let [first, second] = <[String; 2]>::try_from(s.challenges(1_000_000, false)).unwrap();
        assert!(first.starts_with("Digest realm=\"acd.example.com\", nonce=\""));
        assert!(first.contains("algorithm=SHA-256") && first.contains("qop=\"auth\""));
        assert!(second.contains("algorithm=MD5"));
        let nonce = |c: &str| {
            parse_digest_params(c)
                .and_then(|p| param(&p, "nonce").map(str::to_string))
                .unwrap()
        };
        assert_eq!(nonce(&first), nonce(&second));
        let mut md5_first = server().offering(&[Algorithm::Md5, Algorithm::Sha256]);
        let chs = md5_first.challenges(1, false);
        assert!(chs[0].contains("algorithm=MD5") && chs[1].contains("algorithm=SHA-256"));
        let stale = s.challenges(1_000_000, true)[0].clone();
        assert!(stale.ends_with("stale=true"));
        assert_ne!(
            nonce(&stale),
            nonce(&first),
            "every challenge has its own nonce"
        );
    }

    #[test]
    fn round_trip_both_algorithms() {
        for idx in 0..2 {
            let mut s = server();
            let ch = s.challenges(1_000_000, false)[idx].clone();
            let a = answer(&ch, 1);
            let out = s.verify_request(&a, "REGISTER", "sip:acd.example.com", 1_000_010, pw);
            let AuthOutcome::Ok(v) = out else {
                panic!("{idx}: {out:?}")
            };
            assert_eq!(v.user, "agent1");
            assert_eq!(v.nonce_issued, 1_000_000);
            let want = [Algorithm::Sha256, Algorithm::Md5][idx];
            assert_eq!(v.algorithm, want);
        }
    }

    #[test]
    fn stateless_checks() {
        let mut s = server();
        let ch = s.challenge(1_000_000, Algorithm::Md5, false);
        let a = answer(&ch, 1);
        assert_eq!(
            user_of(&s.check_request(&a, "REGISTER", "sip:acd.example.com", 1_000_010, pw)),
            Some("agent1")
        );
        assert_eq!(
            s.check_request(&a, "REGISTER", "sip:other.example.com", 1_000_010, pw),
            AuthOutcome::Fail(FailReason::UriMismatch)
        );
        // Another edge with the same secret accepts it (stateless nonce).
        assert_eq!(
            user_of(&server().verify(&a, "REGISTER", 1_000_010, pw)),
            Some("agent1")
        );
        // Wrong method → different HA2.
        assert_eq!(
            s.verify(&a, "INVITE", 1_000_010, pw),
            AuthOutcome::Fail(FailReason::WrongResponse)
        );
        // Expired nonce but right password → Stale.
        assert_eq!(
            s.verify(&a, "REGISTER", 1_000_000 + 301, pw),
            AuthOutcome::Stale
        );
    }

    /// Fuzz regression (fuzz/corpus/digest/far_future_now.txt): the freshness check
    /// overflowed for a `now` near u64::MAX.
    #[test]
    fn now_at_the_end_of_time_does_not_overflow() {
        let mut s = server();
        let now = u64::MAX;
        let answer = |s: &mut DigestServer, at: u64| {
            client_authorization(
                &s.challenge(at, Algorithm::Md5, false),
                "agent1",
                "s3cret",
                "REGISTER",
                "sip:x",
                "c",
                1,
            )
            .unwrap()
        };
        let a = answer(&mut s, now);
        assert!(
            matches!(s.verify(&a, "REGISTER", now, pw), AuthOutcome::Ok(v) if v.user == "agent1")
        );
        let old = answer(&mut s, 0);
        assert_eq!(s.verify(&old, "REGISTER", now, pw), AuthOutcome::Stale);
        let future = answer(&mut s, now);
        assert_eq!(s.verify(&future, "REGISTER", 0, pw), AuthOutcome::Stale);
    }

    #[test]
    fn replay_with_same_nc_is_refused() {
        let mut s = server();
        let ch = s.challenges(100, false)[0].clone();
        let a = answer(&ch, 1);
        assert!(matches!(
            s.verify(&a, "REGISTER", 101, pw),
            AuthOutcome::Ok(_)
        ));
        assert_eq!(s.verify(&a, "REGISTER", 102, pw), AuthOutcome::Replay);
    }

    #[test]
    fn nc_must_increase() {
        let mut s = server();
        let ch = s.challenges(100, false)[1].clone();
        assert!(matches!(
            s.verify(&answer(&ch, 1), "REGISTER", 101, pw),
            AuthOutcome::Ok(_)
        ));
        assert!(matches!(
            s.verify(&answer(&ch, 2), "REGISTER", 102, pw),
            AuthOutcome::Ok(_)
        ));
        assert!(matches!(
            s.verify(&answer(&ch, 5), "REGISTER", 103, pw),
            AuthOutcome::Ok(_)
        ));
        assert_eq!(
            s.verify(&answer(&ch, 4), "REGISTER", 104, pw),
            AuthOutcome::Replay
        );
        assert_eq!(
            s.verify(&answer(&ch, 5), "REGISTER", 104, pw),
            AuthOutcome::Replay
        );
        assert!(matches!(
            s.verify(&answer(&ch, 6), "REGISTER", 105, pw),
            AuthOutcome::Ok(_)
        ));
    }

    #[test]
    fn failed_attempts_do_not_consume_nonce_counts() {
        let mut s = server();
        let ch = s.challenges(100, false)[0].clone();
        let wrong =
            client_authorization(&ch, "agent1", "nope", "REGISTER", "sip:x", "c", 7).unwrap();
        assert_eq!(
            s.verify(&wrong, "REGISTER", 101, pw),
            AuthOutcome::Fail(FailReason::WrongResponse)
        );
        assert_eq!(s.nonces_tracked(), 0);
        assert!(matches!(
            s.verify(&answer(&ch, 1), "REGISTER", 101, pw),
            AuthOutcome::Ok(_)
        ));
    }

    #[test]
    fn nonce_without_qop_is_single_use() {
        let mut s = server();
        let nonce = s.nonce(50);
        let ch = format!("Digest realm=\"acd.example.com\", nonce=\"{nonce}\"");
        let a = answer(&ch, 1);
        assert!(!a.contains("qop"));
        assert_eq!(user_of(&s.verify(&a, "REGISTER", 60, pw)), Some("agent1"));
        assert_eq!(s.verify(&a, "REGISTER", 61, pw), AuthOutcome::Replay);
    }

    #[test]
    fn evicted_nonce_is_accepted_once_more_then_tracked() {
        let mut s = server().with_nonce_capacity(2);
        let chs: Vec<String> = (0..3)
            .map(|_| s.challenges(100, false)[0].clone())
            .collect();
        let first = answer(&chs[0], 1);
        for ch in &chs {
            assert!(matches!(
                s.verify(&answer(ch, 1), "REGISTER", 101, pw),
                AuthOutcome::Ok(_)
            ));
        }
        assert_eq!(s.nonces_tracked(), 2);
        assert!(matches!(
            s.verify(&first, "REGISTER", 102, pw),
            AuthOutcome::Ok(_)
        ));
        assert_eq!(s.verify(&first, "REGISTER", 102, pw), AuthOutcome::Replay);
    }

    #[test]
    fn failures() {
        let mut s = server();
        let ch = s.challenge(100, Algorithm::Md5, false);
        assert_eq!(s.verify("", "REGISTER", 100, pw), AuthOutcome::Missing);
        let wrong =
            client_authorization(&ch, "agent1", "nope", "REGISTER", "sip:x", "c", 1).unwrap();
        assert_eq!(
            s.verify(&wrong, "REGISTER", 100, pw),
            AuthOutcome::Fail(FailReason::WrongResponse)
        );
        let unknown =
            client_authorization(&ch, "ghost", "s3cret", "REGISTER", "sip:x", "c", 1).unwrap();
        assert_eq!(
            s.verify(&unknown, "REGISTER", 100, pw),
            AuthOutcome::Fail(FailReason::UnknownUser)
        );
        // Forged nonce from a server with another secret.
        let mut other = DigestServer::new("acd.example.com", [9u8; 32]);
        let forged = client_authorization(
            &other.challenge(100, Algorithm::Sha256, false),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(
            s.verify(&forged, "REGISTER", 100, pw),
            AuthOutcome::Fail(FailReason::ForeignNonce)
        );
        // Another realm → Missing (challenge again).
        let mut foreign = DigestServer::new("elsewhere", [7u8; 32]);
        let f = client_authorization(
            &foreign.challenge(100, Algorithm::Md5, false),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(s.verify(&f, "REGISTER", 100, pw), AuthOutcome::Missing);
        assert_eq!(
            s.verify("Basic abc", "REGISTER", 100, pw),
            AuthOutcome::Fail(FailReason::Malformed)
        );
        assert!(matches!(
            s.verify("Digest ,,,=\"", "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        let sess = ch.replace("algorithm=MD5", "algorithm=MD5-sess");
        assert_eq!(
            client_authorization(&sess, "u", "p", "M", "u", "c", 1),
            Err(AuthError::UnsupportedAlgorithm("MD5-sess".into()))
        );
        let a = answer(&ch, 1).replace("algorithm=MD5", "algorithm=SHA-512-256");
        assert_eq!(
            s.verify(&a, "REGISTER", 100, pw),
            AuthOutcome::Fail(FailReason::UnsupportedAlgorithm)
        );
        assert_eq!(
            client_authorization("Basic realm=\"r\"", "u", "p", "M", "u", "c", 1),
            Err(AuthError::NotDigest)
        );
    }
}
