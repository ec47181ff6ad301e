//! `acd-b2bua`: the SIP edge's call logic as a sans-IO core. No sockets, no
//! tasks, no clock: every input comes with `now`, randomness comes from a
//! seeded generator, and the whole state serialises ([`EdgeCore::snapshot`]),
//! which is what a live hand-over passes to the next process.
//!
//! # Data flow
//! ```text
//!  shell: socket ─▶ parse ─▶ Input::Sip ─┐
//!         distributor ─▶ Input::Distributor ├─▶ EdgeCore::handle(input, now)
//!         IVR runner  ─▶ Input::IvrReply ──┤        │ TransactionLayer (acd-sip)
//!         media task  ─▶ Input::Media* ────┘        │ calls, dialogs, registrar, timers
//!                                                   ▼
//!         poll_output() until None: Transmit │ Distributor │ Ivr │ Media
//!         sleep until poll_timeout(), then handle_timeout(now)
//! ```
//!
//! A call is a B2BUA pair: the caller's leg (an INVITE we answer) and, once
//! the distributor picks an agent, the agent's leg (an INVITE we send to the
//! agent's registered contact). Its [`call::Phase`] carries the data valid in
//! that phase; requests find their call through indexes (transaction key,
//! dialog id), never by scanning; deadlines live in one [`timers::Timers`].

mod admission;
mod agent;
mod announce;
pub mod call;
mod callback_dial;
pub mod config;
mod core;
mod dialogs;
pub mod digits;
pub mod dtmf_info;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod ids;
mod incoming;
pub mod io;
mod ivr;
pub mod note;
mod redirect;
pub mod registrar;
mod release;
mod ring_all;
mod session_timer;
pub mod site_bindings;
pub mod snapshot;
mod survey;
mod teardown;
pub mod telemetry;
pub mod timers;
mod transfer;
pub mod trunks;
mod voicemail;

pub use crate::core::{ClientTx, EdgeCore};
pub use config::{Admission, CoreConfig, Listen};
pub use ids::{AgentId, CallId, PlayToken, Side, StepNo};
pub use io::{
    AgentContact, CallbackOutcome, CallerInfo, CollectSpec, DialCallback, EndedBy, Enqueue,
    FromDistributor, Input, IvrAction, IvrEvent, IvrReply, IvrStep, MediaCommand, MediaEvent,
    MediaPorts, Output, Reconfigure, RedirectTarget, RingTarget, SiteBinding, ToDistributor,
};
pub use note::{CallNote, EdgeOutcome, NoteStep};
pub use snapshot::{Snapshot, SnapshotError, SNAPSHOT_VERSION};
pub use teardown::EndReason;
