//! The distributor's deterministic routing core: queues, agents, skills, offers, timers.
//!
//! No I/O, no clock, no randomness, no hash-order: the same inputs give the same state
//! on every process, which is what replication and replay tests stand on.
//!
//! # Data flow
//!
//! ```text
//!  shell ── Command, now ──▶ Core::handle ─┐
//!  shell ── now ───────────▶ Core::handle_timeout ─┤  decide: validate against state,
//!                                                  │          produce Events
//!                                                  ▼
//!                          EventRecord { seq, term, at, event }
//!                                                  │  apply: the one mutation path
//!                                                  ▼  (State::apply_event)
//!                                 matcher (pure) ─▶ more CallOffered records
//!                                                  │
//!  shell ◀── Vec<EventRecord> ─────────────────────┘
//!    ├─ replicate to the standby, which calls Core::apply on each record
//!    └─ once acknowledged, turn records into effects (events ARE the effects list):
//!       CallOffered → tell the edge to connect, push the offer to the agent;
//!       CallAbandoned{agent: Some} → cancel the agent leg; …
//!  shell ── sleeps until Core::next_deadline() ──▶ Core::handle_timeout
//! ```
//!
//! Timers (wrap-up end, offer expiry, max wait) are deadlines kept in the state, so a
//! promoted standby fires them exactly as the old leader would have.
//!
//! Module map: [`Core`] (decide and drive), `state` (data and `apply_event`), `matcher`
//! (pairs calls with agents: which call, which agent, and why — the offer's
//! [`Explanation`]), `index` (the matcher's indexes, derived from the state and kept in
//! step by `Core::apply`), `directory` (the configuration indexed: queues' pools of
//! eligible agents), [`strategy`] (ordering of candidate agents per queue), `timer`
//! (deadlines derived from state), `bindings` (registered phones, replicated so any
//! edge reaches them). A call's life over time: `relax` (relaxation steps as the wait
//! grows; the offer rules), `overflow` (closed, full, no agents, max wait; hop limit),
//! `transfer` (transfer and reject), `callbacks` (virtual hold: callback calls,
//! dialling, retries), `reconfig` (configuration changes as one replicated event).

mod bindings;
mod callbacks;
mod command;
mod config;
mod core;
mod digest;
mod directory;
mod error;
mod event;
pub mod explain;
pub mod expr;
mod ids;
mod index;
mod matcher;
mod origin;
mod overflow;
mod reconfig;
mod relax;
mod state;
pub mod strategy;
mod timer;
mod transfer;
mod view;
pub mod whatif;

pub use crate::bindings::BindingRecord;
pub use crate::callbacks::{
    callback_id, CallbackRecord, DEFAULT_POLICY as DEFAULT_CALLBACK_POLICY,
};
pub use crate::command::{
    CallNote, CallbackOutcome, CallerInfo, Command, EdgeOutcome, IvrStep, TransferTarget,
    MAX_NOTE_STEPS,
};
pub use crate::config::{
    AgentDef, Announce, BusinessHours, CallbackPolicy, ConfigError, Overflow, OverflowAction,
    OverflowReason, QueueDef, RelaxStep, RoutingConfig, ServiceLevel, Survey,
};
pub use crate::core::{Core, Snapshot, OFFER_TIMEOUT_REASON, SNAPSHOT_FORMAT_VERSION};
pub use crate::error::{ApplyError, CommandError, ErrorKind, SnapshotError};
pub use crate::event::{AgentState, CallbackDial, EndReason, Event, EventRecord, RONA_REASON};
pub use crate::explain::Explanation;
pub use crate::expr::{ExprError, SkillExpr};
pub use crate::ids::{AgentId, CallId, Extension, QueueId, Seq, SkillId, Term, Timestamp};
pub use crate::ids::{EdgeId, MsgId};
pub use crate::origin::{AppliedOrigins, Origin};
pub use crate::overflow::MAX_HOPS as MAX_OVERFLOW_HOPS;
pub use crate::state::{AgentRuntime, CallPhase, CallRecord, CallbackCall, QueueCounters, State};
pub use crate::strategy::Strategy;
pub use crate::view::{AgentView, CallView, QueueView};

#[cfg(test)]
mod tests;
