//! Registrar (RFC 3261 §10): extension → where its softphone can be reached,
//! with digest authentication against the configured passwords.
//!
//! Sans-IO: a plain struct driven with `&mut self`, the monotonic `now` and
//! the wall-clock `unix_now` (for nonces) passed in. Each REGISTER returns
//! the response and a [`RegisterOutcome`] for the caller to log and count.
//!
//! Anti-hijack rule: a live binding's Contact or source address changes only
//! with *fresh* credentials, i.e. a nonce issued after the one that last
//! authenticated the binding. The digest layer already refuses a replayed
//! (nonce, nc); this rule also covers a replay that outlived the bounded
//! nonce table, reached another edge, or followed a hand-over. A phone that
//! really moved gets 401 `stale=true` and succeeds with the new nonce.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use acd_sip::auth::{
    AuthGuard, BackoffConfig, Challenge, Decision, DigestServer, FailReason, Verified,
};
use acd_sip::message::{uri_host, uri_port, uri_user, NameAddr, Uri};
use acd_sip::{Peer, Request, Response, Transport};
use serde::{Deserialize, Serialize};

/// Longest registration we grant, and the default when none is asked for.
const MAX_EXPIRES: u32 = 3600;
const MIN_EXPIRES: u32 = 30;

/// Where an extension's softphone is registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub contact: String,
    /// Where to send requests for this contact.
    pub peer: Peer,
    /// Where the REGISTER that made or moved the binding came from.
    pub source: Peer,
    pub expires_at: Instant,
    /// The newest nonce that authenticated this binding, and when it was issued.
    pub nonce: String,
    pub nonce_issued: u64,
    /// The expiry last reported to the distributor (`None`: not reported).
    pub reported: Option<Instant>,
}

impl Binding {
    /// Whether `v` was issued after the nonce that last authenticated us.
    fn is_fresh(&self, v: &Verified) -> bool {
        v.nonce_issued > self.nonce_issued
            || (v.nonce_issued == self.nonce_issued && v.nonce != self.nonce)
    }

    fn note_nonce(&mut self, v: &Verified) {
        if v.nonce_issued >= self.nonce_issued {
            self.nonce.clone_from(&v.nonce);
            self.nonce_issued = v.nonce_issued;
        }
    }
}

/// What a REGISTER led to; `label()` is the metrics label.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
#[must_use]
pub enum RegisterOutcome {
    /// 401: no credentials for our realm yet.
    Challenged,
    /// 401 stale=true: the nonce expired.
    Stale,
    /// 401 stale=true: this nonce / nonce count was used before.
    Replay,
    /// 401 stale=true: valid credentials, but too old to move the binding
    /// to another Contact or source; the old binding stays.
    MoveNeedsFreshNonce,
    /// 403: wrong credentials.
    Refused(FailReason),
    /// 403: valid credentials of another user than the To header's.
    UserMismatch,
    /// 503 + Retry-After: the source is backed off after repeated failures.
    BackedOff { retry_after: Duration },
    /// 400: unusable To or Contact.
    BadRequest,
    /// 200: bound (new, moved, or refreshed in place).
    Bound { contact: String, moved: bool },
    /// 200: binding removed.
    Removed,
    /// 200: query without Contact.
    Queried,
}

impl RegisterOutcome {
    pub fn label(&self) -> &'static str {
        match self {
            RegisterOutcome::Challenged => "challenged",
            RegisterOutcome::Stale => "stale",
            RegisterOutcome::Replay => "replay",
            RegisterOutcome::MoveNeedsFreshNonce => "move_needs_fresh_nonce",
            RegisterOutcome::Refused(r) => r.as_str(),
            RegisterOutcome::UserMismatch => "user_mismatch",
            RegisterOutcome::BackedOff { .. } => "backed_off",
            RegisterOutcome::BadRequest => "bad_request",
            RegisterOutcome::Bound { moved: false, .. } => "ok",
            RegisterOutcome::Bound { moved: true, .. } => "moved",
            RegisterOutcome::Removed => "removed",
            RegisterOutcome::Queried => "queried",
        }
    }
}

