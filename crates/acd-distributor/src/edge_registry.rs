//! The edges attached to this distributor, for what no single edge stream
//! owns: a callback's dial (`<inbound>:cb` belongs to no edge yet) goes to
//! the edge that held the inbound call if it is still attached, else to the
//! attached edge with the smallest id; queue announcements go out on each
//! edge's own stream. Shell state only (a new leader rebuilds it as edges
//! attach).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use acd_proto::v1 as pb;
use acd_routing::CallId;
use dashmap::DashSet;
use tokio::sync::mpsc;
use tonic::Status;

/// Where to send an edge's commands.
pub type EdgeTx = mpsc::Sender<Result<pb::DistributorMessage, Status>>;

/// One attached edge stream.
#[derive(Clone)]
pub struct AttachedEdge {
    pub edge_id: String,
    pub owned: Arc<DashSet<CallId>>,
    pub tx: EdgeTx,
}

#[derive(Default)]
struct State {
    /// By stream number (an edge re-attaching gets a new one).
    streams: BTreeMap<u64, AttachedEdge>,
    /// Inbound call → the edge that held it when its callback was booked.
    homes: HashMap<CallId, String>,
    next_stream: u64,
}

/// Shared by every edge stream of this process.
#[derive(Default)]
pub struct EdgeRegistry {
    state: Mutex<State>,
}

/// Suffix of a callback's virtual call id (`<inbound>:cb`).
pub const CALLBACK_SUFFIX: &str = ":cb";

impl EdgeRegistry {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A new stream; its edge id is known once it says hello.
    pub fn open(&self) -> u64 {
        let mut s = self.lock();
        s.next_stream += 1;
        s.next_stream
    }

    pub fn attach(&self, stream: u64, edge: AttachedEdge) {
        self.lock().streams.insert(stream, edge);
    }

    pub fn detach(&self, stream: u64) {
        self.lock().streams.remove(&stream);
    }

    /// Every attached stream, in stream order.
    pub fn attached(&self) -> Vec<AttachedEdge> {
        self.lock().streams.values().cloned().collect()
    }

    /// The inbound `call` held at `edge_id` became a callback.
    pub fn note_home(&self, call: &CallId, edge_id: &str) {
        self.lock().homes.insert(call.clone(), edge_id.to_string());
    }

    /// The edge that dials the callback `call` (`<inbound>:cb`): the
    /// inbound call's edge while attached, else the smallest attached id.
    pub fn dialing_edge(&self, call: &CallId) -> Option<String> {
        let s = self.lock();
        let inbound = call.0.strip_suffix(CALLBACK_SUFFIX).unwrap_or(&call.0);
        let attached = |id: &str| s.streams.values().any(|e| e.edge_id == id);
        match s.homes.get(&CallId(inbound.to_string())) {
            Some(home) if attached(home) => Some(home.clone()),
            _ => s.streams.values().map(|e| e.edge_id.clone()).min(),
        }
    }

    /// The callback is over (connected, given up): its home is not needed.
    pub fn forget_home(&self, call: &CallId) {
        let inbound = call.0.strip_suffix(CALLBACK_SUFFIX).unwrap_or(&call.0);
        self.lock().homes.remove(&CallId(inbound.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(id: &str) -> AttachedEdge {
        AttachedEdge {
            edge_id: id.into(),
            owned: Arc::default(),
            tx: mpsc::channel(1).0,
        }
    }

    #[test]
    fn a_callback_is_dialled_at_home_else_by_the_smallest_edge_id() {
        let r = EdgeRegistry::default();
        let cb = CallId("c1:cb".into());
        assert_eq!(r.dialing_edge(&cb), None, "no edge attached");
        let (s1, s2) = (r.open(), r.open());
        r.attach(s1, edge("edge-b"));
        r.attach(s2, edge("edge-a"));
        assert_eq!(r.dialing_edge(&cb).as_deref(), Some("edge-a"));
        r.note_home(&CallId("c1".into()), "edge-b");
        assert_eq!(r.dialing_edge(&cb).as_deref(), Some("edge-b"));
        r.detach(s1);
        assert_eq!(r.dialing_edge(&cb).as_deref(), Some("edge-a"), "home gone");
        r.forget_home(&cb);
        r.attach(s1, edge("edge-b"));
        assert_eq!(r.dialing_edge(&cb).as_deref(), Some("edge-a"));
    }
}
