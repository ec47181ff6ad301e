//! Queue announcements: every `announce.every_ms` a waiting caller of a
//! queue with `announce` hears their place and estimated wait. A shell
//! timer, not replicated (announcements are not state): a new leader starts
//! its own schedule.
//!
//! The estimated wait is `position × average handle time / max(1, agents
//! logged in)`, the handle time being talk plus wrap-up over the queue's
//! recent calls (60 s per call before any data).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acd_proto::v1 as pb;
use acd_routing::{CallId, CallPhase, Event, EventRecord, QueueId, RoutingConfig, Timestamp};
use pb::distributor_message::Kind as ToEdge;
use tokio::sync::broadcast::error::RecvError;

use crate::edge_registry::EdgeRegistry;
use crate::Distributor;

/// Handle time assumed before a queue has any.
pub const DEFAULT_HANDLE_MS: u64 = 60_000;
/// Calls per queue the average is taken over.
const HANDLE_SAMPLES: usize = 50;
/// How often the schedule is looked at.
const TICK: Duration = Duration::from_millis(250);

/// Average handle time per queue from the event stream.
#[derive(Debug, Default)]
pub struct HandleTimes {
    /// Connected calls: queue and when.
    talking: HashMap<CallId, (QueueId, Timestamp)>,
    recent: HashMap<QueueId, VecDeque<u64>>,
}

impl HandleTimes {
    /// `queue_of` names the queue of a call just connected.
    pub fn observe(
        &mut self,
        rec: &EventRecord,
        queue_of: impl FnOnce(&CallId) -> Option<QueueId>,
    ) {
        match &rec.event {
            Event::CallConnected { call, .. } => {
                if let Some(q) = queue_of(call) {
                    self.talking.insert(call.clone(), (q, rec.at));
                }
            }
            Event::CallEnded {
                call,
                wrap_up_until,
                ..
            } => {
                let Some((q, from)) = self.talking.remove(call) else {
                    return;
                };
                let handle = wrap_up_until.0.max(rec.at.0).saturating_sub(from.0);
                let samples = self.recent.entry(q).or_default();
                samples.push_back(handle);
                if samples.len() > HANDLE_SAMPLES {
                    samples.pop_front();
                }
            }
            Event::CallTransferred { call, .. } | Event::CallAbandoned { call, .. } => {
                self.talking.remove(call);
            }
            _ => {}
        }
    }

    pub fn average_ms(&self, queue: &QueueId) -> u64 {
        match self.recent.get(queue) {
            Some(s) if !s.is_empty() => s.iter().sum::<u64>() / s.len() as u64,
            _ => DEFAULT_HANDLE_MS,
        }
    }
}

/// Estimated wait in seconds for the caller at `position` (1-based).
pub fn estimated_wait_secs(position: u32, handle_ms: u64, agents_logged_in: usize) -> u32 {
    let agents = agents_logged_in.max(1) as u64;
    let ms = u64::from(position) * handle_ms / agents;
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

/// When each waiting call hears its next announcement.
#[derive(Debug, Default)]
pub struct Schedule {
    next: HashMap<CallId, Instant>,
}

impl Schedule {
    /// `waiting`: the calls that should be announced, with their period.
    /// Returns those due at `now` (first one `every` after a call is first
    /// seen); calls no longer waiting are forgotten.
    pub fn due(&mut self, waiting: &BTreeMap<CallId, Duration>, now: Instant) -> Vec<CallId> {
        self.next.retain(|c, _| waiting.contains_key(c));
        let mut out = Vec::new();
        for (call, every) in waiting {
            let next = self.next.entry(call.clone()).or_insert(now + *every);
            if *next <= now {
                out.push(call.clone());
                *next = now + *every;
            }
        }
        out
    }
}

/// Sends the announcements of every attached edge's waiting calls.
pub async fn run(d: Distributor, registry: Arc<EdgeRegistry>) {
    let mut events = d.subscribe_effects();
    let mut config = d.config();
    let mut times = HandleTimes::default();
    let mut schedule = Schedule::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            rec = events.recv() => match rec {
                Ok(rec) => observe(&d, &rec, &mut config, &mut times),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            },
            _ = tick.tick() => announce_due(&d, &registry, &config, &times, &mut schedule).await,
        }
    }
}

fn observe(
    d: &Distributor,
    rec: &EventRecord,
    config: &mut RoutingConfig,
    times: &mut HandleTimes,
) {
    if let Event::ConfigChanged { config: c, .. } = &rec.event {
        *config = c.clone();
    }
    times.observe(rec, |call| d.lock().core.call(call).map(|c| c.queue));
}

/// One announcement to send.
struct Due {
    tx: crate::edge_registry::EdgeTx,
    msg: pb::QueueAnnouncement,
}

