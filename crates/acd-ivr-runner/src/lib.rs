//! The IVR runner: serves `acd.v1.IvrService/Step` by translating the wire
//! session and event into the interpreter's types and back. It keeps no
//! per-call state, so any number of runners can serve one call.
//!
//! ```text
//! StepRequest ─▶ flow at the caller's version ─▶ acd_ivr::step ─▶ lookups
//!   (HTTP, stepped back in) ─▶ StepResponse (session with its version, actions)
//! ```
//! Flows are replaced by [`IvrRunner::reload`]; the versions loaded before
//! stay servable so a caller finishes on the version they started.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use acd_ivr::Flow;
use acd_proto::ivr_wire;
use acd_proto::v1 as pb;
use tonic::{Request, Response, Status};

mod clock;
mod flows;
pub mod lookup;

/// Registers the HELP text of every metric of the IVR runner.
pub fn describe_metrics() {
    const COUNTERS: &[(&str, &str)] = &[
        (
            "acd_ivr_lookups_total",
            "Data look-ups made by IVR steps, by outcome.",
        ),
        (
            "acd_ivr_node_steps_total",
            "IVR steps by flow and node (bounded by the configured flows).",
        ),
        ("acd_ivr_reloads_total", "IVR flow sets loaded at run time."),
        (
            "acd_ivr_step_errors_total",
            "IVR steps refused, by gRPC status code.",
        ),
        ("acd_ivr_steps_total", "IVR steps served."),
    ];
    for (name, help) in COUNTERS {
        metrics::describe_counter!(*name, *help);
    }
}
pub use clock::{parse_rfc3339, Clock};
pub use flows::{FlowStore, ReloadReport, Unresolved, MAX_VERSIONS_PER_FLOW};

/// The Step service over a replaceable set of flows.
#[derive(Clone)]
pub struct IvrRunner {
    flows: Arc<RwLock<FlowStore>>,
    clock: Clock,
}

impl IvrRunner {
    pub fn new(flows: BTreeMap<String, Flow>) -> Self {
        IvrRunner {
            flows: Arc::new(RwLock::new(FlowStore::new(flows))),
            clock: Clock::system(),
        }
    }

    /// Steps see `clock` as the time of day (tests: `--ivr-clock`).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn into_service(self) -> pb::ivr_service_server::IvrServiceServer<Self> {
        pb::ivr_service_server::IvrServiceServer::new(self)
    }

    /// Makes `flows` current; callers already in a flow keep their version.
    pub fn reload(&self, flows: BTreeMap<String, Flow>) -> ReloadReport {
        let report = match self.flows.write() {
            Ok(mut store) => store.replace(flows),
            Err(poisoned) => poisoned.into_inner().replace(flows),
        };
        metrics::counter!("acd_ivr_reloads_total").increment(1);
        tracing::info!(flows = ?report.flows, changed = ?report.changed, "IVR flows reloaded");
        report
    }

    /// `flow_id@version` of every current flow.
    pub fn current_versions(&self) -> Vec<String> {
        match self.flows.read() {
            Ok(store) => store.current_versions(),
            Err(poisoned) => poisoned.into_inner().current_versions(),
        }
    }

    fn resolve(&self, id: &str, version: &str) -> Result<(String, Arc<Flow>), Status> {
        let resolved = match self.flows.read() {
            Ok(store) => store.resolve(id, version),
            Err(poisoned) => poisoned.into_inner().resolve(id, version),
        };
        resolved.map_err(|e| match e {
            Unresolved::NoFlow => Status::not_found(format!("no IVR flow `{id}`")),
            // Another runner may still have it; with none, the edge falls back.
            Unresolved::NoVersion => Status::unavailable(format!(
                "flow `{id}` version {version} is not loaded on this runner"
            )),
        })
    }

    async fn step(&self, req: pb::StepRequest) -> Result<pb::StepResponse, Status> {
        let wire = req
            .session
            .ok_or_else(|| Status::invalid_argument("StepRequest.session is missing"))?;
        let flow_id = wire.flow_id.clone();
        let (version, flow) = self.resolve(&flow_id, &wire.flow_version)?;
        let event = ivr_wire::event_from_wire(req.event).ok_or_else(|| {
            Status::invalid_argument("StepRequest.event is missing or of an unknown kind")
        })?;
        let mut session = ivr_wire::session_from_wire(wire);
        session.flow_version = version;
        let env = acd_ivr::StepEnv {
            now_unix_ms: self.clock.now_unix_ms(),
        };
        let refused =
            |e: acd_ivr::StepError| Status::failed_precondition(format!("flow `{flow_id}`: {e}"));
        let (next, first) = acd_ivr::step(&flow, session, event, &env).map_err(refused)?;
        let mut session = next;
        let actions = lookup::run_lookups(&req.call_id, first, |event| {
            let env = acd_ivr::StepEnv {
                now_unix_ms: self.clock.now_unix_ms(),
            };
            let (next, actions) =
                acd_ivr::step(&flow, std::mem::take(&mut session), event, &env).map_err(refused)?;
            session = next;
            Ok::<_, Status>(actions)
        })
        .await?;
        Ok(pb::StepResponse {
            session: Some(ivr_wire::session_to_wire(&flow_id, &session)),
            actions: actions
                .into_iter()
                .filter_map(ivr_wire::action_to_wire)
                .collect(),
            step: req.step,
        })
    }
}

