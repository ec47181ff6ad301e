//! Callback requests (virtual hold): a caller asked the IVR to be called back
//! later instead of waiting. The distributor keeps them, replicated like every
//! other change; placing the calls is the routing engine's work (later).
//! One request per inbound call: an edge re-sending it after a fail-over, or a
//! flow asking twice, does not book two callbacks.

use crate::command::CallerInfo;
use crate::directory::Directory;
use crate::error::CommandError;
use crate::event::Event;
use crate::ids::{CallId, QueueId, Timestamp};
use crate::state::State;
use serde::{Deserialize, Serialize};

/// A pending callback.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    pub queue: QueueId,
    /// The number to call back.
    pub number: String,
    pub priority: i32,
    /// The voicemail the caller left (a file name on the edge), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voicemail: Option<String>,
    pub caller: CallerInfo,
    pub requested_at: Timestamp,
}

/// The events of a `RequestCallback` command.
pub(crate) fn decide(
    dir: &Directory,
    state: &State,
    call: CallId,
    record: CallbackRecord,
) -> Result<Vec<Event>, CommandError> {
    if !dir.queues.contains_key(&record.queue) {
        return Err(CommandError::UnknownQueue(record.queue));
    }
    if state.callbacks.contains_key(&call) {
        return Ok(Vec::new()); // a re-sent request
    }
    Ok(vec![Event::CallbackRequested { call, record }])
}

/// Applies `CallbackRequested`.
pub(crate) fn apply(
    state: &mut State,
    call: &CallId,
    record: &CallbackRecord,
) -> Result<(), String> {
    if state.callbacks.contains_key(call) {
        return Err(format!("callback for {call} already requested"));
    }
    state.callbacks.insert(call.clone(), record.clone());
    Ok(())
}
