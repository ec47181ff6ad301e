//! `acd-sip`: the sans-IO SIP core of acd. No sockets, no tokio, no clock reads:
//! time comes in as `Instant` arguments and randomness (branches, tags) from the
//! caller, so every run is reproducible from its inputs.
//!
//! # Data flow
//! ```text
//!  socket bytes ──► message::parse / parse_stream ──► message::validate_request
//!        (ParseError → message::salvage_for_400 → 400 bytes, or drop)
//!                         │ Message + Peer + now
//!                         ▼
//!            transaction::TransactionLayer::handle_incoming
//!                         │ poll_output() until None
//!                         ▼
//!   Output::Transmit ──► socket        Output::Request/Cancel/Ack/Response ──► TU
//!                                            │ (dialog::Dialog, auth::DigestServer)
//!   TU ──► send_request / send_response ──► TransactionLayer ──► Output::Transmit
//!   shell sleeps until poll_timeout() ──► handle_timeout(now)
//! ```
//! * [`message`]: own SIP message type (compact forms, folding, verbatim headers).
//! * [`transaction`]: RFC 3261 §17 + RFC 6026 transaction state machines.
//! * [`dialog`]: RFC 3261 §12 dialog state and the §13.3.1.4 2xx retransmitter.
//! * [`auth`]: Digest (RFC 2617) with stateless nonces for REGISTER.

pub mod auth;
pub mod dialog;
pub mod message;
pub mod transaction;

pub use message::{
    parse, parse_stream, Headers, Message, Method, ParseError, Request, Response, StreamFramer,
};
pub use transaction::{Config, Output, Peer, TimerKind, TransactionLayer, Transport, TxKey};
