//! What one event means for one attached edge: the pure part of the edge
//! stream's forwarder (`edge_service::forward_events`), so it can be tested
//! with hand-made records.
//!
//! For the calls the edge owns: an offer → `ConnectAgent` (auto-answer,
//! ring-all targets); queued → `CallQueued`; an overflow → `CallQueued` in
//! the new queue, or `CallRedirect` (URI, message, flow, callback booked);
//! a transfer → `ReleaseAgent`. A callback's offer (`dial`) → `DialCallback`
//! to the one edge the registry picks, which then owns `<inbound>:cb`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use acd_proto::v1 as pb;
use acd_routing::{
    AgentId, CallId, Event, EventRecord, Extension, OverflowAction, OverflowReason, QueueId,
    RoutingConfig,
};
use dashmap::DashSet;
use pb::distributor_message::Kind as ToEdge;

use crate::edge_registry::EdgeRegistry;
use crate::Distributor;

/// Played by the edge when an overflow books a callback.
pub const CALLBACK_BOOKED_PROMPT: &str = "callback_booked";

/// One edge stream's view: the calls it owns and its edge id (set by hello).
#[derive(Clone)]
pub struct Forwarder {
    pub d: Distributor,
    pub owned: Arc<DashSet<CallId>>,
    pub registry: Arc<EdgeRegistry>,
    pub edge_id: Arc<Mutex<String>>,
    /// Each queue's post-call survey flow, for its offers.
    pub surveys: SurveyFlows,
}

/// Queue → post-call survey flow of the configuration in force: a small map
/// kept up to date from `ConfigChanged`, so an offer looks up one entry
/// instead of cloning the whole configuration.
#[derive(Clone, Debug, Default)]
pub struct SurveyFlows(Arc<RwLock<HashMap<QueueId, String>>>);

impl SurveyFlows {
    pub fn of(config: &RoutingConfig) -> SurveyFlows {
        let flows = SurveyFlows::default();
        flows.update(config);
        flows
    }

    pub fn update(&self, config: &RoutingConfig) {
        let map = config
            .queues
            .iter()
            .filter_map(|q| Some((q.id.clone(), q.survey.as_ref()?.flow.clone())))
            .collect();
        match self.0.write() {
            Ok(mut g) => *g = map,
            Err(p) => *p.into_inner() = map,
        }
    }

    /// The survey flow of `queue`'s calls; empty: none.
    pub fn flow(&self, queue: &QueueId) -> String {
        let get = |m: &HashMap<QueueId, String>| m.get(queue).cloned().unwrap_or_default();
        match self.0.read() {
            Ok(g) => get(&g),
            Err(p) => get(&p.into_inner()),
        }
    }
}

