//! Identifier newtypes, so an agent id can never be passed where a queue id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

macro_rules! number_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                Self(v)
            }
        }
    };
}

string_id!(
    /// A call, as named by the edge (unique while the call is known to the core).
    CallId
);
string_id!(
    /// An operator, as configured.
    AgentId
);
string_id!(
    /// A queue, as configured.
    QueueId
);
string_id!(
    /// A skill name (language, product, tier…).
    SkillId
);
string_id!(
    /// A SIP extension an agent sits at (hot desking: it changes per login).
    Extension
);
string_id!(
    /// A SIP edge, as it names itself (`--edge-id`).
    EdgeId
);
number_id!(
    /// Leadership epoch; records from a lower term are refused (fencing).
    Term
);
number_id!(
    /// Position of an event in the log; consecutive, starting at 1.
    Seq
);
number_id!(
    /// Milliseconds since the Unix epoch, always passed in by the shell.
    Timestamp
);

impl Timestamp {
    /// `self + ms`, saturating so a huge configured timeout cannot wrap to the past.
    pub fn plus_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }

    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn ms_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl Seq {
    /// The sequence number following this one.
    pub fn next(self) -> Seq {
        Seq(self.0.saturating_add(1))
    }
}

number_id!(
    /// An edge's message number: per edge, increasing from 1 (see `origin`).
    MsgId
);
