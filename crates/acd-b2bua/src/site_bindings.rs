//! Registrations beyond this edge's own registrar: the edge reports its
//! bindings to the distributor, which replicates them and sends the site's
//! set back to every edge. So a restarted edge, or another edge of the site,
//! reaches an operator's phone without waiting for it to register again.
//!
//! Which contact rings an agent, first match wins:
//! 1. this edge's own live binding (the phone registered here);
//! 2. the contact the distributor sent with `Connect` (its bindings at the offer);
//! 3. the remote binding last received in a `Bindings` update.
//!
//! A remote binding over UDP is reached at its *source* (the address its
//! REGISTER came from: the NAT mapping), with the Contact as Request-URI. Over
//! TCP/TLS a phone is reachable only through the connection it registered on,
//! which only its edge holds: this edge sends to the Contact (an open
//! connection to it, or a new one dialled), and if the phone does not accept
//! that, the agent leg fails like any unreachable phone (ring failure or
//! offer timeout: the call is requeued, the agent goes RONA).

use std::collections::BTreeMap;
use std::time::Instant;

use acd_sip::message::{uri_user, NameAddr};
use acd_sip::{Peer, Request, Transport};
use serde::{Deserialize, Serialize};

use crate::core::EdgeCore;
use crate::io::{AgentContact, SiteBinding, ToDistributor};
use crate::registrar::{contact_peer, Binding, RegisterOutcome};
use crate::timers::TimerKey;

/// The site's bindings as the distributor last sent them, by extension.
/// Expiries are absolute Unix ms, so they survive a snapshot unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteBindings {
    by_extension: BTreeMap<String, SiteBinding>,
}

impl RemoteBindings {
    /// Applies an update: `full` replaces the set; an expiry of 0 removes.
    pub fn apply(&mut self, full: bool, bindings: Vec<SiteBinding>) {
        if full {
            self.by_extension.clear();
        }
        for b in bindings {
            if b.expires_at_ms == 0 {
                self.by_extension.remove(&b.aor);
            } else {
                self.by_extension.insert(b.aor.clone(), b);
            }
        }
    }

    /// The live binding of `extension` at `unix_ms`.
    pub fn lookup(&self, extension: &str, unix_ms: u64) -> Option<&SiteBinding> {
        self.by_extension
            .get(extension)
            .filter(|b| b.expires_at_ms > unix_ms)
    }

    /// Live bindings at `unix_ms`.
    pub fn count(&self, unix_ms: u64) -> usize {
        self.by_extension
            .values()
            .filter(|b| b.expires_at_ms > unix_ms)
            .count()
    }
}

/// `udp:10.0.0.7:5062`: a peer as `Binding.source` carries it.
pub fn source_of(peer: Peer) -> String {
    let t = match peer.transport {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    };
    format!("{t}:{}", peer.addr)
}

/// The peer of a `Binding.source`, if it reads as one.
pub fn parse_source(source: &str) -> Option<Peer> {
    let (t, addr) = source.split_once(':')?;
    let transport = match t {
        "udp" => Transport::Udp,
        "tcp" => Transport::Tcp,
        "tls" => Transport::Tls,
        _ => return None,
    };
    Some(Peer {
        addr: addr.parse().ok()?,
        transport,
    })
}

/// Where to send an INVITE for a binding held elsewhere: the REGISTER's
/// source over UDP (the NAT path), else the Contact (see the module comment).
pub fn remote_peer(contact: &str, source: &str) -> Option<Peer> {
    match parse_source(source) {
        Some(p) if p.transport == Transport::Udp => Some(p),
        _ => contact_peer(contact),
    }
}

impl EdgeCore {
    /// After a REGISTER: tells the distributor what changed.
    pub(crate) fn registration_changed(
        &mut self,
        req: &Request,
        outcome: &RegisterOutcome,
        now: Instant,
    ) {
        let Some(user) = req
            .headers
            .get("To")
            .and_then(NameAddr::parse)
            .and_then(|n| uri_user(n.uri).map(str::to_string))
        else {
            return;
        };
        match outcome {
            RegisterOutcome::Bound { .. } => self.report_binding(&user, now),
            RegisterOutcome::Removed => {
                self.timers.cancel(&TimerKey::Registration(user.clone()));
                self.report_removed(&user, String::new());
            }
            _ => {}
        }
    }

    /// Reports `user`'s binding if due, and arms its expiry.
    fn report_binding(&mut self, user: &str, now: Instant) {
        if let Some(at) = self.registrar.lookup(user, now).map(|b| b.expires_at) {
            self.timers
                .set(TimerKey::Registration(user.to_string()), at);
        }
        if let Some(b) = self.registrar.take_report(user, now) {
            let msg = self.site_binding(user, &b, now);
            metrics::counter!("acd_edge_binding_reports_total", "kind" => "bound").increment(1);
            self.report(ToDistributor::Binding(msg));
        }
    }

    fn report_removed(&mut self, user: &str, contact: String) {
        metrics::counter!("acd_edge_binding_reports_total", "kind" => "removed").increment(1);
        self.report(ToDistributor::Binding(SiteBinding {
            aor: user.to_string(),
            contact,
            source: String::new(),
            expires_at_ms: 0,
            edge_id: self.cfg.edge_id.clone(),
        }));
    }

