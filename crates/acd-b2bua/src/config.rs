//! Static facts the core needs: addresses, numbers, flows, limits.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// Where the edge is reachable, per transport, as written in Via and Contact.
#[derive(Debug, Clone)]
pub struct Listen {
    pub public_ip: IpAddr,
    pub udp_port: u16,
    pub tcp_port: u16,
    pub tls_port: Option<u16>,
}

/// Limits that keep the edge's own timing when offered more than it can carry.
#[derive(Debug, Clone)]
pub struct Admission {
    /// Calls in progress beyond which new INVITEs get 503.
    pub max_calls: usize,
    /// New INVITEs per second (token bucket, burst = one second's worth).
    pub max_calls_per_second: u32,
    /// Smoothed delay between a message's arrival and its handling beyond
    /// which new INVITEs get 503: the loop is late, so more work would make
    /// every accepted call late too.
    pub max_lateness: Duration,
    /// Retry-After of the 503s.
    pub retry_after_secs: u32,
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            max_calls: 2000,
            max_calls_per_second: 400,
            max_lateness: Duration::from_millis(100),
            retry_after_secs: 5,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// This edge's name (`--edge-id`), carried in the bindings it reports.
    pub edge_id: String,
    pub listen: Listen,
    pub realm: String,
    /// Ring-no-answer: how long an agent's phone rings.
    pub ring_timeout: Duration,
    /// DID → flow id.
    pub dids: BTreeMap<String, String>,
    pub flows: BTreeMap<String, acd_ivr::Flow>,
    /// Names of the prompts the media can play.
    pub prompts: BTreeSet<String>,
    /// Prompt played in a loop while the caller waits.
    pub hold_music: String,
    pub sip: acd_sip::Config,
    /// RFC 4028 session interval we offer and accept at least.
    pub session_expires: Duration,
    pub min_se: Duration,
    pub admission: Admission,
    /// Extension → password for the registrar.
    pub extensions: BTreeMap<String, String>,
    /// Keeps digest nonces unguessable; the same on every edge of a site.
    pub nonce_secret: [u8; 32],
    /// Digest algorithms offered, in order (RFC 8760: SHA-256 first).
    pub auth_algorithms: Vec<acd_sip::auth::Algorithm>,
    /// Per-source back-off after failed authentication.
    pub auth_backoff: acd_sip::auth::BackoffConfig,
    /// Who may send calls; empty: any source, no limits.
    pub trunks: Vec<acd_config::TrunkDef>,
}

impl CoreConfig {
    /// Defaults (RFC timer values, 15 s ring, 1800 s session interval, open
    /// trunks, no numbers or flows yet) for an edge reachable at `public_ip`;
    /// the shell fills in the rest from the configuration file.
    pub fn with_defaults(public_ip: IpAddr) -> CoreConfig {
        CoreConfig {
            edge_id: "edge".into(),
            listen: Listen {
                public_ip,
                udp_port: 5060,
                tcp_port: 5060,
                tls_port: None,
            },
            realm: "acd.test".into(),
            ring_timeout: Duration::from_secs(15),
            dids: BTreeMap::new(),
            flows: BTreeMap::new(),
            prompts: BTreeSet::new(),
            hold_music: "moh".into(),
            sip: acd_sip::Config::default(),
            session_expires: Duration::from_secs(1800),
            min_se: Duration::from_secs(90),
            admission: Admission::default(),
            extensions: BTreeMap::new(),
            nonce_secret: [7; 32],
            auth_algorithms: vec![
                acd_sip::auth::Algorithm::Md5,
                acd_sip::auth::Algorithm::Sha256,
            ],
            auth_backoff: acd_sip::auth::BackoffConfig::default(),
            trunks: Vec::new(),
        }
    }
}