async fn announce_due(
    d: &Distributor,
    registry: &EdgeRegistry,
    config: &RoutingConfig,
    times: &HandleTimes,
    schedule: &mut Schedule,
) {
    let announce: HashMap<&QueueId, &acd_routing::Announce> = config
        .queues
        .iter()
        .filter_map(|q| Some((&q.id, q.announce.as_ref()?)))
        .collect();
    if announce.is_empty() {
        return;
    }
    let edges = registry.attached();
    let (due, term) = {
        let inner = d.lock();
        if inner.role != crate::Role::Primary {
            return;
        }
        let logged_in: HashMap<QueueId, usize> = inner
            .core
            .queues()
            .into_iter()
            .map(|q| (q.id, q.agents_logged_in))
            .collect();
        let mut waiting = BTreeMap::new();
        let mut owner = HashMap::new();
        for e in &edges {
            for call in e.owned.iter() {
                let Some(v) = inner.core.call(&call) else {
                    continue;
                };
                let Some(a) = announce.get(&v.queue) else {
                    continue;
                };
                if v.phase == CallPhase::Waiting {
                    waiting.insert(call.clone(), Duration::from_millis(a.every_ms.max(1000)));
                    owner.insert(call.clone(), e.tx.clone());
                }
            }
        }
        let mut out = Vec::new();
        for call in schedule.due(&waiting, Instant::now()) {
            let (Some(v), Some(tx)) = (inner.core.call(&call), owner.get(&call)) else {
                continue;
            };
            let Some(a) = announce.get(&v.queue) else {
                continue;
            };
            let position = v.position.unwrap_or(0) as u32;
            let agents = logged_in.get(&v.queue).copied().unwrap_or(0);
            let ewt = estimated_wait_secs(position, times.average_ms(&v.queue), agents);
            out.push(Due {
                tx: tx.clone(),
                msg: pb::QueueAnnouncement {
                    call_id: call.0.clone(),
                    position: if a.position { position } else { 0 },
                    estimated_wait_secs: if a.estimated_wait { ewt.max(1) } else { 0 },
                },
            });
        }
        (out, inner.core.term().0)
    };
    for Due { tx, msg } in due {
        metrics::counter!("acd_queue_announcements_total").increment(1);
        tracing::debug!(call_id = %msg.call_id, position = msg.position, ewt = msg.estimated_wait_secs, "queue announcement");
        let msg = pb::DistributorMessage {
            term,
            kind: Some(ToEdge::Announce(msg)),
        };
        // A full or closed stream: this announcement is skipped, not queued.
        if tx.try_send(Ok(msg)).is_err() {
            metrics::counter!("acd_queue_announcements_dropped_total", "reason" => "stream_full")
                .increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_routing::{AgentId, Seq, Term};

    fn rec(at: u64, event: Event) -> EventRecord {
        EventRecord {
            seq: Seq(1),
            term: Term(1),
            at: Timestamp(at),
            event,
            origin: None,
        }
    }

    #[test]
    fn handle_time_is_talk_plus_wrap_up_averaged_per_queue() {
        let mut t = HandleTimes::default();
        let q = QueueId("sales".into());
        assert_eq!(t.average_ms(&q), DEFAULT_HANDLE_MS);
        let (c1, c2) = (CallId("c1".into()), CallId("c2".into()));
        let agent = AgentId("a".into());
        for (c, start, end) in [(&c1, 0, 100_000), (&c2, 0, 40_000)] {
            t.observe(
                &rec(
                    start,
                    Event::CallConnected {
                        call: c.clone(),
                        agent: agent.clone(),
                    },
                ),
                |_| Some(q.clone()),
            );
            t.observe(
                &rec(
                    end,
                    Event::CallEnded {
                        call: c.clone(),
                        agent: agent.clone(),
                        wrap_up_until: Timestamp(end + 10_000),
                        by: Default::default(),
                    },
                ),
                |_| None,
            );
        }
        assert_eq!(t.average_ms(&q), 80_000);
        assert_eq!(t.average_ms(&QueueId("other".into())), DEFAULT_HANDLE_MS);
    }

    #[test]
    fn the_wait_shrinks_with_agents_and_grows_with_position() {
        assert_eq!(estimated_wait_secs(3, 60_000, 0), 180);
        assert_eq!(estimated_wait_secs(3, 60_000, 2), 90);
        assert_eq!(estimated_wait_secs(1, 60_000, 4), 15);
    }

    #[test]
    fn a_call_is_announced_every_period_from_one_period_after_it_is_seen() {
        let mut s = Schedule::default();
        let t0 = Instant::now();
        let every = Duration::from_secs(5);
        let (a, b) = (CallId("a".into()), CallId("b".into()));
        let mut waiting = BTreeMap::from([(a.clone(), every)]);
        assert!(s.due(&waiting, t0).is_empty());
        assert!(s.due(&waiting, t0 + Duration::from_secs(4)).is_empty());
        waiting.insert(b.clone(), every);
        assert_eq!(
            s.due(&waiting, t0 + Duration::from_secs(5)),
            std::slice::from_ref(&a)
        );
        assert!(s.due(&waiting, t0 + Duration::from_secs(6)).is_empty());
        // b was first seen at 5 s.
        assert!(s.due(&waiting, t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(
            s.due(&waiting, t0 + Duration::from_secs(10)),
            [a.clone(), b.clone()]
        );
        waiting.remove(&a);
        assert_eq!(s.due(&waiting, t0 + Duration::from_secs(15)), [b]);
        assert!(s.next.len() == 1, "a call no longer waiting is forgotten");
    }
}