pub struct Registrar {
    auth: AuthGuard,
    passwords: BTreeMap<String, String>,
    bindings: BTreeMap<String, Binding>,
    changes: u64,
}

impl Registrar {
    /// `seed` (random, from the shell) keeps this edge's nonces distinct from
    /// other edges sharing `secret`.
    pub fn new(
        realm: &str,
        secret: [u8; 32],
        seed: u64,
        passwords: BTreeMap<String, String>,
    ) -> Self {
        Registrar::with_backoff(realm, secret, seed, passwords, BackoffConfig::default())
    }

    pub fn with_backoff(
        realm: &str,
        secret: [u8; 32],
        seed: u64,
        passwords: BTreeMap<String, String>,
        backoff: BackoffConfig,
    ) -> Self {
        let digest = DigestServer::new(realm, secret).seeded(seed);
        Registrar::with_guard(AuthGuard::new(digest, backoff), passwords)
    }

    /// With a ready [`AuthGuard`] (algorithms and back-off from config).
    pub fn with_guard(auth: AuthGuard, passwords: BTreeMap<String, String>) -> Self {
        Registrar {
            auth,
            passwords,
            bindings: BTreeMap::new(),
            changes: 0,
        }
    }

    /// The digest verifier and back-off table, shared with INVITE
    /// authentication of trunks so a source banned for one is banned for both.
    pub fn auth(&mut self) -> &mut AuthGuard {
        &mut self.auth
    }

    pub fn lookup(&self, extension: &str, now: Instant) -> Option<Binding> {
        let b = self.bindings.get(extension)?;
        (b.expires_at > now).then(|| b.clone())
    }

