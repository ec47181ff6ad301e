//! The IVR interpreter: a pure function `step(flow, session, event)` that
//! returns the caller's next session state and the actions the edge must
//! carry out (play a prompt, collect digits, enqueue, hang up).
//!
//! The session lives with the caller at the edge and travels with every step,
//! so any runner can serve any step of any call, and a runner can be
//! restarted between two steps without the caller noticing.
//!
//! Data flow: edge → `Step(session, event)` → [`step`] → `(session', actions)` → edge.
//! One exception stays inside the runner: a step that ends in
//! [`Action::Lookup`] is answered by the runner itself (HTTP GET, then
//! `step` again with `LookupDone`/`LookupFailed`) before the edge sees the
//! actions.
//!
//! Prompts: a node names a prompt as the author knows it (`welcome`); the
//! edge gets `<language>/welcome`, where the language is the session
//! variable `language` (see [`prompt_name`]).

pub mod calendar;
mod flow;
mod interp;
mod io;
mod say;
mod template;
mod validate;
pub use flow::{AnswerMode, Flow, Node, SayItem};
pub use interp::{prompt_name, step, StepEnv, StepError};
pub use io::{Action, CollectSpec, Event, Session};
pub use say::all_fragments as say_fragments;
pub use validate::{validate, version, FlowIssue, Known};

/// Variables every session has from `Started` on.
pub mod vars {
    /// The caller's number.
    pub const CALLER: &str = "caller";
    /// The number the caller dialled.
    pub const DID: &str = "did";
    pub const CALLER_NAME: &str = "caller_name";
    /// The prompt set in use (`en`, `ru`), also in the call-pop data.
    pub const LANGUAGE: &str = "language";
    /// Overrides the priority of `enqueue` and `callback` nodes when set.
    pub const PRIORITY: &str = "priority";
    /// The HTTP status of the last lookup (`"0"` when it failed outright).
    pub const LOOKUP_STATUS: &str = "lookup_status";
    /// Why the last lookup or recording failed.
    pub const ERROR: &str = "error";
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_nodes;
#[cfg(test)]
mod tests_support247;
#[cfg(test)]
mod tests_validate;
