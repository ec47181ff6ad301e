//! Registration bindings of operators' phones as replicated state: which contact
//! reaches an extension, by which path, through which edge, until when.
//!
//! The edge that took the REGISTER reports it; the leader records a
//! [`Event::BindingChanged`], so every edge (a restarted one, or another edge of
//! the site) learns it, and a promoted standby expires it at the same deadline
//! (the expiry is a core timer, not the edge's).

use crate::event::Event;
use crate::ids::{EdgeId, Extension, Timestamp};
use crate::state::State;
use serde::{Deserialize, Serialize};

/// Where an extension's phone is registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    /// The Contact URI as registered.
    pub contact: String,
    /// Where the REGISTER came from (`udp:10.0.0.7:5062`): the path through NAT.
    pub source: String,
    /// The edge holding the registration (for stream transports, the only one
    /// with a connection to the phone).
    pub edge: EdgeId,
    /// Absolute expiry; the core removes the binding then.
    pub expires_at: Timestamp,
}

/// Events for "`edge` holds `binding` for `extension`" at `now`: none when
/// nothing changes; an already expired binding is a removal.
pub(crate) fn decide_bind(
    state: &State,
    extension: Extension,
    binding: BindingRecord,
    now: Timestamp,
) -> Vec<Event> {
    if binding.expires_at <= now {
        return decide_unbind(state, extension, &binding.edge);
    }
    if state.bindings.get(&extension) == Some(&binding) {
        return Vec::new(); // a report sent again after a reconnect
    }
    vec![Event::BindingChanged {
        extension,
        binding: Some(binding),
    }]
}

/// Events for "`edge` no longer holds `extension`": only the edge holding the
/// binding removes it, so a late expiry at the old edge cannot undo a move.
pub(crate) fn decide_unbind(state: &State, extension: Extension, edge: &EdgeId) -> Vec<Event> {
    match state.bindings.get(&extension) {
        Some(b) if b.edge == *edge => vec![Event::BindingChanged {
            extension,
            binding: None,
        }],
        _ => Vec::new(),
    }
}

/// The removal due at `now` for `extension`, if its binding has expired.
pub(crate) fn expiry_event(state: &State, extension: &Extension, now: Timestamp) -> Option<Event> {
    let b = state.bindings.get(extension)?;
    (b.expires_at <= now).then(|| Event::BindingChanged {
        extension: extension.clone(),
        binding: None,
    })
}

/// Applies a [`Event::BindingChanged`]; a removal of an absent binding is a
/// mismatch between leader and follower.
pub(crate) fn apply(
    state: &mut State,
    extension: &Extension,
    binding: &Option<BindingRecord>,
) -> Result<(), String> {
    match binding {
        Some(b) => {
            state.bindings.insert(extension.clone(), b.clone());
        }
        None => {
            if state.bindings.remove(extension).is_none() {
                return Err(format!("extension {extension} has no binding to remove"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