impl Forwarder {
    fn me(&self) -> String {
        match self.edge_id.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The command `rec` means for this edge, if any (and the ownership
    /// changes it implies).
    pub fn message_for(&self, rec: &EventRecord) -> Option<ToEdge> {
        let owned = |call: &CallId| self.owned.contains(call);
        match &rec.event {
            Event::ConfigChanged { config, .. } => {
                self.surveys.update(config);
                None
            }
            Event::CallOffered {
                call,
                dial: Some(dial),
                agent,
                extension,
                auto_answer,
                caller,
                ..
            } => self.dial(
                call,
                pb::DialCallback {
                    call_id: call.0.clone(),
                    number: dial.number.clone(),
                    trunk: dial.trunk.clone(),
                    ring_secs: u32::try_from(dial.ring_ms.div_ceil(1000)).unwrap_or(u32::MAX),
                    attempt: dial.attempt,
                    // A callback's customer is not surveyed (the edge keeps no note of it).
                    agent: Some(self.connect(call, agent, extension, *auto_answer, &[])),
                    caller: Some(crate::convert::caller_to_wire(caller)),
                },
            ),
            Event::CallOffered {
                call,
                agent,
                extension,
                auto_answer,
                ring_also,
                queue,
                ..
            } if owned(call) => {
                let mut connect = self.connect(call, agent, extension, *auto_answer, ring_also);
                connect.survey_flow = self.surveys.flow(queue);
                Some(ToEdge::Connect(connect))
            }
            Event::BindingChanged { .. } => {
                crate::bindings::update_of(&rec.event).map(ToEdge::Bindings)
            }
            Event::CallQueued { call, queue, .. } if owned(call) => {
                Some(self.queued(call, &queue.0))
            }
            Event::CallOverflowed {
                call,
                action,
                reason,
                ..
            } if owned(call) => Some(self.overflowed(call, action, *reason)),
            Event::CallTransferred {
                call, from_agent, ..
            } if owned(call) => Some(ToEdge::Release(pb::ReleaseAgent {
                call_id: call.0.clone(),
                agent_id: from_agent.0.clone(),
                reason: "transferred".into(),
            })),
            // The agent declined while their phone rang: stop ringing it; the
            // call stays queued at the edge for the next offer.
            Event::OfferRejected { call, agent } if owned(call) => {
                Some(ToEdge::Release(pb::ReleaseAgent {
                    call_id: call.0.clone(),
                    agent_id: agent.0.clone(),
                    reason: "rejected".into(),
                }))
            }
            Event::CallbackRequested { call, .. } => {
                if let Some(o) = &rec.origin {
                    self.registry.note_home(call, &o.edge.0);
                }
                None
            }
            Event::CallbackAttemptFailed { call, .. } => {
                // The next attempt picks its edge again.
                self.owned.remove(call);
                None
            }
            Event::CallAbandoned { call, .. }
            | Event::CallEnded { call, .. }
            | Event::CallTimedOut { call, .. } => {
                self.owned.remove(call);
                self.registry.forget_home(call);
                None
            }
            _ => None,
        }
    }

    fn position(&self, call: &CallId) -> u32 {
        self.d
            .lock()
            .core
            .call(call)
            .and_then(|c| c.position)
            .unwrap_or(0) as u32
    }

    fn queued(&self, call: &CallId, queue: &str) -> ToEdge {
        ToEdge::Queued(pb::CallQueued {
            call_id: call.0.clone(),
            queue_id: queue.to_string(),
            position: self.position(call),
        })
    }

    fn connect(
        &self,
        call: &CallId,
        agent: &AgentId,
        extension: &Extension,
        auto_answer: bool,
        ring_also: &[(AgentId, Extension)],
    ) -> pb::ConnectAgent {
        let (contact, source) = crate::bindings::offered_contact(&self.d, extension);
        let auto: Vec<bool> = {
            let inner = self.d.lock();
            ring_also
                .iter()
                .map(|(a, _)| inner.core.auto_answer(a))
                .collect()
        };
        let ring_also = ring_also
            .iter()
            .zip(auto)
            .map(|((a, ext), auto_answer)| {
                let (contact, source) = crate::bindings::offered_contact(&self.d, ext);
                pb::RingTarget {
                    agent_id: a.0.clone(),
                    extension: ext.0.clone(),
                    contact,
                    source,
                    auto_answer,
                }
            })
            .collect();
        pb::ConnectAgent {
            call_id: call.0.clone(),
            agent_id: agent.0.clone(),
            extension: extension.0.clone(),
            contact,
            source,
            auto_answer,
            ring_also,
            // Set by the caller for an inbound call's offer.
            survey_flow: String::new(),
        }
    }

    /// A callback's offer goes to one edge only; that edge owns the call
    /// from now on (its `AgentAnswered`, `CallEnded` come from there).
    fn dial(&self, call: &CallId, dial: pb::DialCallback) -> Option<ToEdge> {
        let me = self.me();
        if self.registry.dialing_edge(call).as_deref() != Some(me.as_str()) {
            self.owned.remove(call);
            return None;
        }
        self.owned.insert(call.clone());
        tracing::info!(call_id = %call, edge = %me, attempt = dial.attempt, "callback dial sent");
        Some(ToEdge::Dial(dial))
    }

    fn overflowed(&self, call: &CallId, action: &OverflowAction, reason: OverflowReason) -> ToEdge {
        use pb::call_redirect::Target;
        let target = match action {
            OverflowAction::Queue(q) => return self.queued(call, &q.0),
            OverflowAction::Uri(uri) => Target::Uri(uri.clone()),
            OverflowAction::Message(prompt) => Target::MessagePrompt(prompt.clone()),
            OverflowAction::Flow(flow) => Target::Flow(flow.clone()),
            OverflowAction::Callback => {
                self.registry.note_home(call, &self.me());
                Target::CallbackPrompt(CALLBACK_BOOKED_PROMPT.into())
            }
        };
        // The core no longer holds the call as this edge's.
        self.owned.remove(call);
        ToEdge::Redirect(pb::CallRedirect {
            call_id: call.0.clone(),
            target: Some(target),
            reason: reason_name(reason).into(),
        })
    }
}

pub fn reason_name(r: OverflowReason) -> &'static str {
    match r {
        OverflowReason::Closed => "closed",
        OverflowReason::Full => "full",
        OverflowReason::MaxWait => "max_wait",
        OverflowReason::NoAgents => "no_agents",
        OverflowReason::Relaxation => "relaxation",
        OverflowReason::QueueRemoved => "queue_removed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_routing::{
        AgentDef, CallerInfo, EdgeId, MsgId, Origin, QueueId, RoutingConfig, Seq, Term, Timestamp,
        TransferTarget,
    };

    fn config() -> RoutingConfig {
        RoutingConfig {
            queues: vec![],
            agents: vec![
                AgentDef {
                    id: AgentId("alice".into()),
                    name: "Alice".into(),
                    skills: vec![],
                    auto_answer: true,
                },
                AgentDef {
                    id: AgentId("bob".into()),
                    name: "Bob".into(),
                    skills: vec![],
                    auto_answer: false,
                },
            ],
            default_wrap_up_ms: 1000,
            offer_timeout_ms: 10_000,
            extensions: Default::default(),
            not_ready_reasons: Vec::new(),
        }
    }

    /// A forwarder for `edge` attached to `registry`, owning `owned`.
    fn forwarder(
        d: &Distributor,
        registry: &Arc<EdgeRegistry>,
        edge: &str,
        owned: &[&str],
    ) -> Forwarder {
        let f = Forwarder {
            d: d.clone(),
            owned: Arc::new(owned.iter().map(|c| CallId(c.to_string())).collect()),
            registry: registry.clone(),
            edge_id: Arc::new(Mutex::new(edge.to_string())),
            surveys: SurveyFlows::of(&d.config()),
        };
        let stream = registry.open();
        registry.attach(
            stream,
            crate::edge_registry::AttachedEdge {
                edge_id: edge.into(),
                owned: f.owned.clone(),
                tx: tokio::sync::mpsc::channel(1).0,
            },
        );
        f
    }

    fn rec(event: Event) -> EventRecord {
        EventRecord {
            seq: Seq(1),
            term: Term(1),
            at: Timestamp(1000),
            event,
            origin: None,
        }
    }

    fn offer(call: &str, auto_answer: bool, ring_also: Vec<(AgentId, Extension)>) -> Event {
        Event::CallOffered {
            call: CallId(call.into()),
            agent: AgentId("alice".into()),
            extension: Extension("1001".into()),
            queue: QueueId("sales".into()),
            caller: CallerInfo::default(),
            expires_at: Timestamp(9000),
            explanation: Default::default(),
            auto_answer,
            ring_also,
            dial: None,
        }
    }

    fn overflow(call: &str, action: OverflowAction) -> Event {
        Event::CallOverflowed {
            call: CallId(call.into()),
            from: QueueId("sales".into()),
            reason: OverflowReason::Closed,
            action,
            waited_ms: 0,
        }
    }

    #[tokio::test]
    async fn an_offer_carries_auto_answer_and_ring_all_targets_to_the_owning_edge_only() {
        let d = Distributor::new(config(), crate::Role::Primary);
        let registry = Arc::new(EdgeRegistry::default());
        let mine = forwarder(&d, &registry, "e1", &["c1"]);
        let other = forwarder(&d, &registry, "e2", &[]);
        let ev = rec(offer(
            "c1",
            true,
            vec![(AgentId("bob".into()), Extension("1002".into()))],
        ));
        assert!(other.message_for(&ev).is_none(), "not its call");
        let Some(ToEdge::Connect(c)) = mine.message_for(&ev) else {
            panic!("a connect");
        };
        assert!(c.auto_answer);
        assert_eq!(c.ring_also.len(), 1);
        assert_eq!(c.ring_also[0].agent_id, "bob");
        assert_eq!(c.ring_also[0].extension, "1002");
        assert!(!c.ring_also[0].auto_answer, "bob's own setting");
    }

    #[tokio::test]
    async fn an_offer_names_its_queues_survey_flow_as_the_config_in_force_says() {
        let mut cfg = config();
        let mut sales = acd_routing::QueueDef::new("sales", Default::default());
        sales.survey = Some(acd_routing::Survey {
            flow: "survey".into(),
        });
        cfg.queues = vec![
            sales,
            acd_routing::QueueDef::new("support", Default::default()),
        ];
        let d = Distributor::new(cfg.clone(), crate::Role::Primary);
        let registry = Arc::new(EdgeRegistry::default());
        let f = forwarder(&d, &registry, "e1", &["c1", "c2"]);
        let survey_of = |ev: Event| match f.message_for(&rec(ev)) {
            Some(ToEdge::Connect(c)) => c.survey_flow,
            other => panic!("a connect, got {other:?}"),
        };
        assert_eq!(survey_of(offer("c1", false, vec![])), "survey");
        let mut other_queue = offer("c2", false, vec![]);
        if let Event::CallOffered { queue, .. } = &mut other_queue {
            *queue = QueueId("support".into());
        }
        assert_eq!(survey_of(other_queue), "", "support has no survey");
        // A reload without the survey: later offers have none.
        cfg.queues[0].survey = None;
        let changed = rec(Event::ConfigChanged {
            version: 2,
            config: cfg,
        });
        assert!(f.message_for(&changed).is_none());
        assert_eq!(survey_of(offer("c1", false, vec![])), "");
    }

    #[tokio::test]
    async fn overflow_actions_become_redirects_or_a_new_queue() {
        use pb::call_redirect::Target;
        let d = Distributor::new(config(), crate::Role::Primary);
        let registry = Arc::new(EdgeRegistry::default());
        let f = forwarder(&d, &registry, "e1", &["q", "u", "m", "f", "cb"]);
        let Some(ToEdge::Queued(q)) = f.message_for(&rec(overflow(
            "q",
            OverflowAction::Queue(QueueId("night".into())),
        ))) else {
            panic!("queued");
        };
        assert_eq!(q.queue_id, "night");
        assert!(
            f.owned.contains(&CallId("q".into())),
            "still this edge's call"
        );
        let cases = [
            (
                "u",
                OverflowAction::Uri("sip:night@10.0.0.9".into()),
                Target::Uri("sip:night@10.0.0.9".into()),
            ),
            (
                "m",
                OverflowAction::Message("night_closed".into()),
                Target::MessagePrompt("night_closed".into()),
            ),
            (
                "f",
                OverflowAction::Flow("offer_callback".into()),
                Target::Flow("offer_callback".into()),
            ),
            (
                "cb",
                OverflowAction::Callback,
                Target::CallbackPrompt(CALLBACK_BOOKED_PROMPT.into()),
            ),
        ];
        for (call, action, want) in cases {
            let Some(ToEdge::Redirect(r)) = f.message_for(&rec(overflow(call, action))) else {
                panic!("redirect for {call}");
            };
            assert_eq!(r.target, Some(want));
            assert_eq!(r.reason, "closed");
            assert!(
                !f.owned.contains(&CallId(call.into())),
                "{call} no longer held"
            );
        }
        assert!(f
            .message_for(&rec(overflow("other", OverflowAction::Callback)))
            .is_none());
    }

    #[tokio::test]
    async fn a_transfer_releases_the_agent_leg() {
        let d = Distributor::new(config(), crate::Role::Primary);
        let registry = Arc::new(EdgeRegistry::default());
        let f = forwarder(&d, &registry, "e1", &["c1"]);
        let ev = rec(Event::CallTransferred {
            call: CallId("c1".into()),
            from_agent: AgentId("alice".into()),
            target: TransferTarget::Queue(QueueId("billing".into())),
            wrap_up_until: Timestamp(5000),
        });
        let Some(ToEdge::Release(r)) = f.message_for(&ev) else {
            panic!("release");
        };
        assert_eq!((r.call_id.as_str(), r.agent_id.as_str()), ("c1", "alice"));
        assert!(
            f.owned.contains(&CallId("c1".into())),
            "the call stays at the edge"
        );
    }

    #[tokio::test]
    async fn a_callback_dial_goes_to_the_inbound_calls_edge_which_then_owns_it() {
        let d = Distributor::new(config(), crate::Role::Primary);
        let registry = Arc::new(EdgeRegistry::default());
        let a = forwarder(&d, &registry, "edge-a", &[]);
        let b = forwarder(&d, &registry, "edge-b", &[]);
        let mut booked = rec(Event::CallbackRequested {
            call: CallId("in1".into()),
            record: acd_routing::CallbackRecord {
                queue: QueueId("sales".into()),
                number: "79161234567".into(),
                priority: 0,
                voicemail: None,
                caller: CallerInfo::default(),
                requested_at: Timestamp(0),
            },
        });
        booked.origin = Some(Origin {
            edge: EdgeId("edge-b".into()),
            msg_id: MsgId(3),
        });
        assert!(a.message_for(&booked).is_none());
        let mut ev = offer("in1:cb", true, vec![]);
        if let Event::CallOffered { dial, .. } = &mut ev {
            // `CallbackDial` is not re-exported by acd-routing: built from its serde form.
            *dial = serde_json::from_value(serde_json::json!({
                "number": "79161234567", "trunk": "carrier", "ring_ms": 10_500, "attempt": 2
            }))
            .ok();
            assert!(dial.is_some());
        }
        let ev = rec(ev);
        assert!(a.message_for(&ev).is_none(), "edge-a is not the home");
        let Some(ToEdge::Dial(dial)) = b.message_for(&ev) else {
            panic!("dial at the home edge");
        };
        assert_eq!(dial.number, "79161234567");
        assert_eq!(dial.trunk, "carrier");
        assert_eq!(dial.ring_secs, 11);
        assert_eq!(dial.attempt, 2);
        let agent = dial.agent.unwrap_or_default();
        assert_eq!(
            (agent.agent_id.as_str(), agent.auto_answer),
            ("alice", true)
        );
        assert!(b.owned.contains(&CallId("in1:cb".into())));
        assert!(!a.owned.contains(&CallId("in1:cb".into())));
    }
}