    /// Bumped by every bind and unbind, so a shell can recount only when
    /// something changed.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn count(&self, now: Instant) -> usize {
        self.bindings
            .values()
            .filter(|b| b.expires_at > now)
            .count()
    }

    /// Forgets expired bindings.
    pub fn purge_expired(&mut self, now: Instant) {
        self.bindings.retain(|_, b| b.expires_at > now);
    }

    /// Answers a REGISTER: challenge, refuse, or bind.
    pub fn handle(
        &mut self,
        req: &Request,
        from: Peer,
        now: Instant,
        unix_now: u64,
    ) -> (Response, RegisterOutcome) {
        let (resp, outcome) = self.decide(req, from, now, unix_now);
        metrics::counter!("acd_registrations_total", "result" => outcome.label()).increment(1);
        match &outcome {
            RegisterOutcome::Bound { .. }
            | RegisterOutcome::Removed
            | RegisterOutcome::Queried
            | RegisterOutcome::Challenged => {}
            other => {
                tracing::warn!(peer = %from.addr, result = other.label(), "registration refused")
            }
        }
        (resp, outcome)
    }

    fn decide(
        &mut self,
        req: &Request,
        from: Peer,
        now: Instant,
        unix_now: u64,
    ) -> (Response, RegisterOutcome) {
        let Some(user) = req
            .headers
            .get("To")
            .and_then(NameAddr::parse)
            .and_then(|n| uri_user(n.uri).map(str::to_string))
        else {
            let resp = Response::for_request(req, 400, "Bad Request (To has no user)");
            return (resp, RegisterOutcome::BadRequest);
        };
        let passwords = &self.passwords;
        let decision = self.auth.authenticate(
            req.headers.get("Authorization"),
            "REGISTER",
            &req.uri,
            from.addr.ip(),
            now,
            unix_now,
            |u| passwords.get(u).cloned(),
        );
        let outcome = match &decision {
            Decision::Verified(v) if v.user == user => {
                return self.bind(req, &user, v, from, now, unix_now)
            }
            Decision::Verified(_) => {
                let _ban = self.auth.failure(from.addr.ip(), now);
                let resp = Response::for_request(req, 403, "Forbidden (user does not match To)");
                return (resp, RegisterOutcome::UserMismatch);
            }
            Decision::Challenge(Challenge::Missing) => RegisterOutcome::Challenged,
            Decision::Challenge(Challenge::Stale) => RegisterOutcome::Stale,
            Decision::Challenge(Challenge::Replay) => RegisterOutcome::Replay,
            Decision::Refused(r) => RegisterOutcome::Refused(*r),
            Decision::BackedOff { retry_after } => RegisterOutcome::BackedOff {
                retry_after: *retry_after,
            },
        };
        let resp = self
            .auth
            .response(req, &decision, unix_now)
            .unwrap_or_else(|| Response::for_request(req, 500, "Server Internal Error"));
        (resp, outcome)
    }

    fn bind(
        &mut self,
        req: &Request,
        user: &str,
        v: &Verified,
        from: Peer,
        now: Instant,
        unix_now: u64,
    ) -> (Response, RegisterOutcome) {
        let mut resp = Response::for_request(req, 200, "OK");
        let Some(contact_value) = req.headers.get("Contact") else {
            // A query: list the current binding.
            if let Some(b) = self.lookup(user, now) {
                let left = b.expires_at.saturating_duration_since(now).as_secs();
                resp.headers
                    .push("Contact", format!("<{}>;expires={left}", b.contact));
            }
            return (resp, RegisterOutcome::Queried);
        };
        let contact = NameAddr::parse(contact_value);
        let requested = contact
            .and_then(|c| c.param("expires").flatten().and_then(|v| v.parse().ok()))
            .or_else(|| req.headers.expires())
            .unwrap_or(MAX_EXPIRES);
        let remove = contact_value.trim() == "*" || requested == 0;
        let uri = contact.map(|c| c.uri.to_string());
        let current = self.lookup(user, now);
        // Removing from elsewhere is a move too: it would let a replay
        // unregister an operator.
        let moved = current.as_ref().is_some_and(|b| {
            b.source != from || (!remove && uri.as_deref() != Some(b.contact.as_str()))
        });
        if moved && current.as_ref().is_some_and(|b| !b.is_fresh(v)) {
            let resp = self.auth.challenge(req, unix_now, true);
            return (resp, RegisterOutcome::MoveNeedsFreshNonce);
        }
        if remove {
            self.bindings.remove(user);
            self.changes += 1;
            tracing::info!(extension = %user, "unregistered");
            return (resp, RegisterOutcome::Removed);
        }
        let Some(uri) = uri else {
            let resp = Response::for_request(req, 400, "Bad Request (Contact)");
            return (resp, RegisterOutcome::BadRequest);
        };
        let expires = requested.clamp(MIN_EXPIRES, MAX_EXPIRES);
        let expires_at = now + Duration::from_secs(u64::from(expires));
        match self
            .bindings
            .get_mut(user)
            .filter(|_| !moved && current.is_some())
        {
            Some(b) => {
                b.expires_at = expires_at;
                b.note_nonce(v);
            }
            None => {
                let binding = Binding {
                    peer: contact_peer(&uri).unwrap_or(from),
                    contact: uri.clone(),
                    source: from,
                    expires_at,
                    nonce: v.nonce.clone(),
                    nonce_issued: v.nonce_issued,
                    reported: None,
                };
                self.bindings.insert(user.to_string(), binding);
                self.changes += 1;
                tracing::info!(extension = %user, contact = %uri, source = %from.addr, moved, "registered");
            }
        }
        resp.headers
            .push("Contact", format!("<{uri}>;expires={expires}"));
        (
            resp,
            RegisterOutcome::Bound {
                contact: uri,
                moved,
            },
        )
    }

    /// The binding of `user` if the distributor should hear of it: new or
    /// moved (never reported), or refreshed after more than a third of its
    /// lifetime passed since the last report (a phone refreshing every
    /// minute does not make an event a minute). Marks it reported.
    pub(crate) fn take_report(&mut self, user: &str, now: Instant) -> Option<Binding> {
        let b = self.bindings.get_mut(user).filter(|b| b.expires_at > now)?;
        let due = match b.reported {
            None => true,
            Some(reported) => {
                let lifetime = b.expires_at.saturating_duration_since(now);
                b.expires_at.saturating_duration_since(reported) > lifetime / 3
            }
        };
        if !due {
            return None;
        }
        b.reported = Some(b.expires_at);
        Some(b.clone())
    }

    /// Forgets that `user`'s binding was reported, so the next
    /// [`Registrar::take_report`] returns it (the distributor lost it).
    pub(crate) fn unreported(&mut self, user: &str) {
        if let Some(b) = self.bindings.get_mut(user) {
            b.reported = None;
        }
    }

    /// Removes `user`'s binding if it has run out; true if it did.
    pub(crate) fn expire(&mut self, user: &str, now: Instant) -> bool {
        let expired = self.bindings.get(user).is_some_and(|b| b.expires_at <= now);
        if expired {
            self.bindings.remove(user);
            self.changes += 1;
            tracing::info!(extension = %user, "registration expired");
        }
        expired
    }

    /// Extensions with a live binding, in order.
    pub(crate) fn live(&self, now: Instant) -> Vec<String> {
        self.bindings
            .iter()
            .filter(|(_, b)| b.expires_at > now)
            .map(|(ext, _)| ext.clone())
            .collect()
    }

    /// The bindings, with deadlines relative to `now`, for a hand-over.
    /// The nonce table and back-off are not carried: a replay after the
    /// hand-over still cannot move a binding (its nonce is not newer).
    pub fn snapshot(&self, now: Instant) -> RegistrarSnapshot {
        let bindings = self
            .bindings
            .iter()
            .filter(|(_, b)| b.expires_at > now)
            .map(|(ext, b)| (ext.clone(), BindingSnapshot::of(b, now)))
            .collect();
        RegistrarSnapshot { bindings }
    }

    /// Replaces the bindings with those of `snap`, deadlines counted from `now`.
    pub fn restore(&mut self, snap: RegistrarSnapshot, now: Instant) {
        self.bindings = snap
            .bindings
            .into_iter()
            .map(|(ext, b)| (ext, b.into_binding(now)))
            .collect();
        self.changes += 1;
    }
}

