//! Registrar (RFC 3261 §10): extension → where its softphone can be reached,
//! with digest authentication against the configured passwords.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use acd_sip::auth::{AuthOutcome, DigestServer};
use acd_sip::message::{uri_host, uri_port, uri_user, NameAddr, Uri};
use acd_sip::{Peer, Request, Response, Transport};
use serde::{Deserialize, Serialize};

/// Longest registration we grant, and the default when none is asked for.
const MAX_EXPIRES: u32 = 3600;
const MIN_EXPIRES: u32 = 30;

/// Where an extension's softphone is registered.
#[derive(Debug, Clone)]
pub struct Binding {
    pub contact: String,
    /// Where to send requests for this contact.
    pub peer: Peer,
    pub expires_at: Instant,
}

/// A binding as it serialises: time left instead of an `Instant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSnapshot {
    pub extension: String,
    pub contact: String,
    pub peer: Peer,
    pub remaining: Duration,
}

pub struct Registrar {
    digest: DigestServer,
    passwords: BTreeMap<String, String>,
    bindings: HashMap<String, Binding>,
}

impl Registrar {
    pub fn new(realm: &str, secret: [u8; 32], passwords: BTreeMap<String, String>) -> Self {
        Registrar {
            digest: DigestServer::new(realm, secret),
            passwords,
            bindings: HashMap::new(),
        }
    }

    pub fn lookup(&self, extension: &str, now: Instant) -> Option<&Binding> {
        self.bindings.get(extension).filter(|b| b.expires_at > now)
    }

    pub fn count(&self, now: Instant) -> usize {
        self.bindings
            .values()
            .filter(|b| b.expires_at > now)
            .count()
    }

    /// Answers a REGISTER: challenge, refuse, or bind.
    pub fn handle(&mut self, req: &Request, from: Peer, now: Instant, unix_now: u64) -> Response {
        let Some(user) = req
            .headers
            .get("To")
            .and_then(NameAddr::parse)
            .and_then(|n| uri_user(n.uri).map(str::to_string))
        else {
            return Response::for_request(req, 400, "Bad Request (To has no user)");
        };
        let Some(auth) = req.headers.get("Authorization") else {
            return self.challenge(req, false, unix_now);
        };
        let passwords = &self.passwords;
        let outcome = self
            .digest
            .verify_request(auth, "REGISTER", &req.uri, unix_now, |u| {
                passwords.get(u).cloned()
            });
        match outcome {
            AuthOutcome::Ok { user: auth_user } if auth_user == user => {}
            AuthOutcome::Ok { .. } => {
                metrics::counter!("acd_registrations_total", "result" => "forbidden").increment(1);
                return Response::for_request(req, 403, "Forbidden (user does not match To)");
            }
            AuthOutcome::Stale => return self.challenge(req, true, unix_now),
            AuthOutcome::Missing => return self.challenge(req, false, unix_now),
            AuthOutcome::Fail(reason) => {
                metrics::counter!("acd_registrations_total", "result" => "forbidden").increment(1);
                tracing::warn!(extension = %user, %reason, "registration refused");
                return Response::for_request(req, 403, "Forbidden");
            }
        }
        self.bind(req, &user, from, now)
    }

    fn challenge(&self, req: &Request, stale: bool, unix_now: u64) -> Response {
        metrics::counter!("acd_registrations_total", "result" => "challenged").increment(1);
        let mut value = self.digest.challenge(unix_now);
        if stale {
            value.push_str(", stale=true");
        }
        let mut resp = Response::for_request(req, 401, "Unauthorized");
        resp.headers.push("WWW-Authenticate", value);
        resp
    }

    fn bind(&mut self, req: &Request, user: &str, from: Peer, now: Instant) -> Response {
        let mut resp = Response::for_request(req, 200, "OK");
        let Some(contact_value) = req.headers.get("Contact") else {
            // A query: list the current binding.
            if let Some(b) = self.lookup(user, now) {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                resp.headers
                    .push("Contact", format!("<{}>;expires={left}", b.contact));
            }
            return resp;
        };
        let contact = NameAddr::parse(contact_value);
        let requested = contact
            .and_then(|c| c.param("expires").flatten().and_then(|v| v.parse().ok()))
            .or_else(|| req.headers.expires())
            .unwrap_or(MAX_EXPIRES);
        if contact_value.trim() == "*" || requested == 0 {
            self.bindings.remove(user);
            metrics::counter!("acd_registrations_total", "result" => "removed").increment(1);
            tracing::info!(extension = %user, "unregistered");
            return resp;
        }
        let Some(uri) = contact.map(|c| c.uri.to_string()) else {
            return Response::for_request(req, 400, "Bad Request (Contact)");
        };
        let expires = requested.clamp(MIN_EXPIRES, MAX_EXPIRES);
        let peer = contact_peer(&uri).unwrap_or(from);
        self.bindings.insert(
            user.to_string(),
            Binding {
                contact: uri.clone(),
                peer,
                expires_at: now + Duration::from_secs(u64::from(expires)),
            },
        );
        metrics::counter!("acd_registrations_total", "result" => "ok").increment(1);
        tracing::info!(extension = %user, contact = %uri, "registered");
        resp.headers
            .push("Contact", format!("<{uri}>;expires={expires}"));
        resp
    }

    pub fn snapshot(&self, now: Instant) -> Vec<BindingSnapshot> {
        let mut v: Vec<BindingSnapshot> = self
            .bindings
            .iter()
            .filter(|(_, b)| b.expires_at > now)
            .map(|(ext, b)| BindingSnapshot {
                extension: ext.clone(),
                contact: b.contact.clone(),
                peer: b.peer,
                remaining: b.expires_at.saturating_duration_since(now),
            })
            .collect();
        v.sort_by(|a, b| a.extension.cmp(&b.extension));
        v
    }

    pub fn restore(&mut self, snap: Vec<BindingSnapshot>, now: Instant) {
        self.bindings = snap
            .into_iter()
            .map(|b| {
                (
                    b.extension,
                    Binding {
                        contact: b.contact,
                        peer: b.peer,
                        expires_at: now + b.remaining,
                    },
                )
            })
            .collect();
    }
}

/// Where to send requests for a contact URI with an IP literal host.
pub fn contact_peer(uri: &str) -> Option<Peer> {
    let host = uri_host(uri)?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let parsed = Uri::parse(uri)?;
    let transport = match parsed.param("transport").flatten() {
        Some(t) if t.eq_ignore_ascii_case("tls") => Transport::Tls,
        _ if parsed.scheme.eq_ignore_ascii_case("sips") => Transport::Tls,
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    // §19.1.2: 5061 is the default port of sips: and of TLS.
    let default_port = if transport == Transport::Tls {
        5061
    } else {
        5060
    };
    let port = uri_port(uri).unwrap_or(default_port);
    Some(Peer {
        addr: (ip, port).into(),
        transport,
    })
}