    /// The registration timer of `user` fired.
    pub(crate) fn registration_expired(&mut self, user: &str, now: Instant) {
        if self.registrar.expire(user, now) {
            self.report_removed(user, String::new());
        }
    }

    fn site_binding(&self, user: &str, b: &Binding, now: Instant) -> SiteBinding {
        let left = b.expires_at.saturating_duration_since(now).as_millis() as u64;
        SiteBinding {
            aor: user.to_string(),
            contact: b.contact.clone(),
            source: source_of(b.source),
            expires_at_ms: self.unix_ms(now).saturating_add(left),
            edge_id: self.cfg.edge_id.clone(),
        }
    }

    /// Wall-clock Unix ms at `now`.
    pub(crate) fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.unix_base.1).as_millis() as u64;
        self.unix_base.0.saturating_add(since)
    }

    /// A `Bindings` update from the distributor. On a full set (sent on
    /// attach), our own bindings it lacks are reported again: a distributor
    /// that lost its state (no standby) learns them without the phones
    /// registering again.
    pub(crate) fn site_bindings(&mut self, full: bool, bindings: Vec<SiteBinding>, now: Instant) {
        if full {
            let known: std::collections::BTreeSet<&str> =
                bindings.iter().map(|b| b.aor.as_str()).collect();
            let missing: Vec<String> = self
                .registrar
                .live(now)
                .into_iter()
                .filter(|ext| !known.contains(ext.as_str()))
                .collect();
            for ext in missing {
                tracing::info!(extension = %ext, "distributor lacks our binding; reporting it again");
                self.registrar.unreported(&ext);
                self.report_binding(&ext, now);
            }
        }
        self.remote.apply(full, bindings);
        // As of the last update (an expiry in between is counted at the next).
        let live = self.remote.count(self.unix_ms(now));
        metrics::gauge!("acd_edge_remote_bindings").set(live as f64);
    }

    /// Where to ring `extension`: the contact (Request-URI), the peer to
    /// send to, and which source decided (for logs and metrics).
    pub(crate) fn agent_target(
        &self,
        extension: &str,
        offered: Option<&AgentContact>,
        now: Instant,
    ) -> Option<(String, Peer, &'static str)> {
        if let Some(b) = self.registrar.lookup(extension, now) {
            let peer = contact_peer(&b.contact).unwrap_or(b.peer);
            return Some((b.contact, peer, "local"));
        }
        let (contact, source, via) = match offered.filter(|c| !c.contact.is_empty()) {
            Some(c) => (c.contact.as_str(), c.source.as_str(), "offer"),
            None => {
                let b = self.remote.lookup(extension, self.unix_ms(now))?;
                (b.contact.as_str(), b.source.as_str(), "remote")
            }
        };
        let peer = remote_peer(contact, source)?;
        Some((contact.to_string(), peer, via))
    }

    /// Live bindings held for other edges (or from before a restart).
    pub fn remote_bindings(&self, now: Instant) -> usize {
        self.remote.count(self.unix_ms(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(aor: &str, expires_at_ms: u64) -> SiteBinding {
        SiteBinding {
            aor: aor.into(),
            contact: format!("sip:{aor}@10.0.0.9:5062"),
            source: "udp:192.0.2.9:40000".into(),
            expires_at_ms,
            edge_id: "edge-a".into(),
        }
    }

    #[test]
    fn updates_replace_add_and_remove() {
        let mut r = RemoteBindings::default();
        r.apply(true, vec![site("1001", 100), site("1002", 100)]);
        assert_eq!(r.count(50), 2);
        r.apply(false, vec![site("1001", 0), site("1003", 200)]);
        assert!(r.lookup("1001", 50).is_none());
        assert!(r.lookup("1003", 150).is_some());
        assert_eq!(r.count(150), 1, "1002 expired at 100");
        r.apply(true, vec![site("1004", 300)]);
        assert_eq!(r.count(0), 1);
    }

    #[test]
    fn sources_round_trip_and_choose_the_path() {
        let p = parse_source("tcp:192.0.2.9:5070").expect("parses");
        assert_eq!(p.transport, Transport::Tcp);
        assert_eq!(source_of(p), "tcp:192.0.2.9:5070");
        assert!(parse_source("sctp:1.2.3.4:5").is_none());
        assert!(parse_source("udp:nonsense").is_none());
        // UDP: the NAT path; TCP: the Contact (the connection is not ours).
        let udp = remote_peer("sip:1001@10.0.0.9:5062", "udp:192.0.2.9:40000");
        assert_eq!(udp.map(|p| p.addr.port()), Some(40000));
        let tcp = remote_peer(
            "sip:1001@10.0.0.9:5062;transport=tcp",
            "tcp:192.0.2.9:40000",
        )
        .expect("contact peer");
        assert_eq!((tcp.addr.port(), tcp.transport), (5062, Transport::Tcp));
        let unknown = remote_peer("sip:1001@10.0.0.9:5062", "");
        assert_eq!(unknown.map(|p| p.addr.port()), Some(5062));
    }
}
