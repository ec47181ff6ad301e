//! HTTP Digest authentication for REGISTER (RFC 2617, RFC 3261 §22.4, MD5 per
//! RFC 8760), server and client side.
//!
//! Nonces are stateless: `<unix-seconds hex>.<MD5(secret:ts:realm:secret) hex>`,
//! so any edge sharing the secret (and a restarted one) accepts them, and the age
//! check (≤ 300 s) bounds replay. There is no `nc` tracking: a captured
//! Authorization can be replayed within the nonce lifetime, which the 300 s window
//! and TLS/private networks are expected to cover.

use md5::{Digest, Md5};

/// Nonces older than this are answered with a `stale=true` challenge.
pub const NONCE_MAX_AGE_SECS: u64 = 300;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Credentials verified for `user`.
    Ok { user: String },
    /// Credentials were right but the nonce expired: challenge again with stale=true.
    Stale,
    /// Wrong credentials or malformed header; the reason is for logs, not the peer.
    Fail(String),
    /// No credentials for our realm: challenge.
    Missing,
}

/// Stateless Digest verifier for one realm.
#[derive(Clone)]
pub struct DigestServer {
    pub realm: String,
    pub secret: [u8; 32],
}

impl std::fmt::Debug for DigestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestServer")
            .field("realm", &self.realm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(32);
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

/// request-digest (RFC 2617 §3.2.2.1) for algorithm MD5.
fn request_digest(
    ha1: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>, // (nc, cnonce, qop)
    method: &str,
    uri: &str,
) -> String {
    let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some((nc, cnonce, qop)) => md5_hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            qop.as_bytes(),
            ha2.as_bytes(),
        ]),
        None => md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

impl DigestServer {
    pub fn new(realm: impl Into<String>, secret: [u8; 32]) -> Self {
        DigestServer {
            realm: realm.into(),
            secret,
        }
    }

    fn nonce_mac(&self, ts_hex: &str) -> String {
        md5_hex(&[
            &self.secret,
            ts_hex.as_bytes(),
            self.realm.as_bytes(),
            &self.secret,
        ])
    }

    fn nonce(&self, now_unix_secs: u64) -> String {
        let ts = format!("{now_unix_secs:x}");
        let mac = self.nonce_mac(&ts);
        format!("{ts}.{mac}")
    }

    /// WWW-Authenticate value for a 401 (RFC 2617 §3.2.1).
    pub fn challenge(&self, now_unix_secs: u64) -> String {
        format!(
            "Digest realm={}, nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            quote(&self.realm),
            self.nonce(now_unix_secs)
        )
    }

    /// Same as [`Self::challenge`] with `stale=true`, for [`AuthOutcome::Stale`].
    pub fn challenge_stale(&self, now_unix_secs: u64) -> String {
        format!("{}, stale=true", self.challenge(now_unix_secs))
    }

    /// Returns the nonce's timestamp if it was issued by us (any edge with our secret).
    fn check_nonce(&self, nonce: &str) -> Option<u64> {
        let (ts, mac) = nonce.split_once('.')?;
        if ts.is_empty() || ts.len() > 16 || !ct_eq(mac, &self.nonce_mac(ts)) {
            return None;
        }
        u64::from_str_radix(ts, 16).ok()
    }

    /// Verifies an Authorization header value for `method`. The `uri` parameter
    /// must be present and is part of the digest; use [`Self::verify_request`] to
    /// also require it to equal the Request-URI (RFC 2617 §3.2.2.5).
    pub fn verify(
        &self,
        authorization: &str,
        method: &str,
        now_unix_secs: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        self.verify_inner(authorization, method, None, now_unix_secs, password_of)
    }

    /// [`Self::verify`] plus a check that the digest `uri` equals `request_uri`.
    pub fn verify_request(
        &self,
        authorization: &str,
        method: &str,
        request_uri: &str,
        now_unix_secs: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        self.verify_inner(
            authorization,
            method,
            Some(request_uri),
            now_unix_secs,
            password_of,
        )
    }

