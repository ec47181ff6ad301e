//! The whole state of the core as data: what a live hand-over passes to the
//! next process. Deadlines travel as time left; indexes are rebuilt.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use acd_sip::{Request, TxKey};
use serde::{Deserialize, Serialize};

use crate::admission::Load;
use crate::call::{Call, Phase};
use crate::config::CoreConfig;
use crate::core::{ClientTx, EdgeCore};
use crate::ids::{CallId, Rng, Side};
use crate::registrar::RegistrarSnapshot;
use crate::timers::{PendingTimer, Timers};

/// A late 2xx's dialog: (Call-ID, the phone's tag).
pub type HungUpDialog = (String, String);
/// Where our ACK for it went, and the ACK.
pub type HungUpAck = (acd_sip::Peer, Vec<u8>);

/// Bumped on every incompatible change; a reader refuses versions it does
/// not know rather than guessing.
pub const SNAPSHOT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub term: u64,
    pub next_token: u64,
    pub draining: bool,
    pub rng: Rng,
    pub unix_now: u64,
    pub calls: Vec<Call>,
    pub registrations: RegistrarSnapshot,
    pub timers: Vec<PendingTimer>,
    pub orphans: Vec<(TxKey, Request)>,
    pub client_txs: Vec<(TxKey, CallId, Side, ClientTx)>,
    pub transactions: acd_sip::transaction::TransactionsSnapshot,
    /// Late 2xx already ACKed and hung up: (Call-ID, tag) → where, ACK.
    #[serde(default)]
    pub hung_up: Vec<(HungUpDialog, HungUpAck)>,
    /// Other edges' bindings (and ours from before a restart), as the
    /// distributor sent them.
    #[serde(default)]
    pub remote_bindings: crate::site_bindings::RemoteBindings,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot format version {0} is not supported (this build reads {SNAPSHOT_VERSION})")]
    Version(u32),
    #[error("snapshot is not readable: {0}")]
    Decode(#[from] serde_json::Error),
}

impl Snapshot {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data into memory cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn from_json(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let s: Snapshot = serde_json::from_slice(bytes)?;
        if s.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version(s.version));
        }
        Ok(s)
    }
}

impl EdgeCore {
    /// Everything needed to carry on elsewhere, SIP transactions included,
    /// so a retransmission arriving after a hand-over is still absorbed.
    pub fn snapshot(&self, now: Instant) -> Snapshot {
        let mut calls: Vec<Call> = self.calls.values().cloned().collect();
        calls.sort_by(|a, b| a.id.cmp(&b.id));
        let mut orphans: Vec<(TxKey, Request)> = self
            .orphans
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        orphans.sort_by(|a, b| a.0.branch.cmp(&b.0.branch));
        let mut client_txs: Vec<_> = self
            .by_client_tx
            .iter()
            .map(|(k, (c, s, p))| (k.clone(), c.clone(), *s, *p))
            .collect();
        client_txs.sort_by(|a, b| a.0.branch.cmp(&b.0.branch));
        Snapshot {
            version: SNAPSHOT_VERSION,
            term: self.term,
            next_token: self.next_token,
            draining: self.draining,
            rng: self.rng.clone(),
            unix_now: self.unix_now(now),
            calls,
            registrations: self.registrar.snapshot(now),
            timers: self.timers.snapshot(now),
            orphans,
            client_txs,
            transactions: self.tx.snapshot(now),
            hung_up: {
                let mut v: Vec<_> = self
                    .hung_up_2xx
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            },
            remote_bindings: self.remote.clone(),
        }
    }

    /// A core that carries on from `snap` at `now`.
    pub fn restore(cfg: CoreConfig, snap: Snapshot, now: Instant) -> EdgeCore {
        // The registrar's nonce seed must not advance the restored RNG.
        let rng = snap.rng;
        let mut registrar = crate::core::registrar_for(&cfg, &mut rng.clone());
        registrar.restore(snap.registrations, now);
        let trunks = crate::trunks::TrunkGuard::from_config(&cfg.trunks, now);
        let mut core = EdgeCore {
            trunks,
            tx: acd_sip::TransactionLayer::restore(cfg.sip, snap.transactions, now),
            load: Load::new(&cfg.admission, now),
            cfg,
            calls: HashMap::new(),
            by_invite: HashMap::new(),
            by_dialog: HashMap::new(),
            by_client_tx: snap
                .client_txs
                .into_iter()
                .map(|(k, c, s, p)| (k, (c, s, p)))
                .collect(),
            orphans: snap.orphans.into_iter().collect(),
            // Transient (one 64*T1): a resent late 2xx after a hand-over
            // gets one more ACK and BYE, which the phone answers 481.
            hung_up_2xx: snap.hung_up.into_iter().collect(),
            registrar,
            remote: snap.remote_bindings,
            timers: Timers::restore(snap.timers, now),
            rng,
            term: snap.term,
            next_token: snap.next_token,
            draining: snap.draining,
            unix_base: (snap.unix_now.saturating_mul(1000), now),
            out: VecDeque::new(),
            announcing: HashMap::new(),
            dials: Default::default(),
        };
        for call in snap.calls {
            core.index(&call);
            if let Some(t) = call.trunk {
                core.trunks.call_started(t);
            }
            core.calls.insert(call.id.clone(), call);
        }
        core.resend_pending_steps();
        core.fail_interrupted_recordings(now);
        core.announce_routes();
        core
    }

    /// Stream routes of the restored dialogs, for the new process's transport.
    fn announce_routes(&mut self) {
        let routes: Vec<(acd_sip::Peer, String)> = self
            .calls
            .values()
            .filter(|c| matches!(c.caller.state, crate::call::CallerState::Answered(_)))
            .map(|c| (c.caller.peer, crate::incoming::contact_of(&c.caller.invite)))
            .collect();
        for (peer, contact) in routes {
            self.announce_stream_route(peer, &contact);
        }
    }

    fn index(&mut self, call: &Call) {
        let id = call.id.clone();
        self.by_invite
            .insert(call.caller.invite_key.clone(), (id.clone(), Side::Caller));
        if let crate::call::CallerState::Answered(est) = &call.caller.state {
            // Inbound or a callback's outbound leg alike.
            let d = &est.dialog;
            self.by_dialog.insert(
                (d.call_id.clone(), d.local_tag.clone(), d.remote_tag.clone()),
                (id.clone(), Side::Caller),
            );
        } else if let (Some(cid), Some(from_tag)) = (
            call.caller.invite.headers.call_id(),
            call.caller.invite.headers.from_tag(),
        ) {
            self.by_dialog.insert(
                (
                    cid.to_string(),
                    call.caller.local_tag.clone(),
                    from_tag.to_string(),
                ),
                (id.clone(), Side::Caller),
            );
        }
        match &call.phase {
            Phase::Ringing(r) => {
                if !r.main_gone {
                    self.by_invite
                        .insert(r.key.clone(), (id.clone(), Side::Agent));
                }
                for f in &r.forks {
                    self.by_invite
                        .insert(f.key.clone(), (id.clone(), Side::Agent));
                }
            }
            Phase::Bridged(a) => {
                self.by_invite
                    .insert(a.key.clone(), (id.clone(), Side::Agent));
                let d = &a.est.dialog;
                self.by_dialog.insert(
                    (d.call_id.clone(), d.local_tag.clone(), d.remote_tag.clone()),
                    (id, Side::Agent),
                );
            }
            _ => {}
        }
    }
}
