//! What flows between the edge and the interpreter: the caller's events in,
//! the actions the edge must carry out back. These types are the contract of
//! `acd.v1.IvrService/Step` (the runner converts them to and from protobuf)
//! and of the edge core, which uses them as they are.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The caller's place in a flow, carried by the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Version (content hash) of the flow the caller started on; a caller
    /// finishes on that version even after the flow is reloaded. Empty
    /// before the first step (the runner fills in its current version).
    #[serde(default)]
    pub flow_version: String,
    /// Current node; empty before the flow starts.
    pub node: String,
    pub variables: BTreeMap<String, String>,
}

/// What happened to the caller since the last step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The call entered the flow.
    Started {
        did: String,
        /// The caller's number (user part of From, or the whole URI).
        caller: String,
        caller_name: String,
    },
    /// The last prompt of a `Play` action finished (or was cut by barge-in
    /// on a node without collection).
    PromptFinished,
    /// A `Collect` ended with these digits: max length reached, terminator
    /// pressed (not included), or inter-digit timeout after at least one
    /// digit. May be shorter than `min_digits`: the flow judges validity.
    Digits { digits: String },
    /// A `Collect` saw no digit before its first-digit timeout.
    NoInput,
    /// A `Record` finished: the WAV file (a name under the edge's voicemail
    /// directory) and its length.
    Recorded { file: String, duration_ms: u32 },
    /// A `Record` could not be made (no media, disk error, nothing said).
    RecordFailed { reason: String },
    /// A `Transfer` was not answered (busy, no answer, unreachable); the
    /// caller is still here and the flow goes on.
    TransferFailed { sip_status: u16, reason: String },
    /// Runner-internal: the answer to a `Lookup` action. Never sent by the edge.
    LookupDone {
        http_status: u16,
        /// Top-level fields of the JSON response, as strings.
        fields: BTreeMap<String, String>,
    },
    /// Runner-internal: a `Lookup` failed (timeout, refused, bad body).
    LookupFailed { reason: String },
}

/// How the edge collects digits for one `Collect` action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectSpec {
    pub min_digits: u32,
    pub max_digits: u32,
    /// Key that ends the input early (`#` usually); not part of the digits.
    pub terminator: Option<char>,
    /// Wait for the first digit (counted from the end of the prompts that
    /// precede the collection in the same step, or from now if none).
    pub first_digit_timeout_ms: u32,
    /// Wait between digits once one was pressed.
    pub inter_digit_timeout_ms: u32,
}

/// What the edge must do next. A step returns a list, carried out in order;
/// the flow waits at the first action that produces an event (`Play`,
/// `Collect`, `Record`, `Transfer`), so at most one such action ends a list,
/// except `Play` followed by `Collect` (a menu: prompts, then digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Play these prompts one after another (names as the edge knows them,
    /// already in the caller's language, e.g. `en/welcome`, `ru/digit_5`),
    /// then `PromptFinished` (unless a `Collect` follows in the same list).
    /// With `barge_in`, a digit stops the prompts: it becomes the first digit
    /// of a following `Collect`, or ends the play (`PromptFinished`).
    Play {
        prompts: Vec<String>,
        barge_in: bool,
    },
    /// Collect digits (see [`CollectSpec`]); answered by `Digits` or `NoInput`.
    Collect(CollectSpec),
    /// Put the caller in a queue; the flow ends here.
    Enqueue {
        queue: String,
        priority: i32,
        /// Skills the call needs beyond the queue's own (skill → minimum level).
        skills: BTreeMap<String, u8>,
        /// Caller data shown to the operator when the call pops (language,
        /// account number, IVR inputs…).
        data: BTreeMap<String, String>,
    },
    /// Ask the distributor to call `number` back later (virtual hold). The
    /// flow goes on at once with the following actions.
    Callback {
        queue: String,
        number: String,
        priority: i32,
        /// A voicemail left by the caller (`Recorded.file`), if any.
        voicemail: Option<String>,
        data: BTreeMap<String, String>,
    },
    /// Record the caller into a WAV file (after a beep if asked), for at
    /// most `max_ms`, ended early by `#` or by `silence_ms` of silence;
    /// answered by `Recorded` or `RecordFailed`.
    Record {
        max_ms: u32,
        silence_ms: u32,
        beep: bool,
    },
    /// Connect the caller to an external SIP URI (the outsourced night
    /// team); the flow ends when it answers, or gets `TransferFailed`.
    Transfer { uri: String, timeout_ms: u32 },
    /// End the call.
    Hangup { reason: String },
    /// Runner-internal: fetch `url` (GET) within `timeout_ms`, then step
    /// again with `LookupDone` or `LookupFailed`. Never sent to the edge.
    Lookup { url: String, timeout_ms: u32 },
}

impl Action {
    /// Whether the flow waits for an event after this action.
    pub fn awaits_event(&self) -> bool {
        !matches!(
            self,
            Action::Callback { .. } | Action::Enqueue { .. } | Action::Hangup { .. }
        )
    }
}
