//! Errors, split by who is at fault: the caller of a command ([`CommandError`]), the
//! producer of a replicated record ([`ApplyError`]) or a stored snapshot ([`SnapshotError`]).

use crate::ids::{AgentId, CallId, Extension, QueueId, Seq, Term};

/// Coarse classification the shell maps to a gRPC status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// `NotFound`.
    NotFound,
    /// `AlreadyExists`.
    AlreadyExists,
    /// `FailedPrecondition`: valid request, wrong moment.
    FailedPrecondition,
    /// `Internal`: a bug in the core.
    Internal,
    /// `Unimplemented`.
    Unimplemented,
    /// `InvalidArgument`.
    InvalidArgument,
}

/// Why a command was refused. Nothing changed when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown agent `{0}`")]
    UnknownAgent(AgentId),
    #[error("unknown queue `{0}`")]
    UnknownQueue(QueueId),
    #[error("unknown call `{0}`")]
    UnknownCall(CallId),
    #[error("agent `{0}` is not logged in")]
    AgentNotLoggedIn(AgentId),
    #[error("agent `{agent}` is already logged in at extension `{extension}`")]
    AgentAlreadyLoggedIn {
        agent: AgentId,
        extension: Extension,
    },
    #[error("extension `{extension}` is in use by agent `{agent}`")]
    ExtensionInUse {
        extension: Extension,
        agent: AgentId,
    },
    #[error("call `{0}` already exists")]
    DuplicateCall(CallId),
    #[error("agent `{agent}` cannot {action} while {state}")]
    AgentBusy {
        agent: AgentId,
        action: &'static str,
        state: &'static str,
    },
    #[error("call `{call}` cannot {action} while {phase}")]
    CallNotInPhase {
        call: CallId,
        action: &'static str,
        phase: &'static str,
    },
    /// The command is known but this build cannot carry it out yet.
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// The request names something invalid (a reason code not configured, a bad
    /// configuration); nothing changed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A decided event could not be applied: a bug, the state may be ahead of the
    /// records returned so far; the shell should resynchronise from a snapshot.
    #[error("internal error: {0}")]
    Internal(#[from] ApplyError),
}

impl CommandError {
    /// The class of the error, for mapping to a transport status.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommandError::UnknownAgent(_)
            | CommandError::UnknownQueue(_)
            | CommandError::UnknownCall(_) => ErrorKind::NotFound,
            CommandError::DuplicateCall(_) | CommandError::ExtensionInUse { .. } => {
                ErrorKind::AlreadyExists
            }
            CommandError::AgentNotLoggedIn(_)
            | CommandError::AgentAlreadyLoggedIn { .. }
            | CommandError::AgentBusy { .. }
            | CommandError::CallNotInPhase { .. } => ErrorKind::FailedPrecondition,
            CommandError::Internal(_) => ErrorKind::Internal,
            CommandError::Unsupported(_) => ErrorKind::Unimplemented,
            CommandError::Invalid(_) => ErrorKind::InvalidArgument,
        }
    }
}

/// Why a record was refused by [`crate::Core::apply`]. Nothing changed when this is returned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("sequence gap: expected {expected}, got {got}")]
    Gap { expected: Seq, got: Seq },
    #[error("stale term: current {current}, got {got}")]
    StaleTerm { current: Term, got: Term },
    /// The record does not fit the state (unknown id, impossible transition): the two
    /// sides have diverged.
    #[error("record {seq} does not fit the state: {reason}")]
    Inconsistent { seq: Seq, reason: String },
}

/// Why a snapshot could not be restored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot format {got} is not supported (this build reads up to {supported})")]
    UnsupportedVersion { got: u32, supported: u32 },
    #[error("snapshot does not fit the configuration: {0}")]
    ConfigMismatch(String),
}