    fn verify_inner(
        &self,
        authorization: &str,
        method: &str,
        request_uri: Option<&str>,
        now: u64,
        password_of: impl Fn(&str) -> Option<String>,
    ) -> AuthOutcome {
        if authorization.trim().is_empty() {
            return AuthOutcome::Missing;
        }
        let Some(p) = parse_digest_params(authorization) else {
            return AuthOutcome::Fail("not a Digest authorization".into());
        };
        // Credentials for another realm are as good as none (RFC 3261 §22.4).
        match param(&p, "realm") {
            Some(r) if r == self.realm => {}
            Some(_) => return AuthOutcome::Missing,
            None => return AuthOutcome::Fail("missing realm".into()),
        }
        let fields = (
            param(&p, "username"),
            param(&p, "nonce"),
            param(&p, "uri"),
            param(&p, "response"),
        );
        let (Some(user), Some(nonce), Some(uri), Some(response)) = fields else {
            return AuthOutcome::Fail("missing username, nonce, uri or response".into());
        };
        if let Some(alg) = param(&p, "algorithm") {
            if !alg.eq_ignore_ascii_case("MD5") {
                return AuthOutcome::Fail(format!("unsupported algorithm {alg}"));
            }
        }
        if let Some(expected) = request_uri {
            if uri != expected {
                return AuthOutcome::Fail("digest uri does not match Request-URI".into());
            }
        }
        let Some(issued) = self.check_nonce(nonce) else {
            return AuthOutcome::Fail("nonce not issued by us".into());
        };
        let qop = match param(&p, "qop") {
            None => None,
            Some(q) if q.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (param(&p, "nc"), param(&p, "cnonce")) else {
                    return AuthOutcome::Fail("qop=auth without nc/cnonce".into());
                };
                Some((nc, cnonce, q))
            }
            Some(q) => return AuthOutcome::Fail(format!("unsupported qop {q}")),
        };
        let Some(password) = password_of(user) else {
            return AuthOutcome::Fail(format!("unknown user {user}"));
        };
        let ha1 = md5_hex(&[user.as_bytes(), self.realm.as_bytes(), password.as_bytes()]);
        let expected = request_digest(&ha1, nonce, qop, method, uri);
        if !ct_eq(&expected, response) {
            return AuthOutcome::Fail("wrong response".into());
        }
        // Nonces from the future (clock skew between edges) beyond the window fail too.
        // Both sides saturate: `now + MAX_AGE` overflowed (a panic in debug builds) for a
        // `now` near u64::MAX, found by the `digest` fuzz target.
        if now.saturating_sub(issued) > NONCE_MAX_AGE_SECS
            || issued.saturating_sub(now) > NONCE_MAX_AGE_SECS
        {
            return AuthOutcome::Stale;
        }
        AuthOutcome::Ok {
            user: user.to_string(),
        }
    }
}