#[tonic::async_trait]
impl pb::ivr_service_server::IvrService for IvrRunner {
    async fn step(
        &self,
        request: Request<pb::StepRequest>,
    ) -> Result<Response<pb::StepResponse>, Status> {
        let req = request.into_inner();
        let span = tracing::debug_span!("ivr_step", call_id = %req.call_id);
        let call_id = req.call_id.clone();
        let result = tracing::Instrument::instrument(IvrRunner::step(self, req), span).await;
        match result {
            Ok(resp) => {
                metrics::counter!("acd_ivr_steps_total").increment(1);
                if let Some(s) = &resp.session {
                    // Where callers wait, per flow and node: how a flow is used
                    // (labels are bounded by the configured flows).
                    metrics::counter!("acd_ivr_node_steps_total", "flow" => s.flow_id.clone(), "node" => s.node.clone()).increment(1);
                }
                tracing::debug!(%call_id, node = %resp.session.as_ref().map(|s| s.node.as_str()).unwrap_or(""), "step");
                Ok(Response::new(resp))
            }
            Err(status) => {
                metrics::counter!("acd_ivr_step_errors_total", "code" => format!("{:?}", status.code())).increment(1);
                tracing::warn!(%call_id, error = %status.message(), "step refused");
                Err(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_ivr::{AnswerMode, Node};
    use pb::ivr_action::Kind as ActionKind;
    use pb::ivr_event::Kind as EventKind;

    fn runner() -> IvrRunner {
        let flow = Flow {
            answer: AnswerMode::Immediate,
            start: "w".into(),
            fallback_queue: "q".into(),
            nodes: BTreeMap::from([
                (
                    "w".into(),
                    Node::Play {
                        prompt: "welcome".into(),
                        prompts: vec![],
                        barge_in: false,
                        next: "e".into(),
                    },
                ),
                (
                    "e".into(),
                    Node::Enqueue {
                        queue: "q".into(),
                        priority: 2,
                        skills: BTreeMap::new(),
                        language_skills: BTreeMap::new(),
                        data: BTreeMap::new(),
                    },
                ),
            ]),
            ..Flow::default()
        };
        IvrRunner::new(BTreeMap::from([("main".into(), flow)]))
    }

    fn req(node: &str, kind: EventKind) -> pb::StepRequest {
        pb::StepRequest {
            call_id: "c1".into(),
            session: Some(pb::IvrSession {
                flow_id: "main".into(),
                node: node.into(),
                variables: Default::default(),
                flow_version: String::new(),
            }),
            event: Some(pb::IvrEvent { kind: Some(kind) }),
            step: 1,
        }
    }

    #[tokio::test]
    async fn two_runners_serve_alternate_steps() {
        let (a, b) = (runner(), runner());
        let r1 = a
            .step(req("", EventKind::Started(pb::Started::default())))
            .await
            .unwrap();
        let node = r1.session.unwrap().node;
        let r2 = b
            .step(req(
                &node,
                EventKind::PromptFinished(pb::PromptFinished::default()),
            ))
            .await
            .unwrap();
        assert_eq!(
            r2.actions,
            vec![pb::IvrAction {
                kind: Some(ActionKind::Enqueue(pb::Enqueue {
                    queue_id: "q".into(),
                    priority: 2,
                    skills: Default::default(),
                    // The caller's language always goes into the call-pop data.
                    data: [("language".to_string(), "en".to_string())].into(),
                }))
            }]
        );
    }

    #[tokio::test]
    async fn precise_statuses() {
        let r = runner();
        let mut bad = req("", EventKind::Started(pb::Started::default()));
        bad.session.as_mut().unwrap().flow_id = "nope".into();
        assert_eq!(r.step(bad).await.unwrap_err().code(), tonic::Code::NotFound);
        let mut no_event = req("", EventKind::Started(pb::Started::default()));
        no_event.event = None;
        assert_eq!(
            r.step(no_event).await.unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let wrong = req(
            "e",
            EventKind::PromptFinished(pb::PromptFinished::default()),
        );
        assert_eq!(
            r.step(wrong).await.unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
    }

    fn flow_to(queue: &str) -> Flow {
        Flow {
            answer: AnswerMode::Immediate,
            start: "w".into(),
            fallback_queue: queue.into(),
            nodes: BTreeMap::from([
                (
                    "w".into(),
                    Node::Play {
                        prompt: "welcome".into(),
                        prompts: vec![],
                        barge_in: false,
                        next: "e".into(),
                    },
                ),
                (
                    "e".into(),
                    Node::Enqueue {
                        queue: queue.into(),
                        priority: 0,
                        skills: Default::default(),
                        language_skills: Default::default(),
                        data: Default::default(),
                    },
                ),
            ]),
            ..Default::default()
        }
    }

    fn enqueued(resp: &pb::StepResponse) -> String {
        match &resp.actions[..] {
            [pb::IvrAction {
                kind: Some(ActionKind::Enqueue(e)),
            }] => e.queue_id.clone(),
            other => panic!("not an enqueue: {other:?}"),
        }
    }

    #[tokio::test]
    async fn callers_finish_on_the_version_they_started() {
        let r = IvrRunner::new(BTreeMap::from([("main".into(), flow_to("old"))]));
        let first = r
            .step(req("", EventKind::Started(pb::Started::default())))
            .await
            .unwrap();
        let started_on = first.session.clone().unwrap();
        assert_eq!(started_on.flow_version, acd_ivr::version(&flow_to("old")));

        let report = r.reload(BTreeMap::from([("main".into(), flow_to("new"))]));
        assert_eq!(report.changed, ["main"]);

        // The caller who started before the reload: old version, old queue.
        let mut next = req(
            "w",
            EventKind::PromptFinished(pb::PromptFinished::default()),
        );
        next.session = Some(started_on.clone());
        let resp = r.step(next).await.unwrap();
        assert_eq!(enqueued(&resp), "old");
        assert_eq!(resp.session.unwrap().flow_version, started_on.flow_version);

        // A new caller gets the new version.
        let fresh = r
            .step(req("", EventKind::Started(pb::Started::default())))
            .await
            .unwrap();
        let mut next = req(
            "w",
            EventKind::PromptFinished(pb::PromptFinished::default()),
        );
        next.session = fresh.session;
        assert_eq!(enqueued(&r.step(next).await.unwrap()), "new");

        // A runner that never loaded the caller's version sends them elsewhere.
        let restarted = IvrRunner::new(BTreeMap::from([("main".into(), flow_to("new"))]));
        let mut next = req(
            "w",
            EventKind::PromptFinished(pb::PromptFinished::default()),
        );
        next.session = Some(started_on);
        assert_eq!(
            restarted.step(next).await.unwrap_err().code(),
            tonic::Code::Unavailable
        );
    }
}