/// Serialisable bindings (see [`Registrar::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrarSnapshot {
    pub bindings: BTreeMap<String, BindingSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingSnapshot {
    pub contact: String,
    pub peer: PeerSnapshot,
    pub source: PeerSnapshot,
    /// Time left at the snapshot.
    pub expires_in: Duration,
    pub nonce: String,
    pub nonce_issued: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSnapshot {
    pub addr: SocketAddr,
    pub tcp: bool,
}

impl From<Peer> for PeerSnapshot {
    fn from(p: Peer) -> Self {
        PeerSnapshot {
            addr: p.addr,
            tcp: p.transport == Transport::Tcp,
        }
    }
}

impl From<PeerSnapshot> for Peer {
    fn from(p: PeerSnapshot) -> Self {
        Peer {
            addr: p.addr,
            transport: if p.tcp {
                Transport::Tcp
            } else {
                Transport::Udp
            },
        }
    }
}

impl BindingSnapshot {
    fn of(b: &Binding, now: Instant) -> Self {
        BindingSnapshot {
            contact: b.contact.clone(),
            peer: b.peer.into(),
            source: b.source.into(),
            expires_in: b.expires_at.saturating_duration_since(now),
            nonce: b.nonce.clone(),
            nonce_issued: b.nonce_issued,
        }
    }

    fn into_binding(self, now: Instant) -> Binding {
        Binding {
            contact: self.contact,
            peer: self.peer.into(),
            source: self.source.into(),
            // An absurd duration (a damaged snapshot) expires at once.
            expires_at: now.checked_add(self.expires_in).unwrap_or(now),
            nonce: self.nonce,
            nonce_issued: self.nonce_issued,
            // The process that handed over reported it already.
            reported: now.checked_add(self.expires_in),
        }
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
    let transport = match Uri::parse(uri).and_then(|u| u.param("transport").flatten()) {
        Some(t) if t.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    };
    let port = uri_port(uri).unwrap_or(5060);
    Some(Peer {
        addr: (ip, port).into(),
        transport,
    })
}

#[cfg(test)]
mod tests;
