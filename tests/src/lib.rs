//! Harness for the end-to-end tests of `acd`.
//!
//! Every test owns a [`TestEnv`]: a log directory under
//! `target/e2e-logs/<test>/` and a disjoint [`PortBlock`], so tests run in
//! parallel (cargo-nextest) without sharing ports. Processes are started with
//! [`TestEnv::start_run`] & co. and killed when their guard drops; SIPp runs
//! through [`SippCmd`]; media is observed with [`RtpObserver`]; the gRPC API
//! through [`AcdClient`] / [`AgentWatch`]; Prometheus through [`metrics`].
//! When a test panics, the tail of every log file of that test is printed.

pub mod baresip;
pub mod cli;
pub mod cluster;
pub mod dtmf;
pub mod env;
pub mod etcd;
pub mod flows;
pub mod grpc;
pub mod kamailio;
pub mod metrics;
pub mod netns;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod rtp;
pub mod sip;
pub mod sipp;
pub mod ua;

pub use cli::{acdctl, json_field_u64, CliOutput};
pub use env::{acd_bin, acdctl_bin, config_path, sipp_dir, TestEnv};
pub use etcd::EtcdServer;
pub use grpc::{AcdClient, AgentWatch};
pub use ports::{PortBlock, SippPorts};
pub use process::{AcdProcess, DistributorAt, ReadyLine};
pub use rtp::{ObsStats, RtpObserver};
pub use sipp::{SippCmd, SippOutcome, SippRun};

pub use acd_proto::v1 as proto;

use std::time::Duration;

/// Default bound of a wait on something that should happen promptly.
pub const SHORT: Duration = Duration::from_secs(10);
/// Bound of a wait that includes call set-up, prompts and timers.
pub const LONG: Duration = Duration::from_secs(30);
