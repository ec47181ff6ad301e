//! `--server URL[,URL...]`: every call goes to the distributor leader. The
//! servers are tried in order (the last one that answered first); a standby
//! refuses writes and watches with "not leader; try X", and the call goes to X.

use std::future::Future;
use std::time::Duration;

use acd_proto::client::AuthChannel;
use acd_proto::leader::{leader_hint, Endpoints};
use anyhow::{anyhow, Result};

use crate::connect;

/// Hints followed in one call before giving up: two standbys naming each
/// other must not loop.
const MAX_HINT_HOPS: usize = 3;

pub struct Servers {
    endpoints: Endpoints,
}

impl Servers {
    pub fn new(list: &str) -> Result<Servers> {
        let endpoints = Endpoints::parse(list).ok_or_else(|| anyhow!("no server in `{list}`"))?;
        Ok(Servers { endpoints })
    }

    /// Runs `call` on the leader: unreachable servers are skipped, a
    /// standby's hint is followed; any other answer (success or error) is the
    /// result. The server that answered is tried first next time.
    pub async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T>
    where
        F: FnMut(AuthChannel) -> Fut,
        Fut: Future<Output = Result<T, tonic::Status>>,
    {
        let mut targets = self.endpoints.order();
        targets.reverse(); // popped from the end: the known leader first
        let mut hops = 0;
        let mut last_error = anyhow!("no server to try");
        while let Some(url) = targets.pop() {
            let channel = match connect(&url).await {
                Ok(c) => c,
                Err(e) => {
                    last_error = e;
                    continue;
                }
            };
            match call(channel).await {
                Ok(v) => {
                    self.endpoints.set_leader(&url);
                    return Ok(v);
                }
                Err(status) => match leader_hint(&status) {
                    Some(hint) if hint != url && hops < MAX_HINT_HOPS => {
                        hops += 1;
                        targets.push(hint);
                        last_error = status.into();
                    }
                    // A server shutting down: another may lead.
                    _ if status.code() == tonic::Code::Unavailable => last_error = status.into(),
                    _ => {
                        self.endpoints.set_leader(&url);
                        return Err(status.into());
                    }
                },
            }
        }
        Err(last_error)
    }
}

/// Waits between attempts to re-attach a watch: short first, then longer.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64 << attempt.min(4))
}
