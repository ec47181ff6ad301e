//! The records database's schema, as numbered migrations applied in order
//! (table `schema_migrations` says which are in). One text per dialect: SQLite
//! and PostgreSQL differ only in small ways, and both are tested.
//!
//! Never edit a migration that has shipped: add the next one.
//!
//! # Tables (migration 1)
//!
//! `applied_events (seq, at)`: one row per [`acd_routing::EventRecord`]
//! applied; inserted first in the record's transaction, so a record written
//! twice is skipped (see the crate docs).
//!
//! `calls`: one row per call id (a callback is its own call `<call>:cb`).
//! - `arrived_at`, `left_at`, `did`, `flow`, `ivr_steps`, `edge_outcome`,
//!   `survey_score`: from the edge's note (`CallNoted`), which comes when the
//!   caller's leg has ended; `arrived_at` falls back to `queued_at` until then.
//! - `caller_number`, `caller_name`, `variables`: from `CallQueued` (or the note).
//! - `first_queue`: the queue the call first waited in; `queue`: the last one
//!   (an overflow or transfer to a queue moves it).
//! - `queued_at`: first `CallQueued`; `first_offered_at`: first `CallOffered`;
//!   `offers`: how many offers were made.
//! - `agent`: the last agent connected; `answered_at`: the FIRST connection
//!   (speed of answer counts to it); `talk_ended_at`, `ended_by`: the last
//!   `CallEnded` (or `CallTransferred` for the transferring agent's part);
//!   `wrap_ended_at`: when that agent next left wrap-up (ready, not ready or
//!   logged out).
//! - `abandoned_at`, `waited_ms`: the caller hung up before being connected.
//! - `outcome` (the distributor's view, last wins): `waiting`, `answered`,
//!   `abandoned`, `timed_out`, `overflowed` (left for a URI, message or flow;
//!   an overflow into another queue keeps `waiting`), `callback` (the inbound
//!   call became a callback), `callback_failed` (a callback given up); empty
//!   for a call that never reached a queue (see `edge_outcome`).
//! - `overflow_action`: `queue`, `uri`, `message`, `flow` or `callback`.
//! - `transfers`: how many times an agent transferred it.
//! - `callback_of`, `callback_requested_at`: on a `<call>:cb` row, the inbound
//!   call and when the callback was booked.
//!
//! `call_events (seq, at, idx)`: the queue event trail, one row per step,
//! `kind` one of `arrived`, `ivr_input`, `queued`, `offered`, `callback_placed`,
//! `answered`, `requeued`, `rejected`, `relaxed`, `overflowed`, `transferred`,
//! `abandoned`, `timed_out`, `callback_requested`, `callback_failed`, `ended`,
//! `wrap_up_done`, `survey`, `left`; `detail` a JSON object of the rest.
//!
//! `agent_events (seq, at, idx)`: every agent state change, `state` one of
//! `logged_out`, `not_ready`, `ready`, `reserved`, `on_call`, `wrap_up`, with the
//! not-ready reason and the call when there is one.

/// One schema step.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Every migration, in version order.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "call records and the queue event trail",
    sqlite: V1_SQLITE,
    postgres: V1_POSTGRES,
}];

/// The newest schema version this build knows.
pub fn latest() -> u32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Created before any migration runs, in both dialects.
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at_ms BIGINT NOT NULL
)";

const V1_SQLITE: &str = "
CREATE TABLE applied_events (
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (seq, at)
);
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY,
    arrived_at INTEGER,
    left_at INTEGER,
    did TEXT NOT NULL DEFAULT '',
    caller_number TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    flow TEXT NOT NULL DEFAULT '',
    ivr_steps TEXT NOT NULL DEFAULT '[]',
    variables TEXT NOT NULL DEFAULT '{}',
    first_queue TEXT,
    queue TEXT,
    priority INTEGER,
    queued_at INTEGER,
    first_offered_at INTEGER,
    offers INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    answered_at INTEGER,
    talk_ended_at INTEGER,
    ended_by TEXT,
    wrap_ended_at INTEGER,
    abandoned_at INTEGER,
    waited_ms INTEGER,
    outcome TEXT NOT NULL DEFAULT '',
    edge_outcome TEXT,
    overflow_action TEXT,
    transfers INTEGER NOT NULL DEFAULT 0,
    callback_of TEXT,
    callback_requested_at INTEGER,
    survey_score INTEGER
);
CREATE INDEX calls_arrived_at ON calls (arrived_at);
CREATE INDEX calls_caller_number ON calls (caller_number, arrived_at);
CREATE INDEX calls_agent_open_wrap ON calls (agent, wrap_ended_at);
CREATE TABLE call_events (
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    queue TEXT,
    agent TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (seq, at, idx)
);
CREATE INDEX call_events_call ON call_events (call_id);
CREATE INDEX call_events_at ON call_events (at);
CREATE TABLE agent_events (
    seq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    call_id TEXT,
    PRIMARY KEY (seq, at, idx)
);
CREATE INDEX agent_events_agent_at ON agent_events (agent, at);
CREATE INDEX agent_events_at ON agent_events (at);
CREATE INDEX agent_events_call ON agent_events (call_id);
";

const V1_POSTGRES: &str = "
CREATE TABLE applied_events (
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (seq, at)
);
CREATE TABLE calls (
    call_id TEXT PRIMARY KEY,
    arrived_at BIGINT,
    left_at BIGINT,
    did TEXT NOT NULL DEFAULT '',
    caller_number TEXT NOT NULL DEFAULT '',
    caller_name TEXT NOT NULL DEFAULT '',
    flow TEXT NOT NULL DEFAULT '',
    ivr_steps TEXT NOT NULL DEFAULT '[]',
    variables TEXT NOT NULL DEFAULT '{}',
    first_queue TEXT,
    queue TEXT,
    priority INTEGER,
    queued_at BIGINT,
    first_offered_at BIGINT,
    offers INTEGER NOT NULL DEFAULT 0,
    agent TEXT,
    answered_at BIGINT,
    talk_ended_at BIGINT,
    ended_by TEXT,
    wrap_ended_at BIGINT,
    abandoned_at BIGINT,
    waited_ms BIGINT,
    outcome TEXT NOT NULL DEFAULT '',
    edge_outcome TEXT,
    overflow_action TEXT,
    transfers INTEGER NOT NULL DEFAULT 0,
    callback_of TEXT,
    callback_requested_at BIGINT,
    survey_score INTEGER
);
CREATE INDEX calls_arrived_at ON calls (arrived_at);
CREATE INDEX calls_caller_number ON calls (caller_number, arrived_at);
CREATE INDEX calls_agent_open_wrap ON calls (agent, wrap_ended_at);
CREATE TABLE call_events (
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    queue TEXT,
    agent TEXT,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (seq, at, idx)
);
CREATE INDEX call_events_call ON call_events (call_id);
CREATE INDEX call_events_at ON call_events (at);
CREATE TABLE agent_events (
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    idx INTEGER NOT NULL,
    agent TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    call_id TEXT,
    PRIMARY KEY (seq, at, idx)
);
CREATE INDEX agent_events_agent_at ON agent_events (agent, at);
CREATE INDEX agent_events_at ON agent_events (at);
CREATE INDEX agent_events_call ON agent_events (call_id);
";