/// Builds an Authorization value answering `www_authenticate` (RFC 2617 §3.2.2).
/// Uses qop=auth when offered, else the RFC 2069 form. `nc` is the nonce count.
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
    if let Some(alg) = param(&p, "algorithm") {
        if !alg.eq_ignore_ascii_case("MD5") {
            return Err(AuthError::UnsupportedAlgorithm(alg.to_string()));
        }
    }
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
    let ha1 = md5_hex(&[user.as_bytes(), realm.as_bytes(), password.as_bytes()]);
    let nc_s = format!("{nc:08x}");
    let response = request_digest(
        &ha1,
        nonce,
        qop.map(|q| (nc_s.as_str(), cnonce, q)),
        method,
        uri,
    );
    let mut out = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm=MD5",
        quote(user),
        quote(realm),
        quote(nonce),
        quote(uri)
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

    fn server() -> DigestServer {
        DigestServer::new("acd.example.com", [7u8; 32])
    }

    fn pw(user: &str) -> Option<String> {
        (user == "agent1").then(|| "s3cret".to_string())
    }

    #[test]
    fn round_trip_qop_auth() {
        let s = server();
        let ch = s.challenge(1_000_000);
        assert!(ch.starts_with("Digest realm=\"acd.example.com\", nonce=\""));
        assert!(ch.contains("algorithm=MD5") && ch.contains("qop=\"auth\""));
        let a = client_authorization(
            &ch,
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:acd.example.com",
            "c1",
            1,
        )
        .unwrap();
        assert_eq!(
            s.verify(&a, "REGISTER", 1_000_010, pw),
            AuthOutcome::Ok {
                user: "agent1".into()
            }
        );
        assert_eq!(
            s.verify_request(&a, "REGISTER", "sip:acd.example.com", 1_000_010, pw),
            AuthOutcome::Ok {
                user: "agent1".into()
            }
        );
        assert!(matches!(
            s.verify_request(&a, "REGISTER", "sip:other.example.com", 1_000_010, pw),
            AuthOutcome::Fail(_)
        ));
        // Another edge with the same secret accepts it (stateless nonce).
        assert!(matches!(
            server().verify(&a, "REGISTER", 1_000_010, pw),
            AuthOutcome::Ok { .. }
        ));
        // Wrong method → different HA2.
        assert!(matches!(
            s.verify(&a, "INVITE", 1_000_010, pw),
            AuthOutcome::Fail(_)
        ));
        // Expired nonce but right password → Stale.
        assert_eq!(
            s.verify(&a, "REGISTER", 1_000_000 + 301, pw),
            AuthOutcome::Stale
        );
        assert!(s.challenge_stale(5).ends_with("stale=true"));
    }

    /// Fuzz regression (fuzz/corpus/digest/far_future_now.txt): the freshness check
    /// overflowed for a `now` near u64::MAX.
    #[test]
    fn now_at_the_end_of_time_does_not_overflow() {
        let s = server();
        let now = u64::MAX;
        let a = client_authorization(
            &s.challenge(now),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(
            s.verify(&a, "REGISTER", now, pw),
            AuthOutcome::Ok {
                user: "agent1".into()
            }
        );
        let old = client_authorization(
            &s.challenge(0),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(s.verify(&old, "REGISTER", now, pw), AuthOutcome::Stale);
        let future = client_authorization(
            &s.challenge(now),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(s.verify(&future, "REGISTER", 0, pw), AuthOutcome::Stale);
    }

    #[test]
    fn no_qop_rfc2069_form() {
        let s = server();
        let nonce = s.nonce(50);
        let ch = format!("Digest realm=\"acd.example.com\", nonce=\"{nonce}\"");
        let a = client_authorization(
            &ch,
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:acd.example.com",
            "x",
            1,
        )
        .unwrap();
        assert!(!a.contains("qop"));
        assert_eq!(
            s.verify(&a, "REGISTER", 60, pw),
            AuthOutcome::Ok {
                user: "agent1".into()
            }
        );
    }

    #[test]
    fn failures() {
        let s = server();
        let ch = s.challenge(100);
        assert_eq!(s.verify("", "REGISTER", 100, pw), AuthOutcome::Missing);
        let wrong =
            client_authorization(&ch, "agent1", "nope", "REGISTER", "sip:x", "c", 1).unwrap();
        assert!(matches!(
            s.verify(&wrong, "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        let unknown =
            client_authorization(&ch, "ghost", "s3cret", "REGISTER", "sip:x", "c", 1).unwrap();
        assert!(matches!(
            s.verify(&unknown, "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        // Forged nonce from a server with another secret.
        let other = DigestServer::new("acd.example.com", [9u8; 32]);
        let forged = client_authorization(
            &other.challenge(100),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert!(matches!(
            s.verify(&forged, "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        // Another realm → Missing (challenge again).
        let foreign = DigestServer::new("elsewhere", [7u8; 32]);
        let f = client_authorization(
            &foreign.challenge(100),
            "agent1",
            "s3cret",
            "REGISTER",
            "sip:x",
            "c",
            1,
        )
        .unwrap();
        assert_eq!(s.verify(&f, "REGISTER", 100, pw), AuthOutcome::Missing);
        assert!(matches!(
            s.verify("Basic abc", "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        assert!(matches!(
            s.verify("Digest ,,,=\"", "REGISTER", 100, pw),
            AuthOutcome::Fail(_)
        ));
        assert_eq!(
            client_authorization(
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                "u",
                "p",
                "M",
                "u",
                "c",
                1
            ),
            Err(AuthError::UnsupportedAlgorithm("SHA-256".into()))
        );
        assert_eq!(
            client_authorization("Basic realm=\"r\"", "u", "p", "M", "u", "c", 1),
            Err(AuthError::NotDigest)
        );
    }
}
