//! Per-test port blocks: test `n` (0..=57) owns `21000 + 200 n .. 21000 + 200 n + 199`;
//! blocks 60..=114 lie below that: `10000 + 200 (n - 60) ..` (up to 20999), and
//! blocks 115..=134 below those: `6000 + 200 (n - 115) ..` (up to 9999), and
//! blocks 135..=144 below those: `3000 + 200 (n - 135) ..` (up to 4999), and
//! blocks 145..=149 below those: `2000 + 200 (n - 145) ..` (up to 2999).
//!
//! Layout of a block (offsets from its base):
//! - `+0`            SIP UDP and TCP of the edge (`acd run` / `acd edge`)
//! - `+1 + 2i`       gRPC of process slot `i` (0..5)
//! - `+2 + 2i`       metrics of process slot `i` (0..5)
//! - `+11`           SIP TLS of the edge (`--sip-tls`)
//! - `+12 .. +19`    RTP observers (8)
//! - `+20 + k`       SIP port of SIPp instance `k` (0..10)
//! - `+30 + k`       control port (`-cp`) of SIPp instance `k`
//! - `+40 + 6k`      media port (`-mp`, it takes +0..+3) of SIPp instance `k`
//! - `+98`, `+99`    etcd client and peer ports
//! - `+100 .. +199`  RTP range of the edge (`--rtp-ports`)
//!
//! Blocks stay below the Linux ephemeral range (32768+) for n <= 57
//! (block 58's RTP range would reach 32799).
//!
//! Numbers in use (keep unique!): 0-11 `sipp_scenarios.rs`, 12-13
//! `call_path.rs`, 14-15 `cancel.rs`, 16 `not_found.rs`, 17 `malformed.rs`,
//! 18 `auth.rs`, 19-20 `skills.rs`, 21 `replication.rs`, 22-23 `rona.rs`,
//! 24 `ringing_abandon.rs`, 25 `drain.rs`, 26-30 and 36 `sip_edge_cases.rs`,
//! 31-35 `sipp_scenarios.rs` (agent_reject, agent_ring_forever, trunk_503),
//! 37-38 `dialogs.rs`, 39 `no_ack.rs`, 40 `ivr_fallback.rs`, 41
//! `record_route.rs`, 42 `distributor_restart.rs`, 43 `cancel_crossing.rs`,
//! 44 `sip_requests.rs` (its acd test on SIPp slots 3, 5, 6, its SIPp-only
//! scenario checks on slots 7-8 and 4, 9), 45 `baresip.rs` (baresip itself on
//! `+90..+99`, see `src/baresip.rs`), 46 `rfc4475.rs`, 48-50 `tcp_limits.rs`,
//! 51 `auth_abuse.rs` (52 reserved for it), 53 `acd-edge` media unit tests
//! (`crates/acd-edge/src/media.rs`, RTP range only), 55 `overload.rs`, 56 `sipp_scenarios.rs` (trunk_call_or_503), 57 `trunk_policy.rs`, 47 `edge_snapshot.rs`,
//! 60-63 `failover.rs` (each with its own etcd on the block's +98/+99), 65-67 `follow_leader.rs`
//! (68 reserved for it), 69-70 `handover.rs`, 71 `drain.rs`
//! (SIGTERM), 72 `handover.rs` (its ignored N-call load run; RTP from 36000 up), 73-75 `bindings.rs` (73 edge A and
//! the distributor, 74 edge B; 75 the restart test; 76 reserved for it), 77
//! `watchdog.rs`, 78-79 `kamailio.rs` (Kamailio on each block's `+11`), 80
//! `installation_status.rs`, 81-85 `chaos.rs`, 86 `partition.rs` (also its
//! address range `10.86.0.0/24` in its network namespaces; 87-88 reserved for
//! it), 89-90 `handover.rs` (50 calls: block 89, RTP over 89's `+100..` and all
//! of 90), 91 `edge_readiness.rs`, 92-94 `dtmf.rs` (SIPp RFC 4733 and INFO
//! digits), 95 `dtmf.rs` (baresip pressing a key; baresip on `+90..+99`),
//! 96-99 `ivr_actions.rs` (99: the acd-edge voicemail media test),
//! 100 `ivr_reload.rs`, 101 `ivr_runner_kill.rs` (102-103 reserved for them),
//! 54 `edge_reload.rs`, 104-106 `support247.rs` (each block split into three
//! 66-port sites with their own layout, see `Site` there), 107
//! `demo_orders.rs` (the standalone API on slot 4's gRPC and metrics ports;
//! `acd run` on slot 0, its demo API on slot 3's gRPC port), 108-111
//! `ivr_flows.rs` (111: its test order API on slot 3's gRPC port).
//! Issue 8 (routing engine): 112-114, 126, 129 and 130-134 `routing_engine.rs`, 115-116 `access.rs`
//! (roles; gRPC over TLS), 117-119 `api.rs` (watch and RONA; supervisor;
//! the added-agent call), 120-125 the edge's routing actions
//! (120-125 `routing_edge.rs`),
//! 127-128 `replay.rs`.
//! Issue 9 (records, reports, wallboard): 135-144, assigned in
//! `records.rs` (135-137), `reports.rs` (138), `wallboard.rs` (139),
//! `prometheus.rs` (140-141), `survey.rs` (142-143), `records_pair.rs`
//! (144). PostgreSQL takes its block's `+98`.
//! Issue 10 (speed): 145-146 the RTP load generator's tests (`rtp_load.rs`),
//! 147 the media engine's tests, 148-149 the bench scripts' smoke tests.

pub const BASE: u16 = 21000;
pub const BLOCK: u16 = 200;
/// Base of blocks 60..=114.
pub const LOW_BASE: u16 = 10000;
/// Base of blocks 115..=134.
pub const LOWER_BASE: u16 = 6000;
/// Base of blocks 135..=144.
pub const LOWEST_BASE: u16 = 3000;
/// Base of blocks 145..=149.
pub const BOTTOM_BASE: u16 = 2000;

#[derive(Debug, Clone, Copy)]
pub struct PortBlock {
    pub n: u16,
    pub base: u16,
}

/// Ports of one SIPp instance.
#[derive(Debug, Clone, Copy)]
pub struct SippPorts {
    pub sip: u16,
    pub control: u16,
    pub media: u16,
}

impl PortBlock {
    pub fn for_test(n: u16) -> Self {
        let base = match n {
            0..=57 => BASE + n * BLOCK,
            60..=114 => LOW_BASE + (n - 60) * BLOCK,
            115..=134 => LOWER_BASE + (n - 115) * BLOCK,
            135..=144 => LOWEST_BASE + (n - 135) * BLOCK,
            145..=149 => BOTTOM_BASE + (n - 145) * BLOCK,
            _ => panic!("port block {n} is outside 0..=57, 60..=114, 115..=149"),
        };
        PortBlock { n, base }
    }
    /// etcd's client port (a test needing more processes than one block
    /// holds takes a second block).
    pub fn etcd_client(&self) -> u16 {
        self.base + 98
    }
    /// etcd's peer port.
    pub fn etcd_peer(&self) -> u16 {
        self.base + 99
    }
    /// SIP (UDP and TCP) of the edge.
    pub fn sip(&self) -> u16 {
        self.base
    }
    pub fn grpc(&self, slot: u16) -> u16 {
        assert!(slot < 5);
        self.base + 1 + 2 * slot
    }
    pub fn metrics(&self, slot: u16) -> u16 {
        assert!(slot < 5);
        self.base + 2 + 2 * slot
    }
    /// SIP TLS of the edge.
    pub fn sip_tls(&self) -> u16 {
        self.base + 11
    }
    pub fn observer(&self, i: u16) -> u16 {
        assert!(i < 8);
        self.base + 12 + i
    }
    pub fn sipp(&self, k: u16) -> SippPorts {
        assert!(k < 10);
        SippPorts {
            sip: self.base + 20 + k,
            control: self.base + 30 + k,
            media: self.base + 40 + 6 * k,
        }
    }
    /// Inclusive RTP port range for the edge.
    pub fn rtp_range(&self) -> (u16, u16) {
        (self.base + 100, self.base + 199)
    }
    pub fn rtp_arg(&self) -> String {
        let (a, b) = self.rtp_range();
        format!("{a}-{b}")
    }
}
