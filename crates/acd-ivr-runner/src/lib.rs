//! The IVR runner: serves `acd.v1.IvrService/Step` by translating the wire
//! session and event into the interpreter's types and back. It keeps no
//! state between calls, so any number of runners can serve one call.

use std::collections::BTreeMap;
use std::sync::Arc;

use acd_ivr::Flow;
use acd_proto::ivr_wire;
use acd_proto::v1 as pb;
use tonic::{Request, Response, Status};

/// The Step service over a fixed set of flows.
#[derive(Clone)]
pub struct IvrRunner {
    flows: Arc<BTreeMap<String, Flow>>,
}

impl IvrRunner {
    pub fn new(flows: BTreeMap<String, Flow>) -> Self {
        IvrRunner {
            flows: Arc::new(flows),
        }
    }

    pub fn into_service(self) -> pb::ivr_service_server::IvrServiceServer<Self> {
        pb::ivr_service_server::IvrServiceServer::new(self)
    }

    fn step(&self, req: pb::StepRequest) -> Result<pb::StepResponse, Status> {
        let wire = req
            .session
            .ok_or_else(|| Status::invalid_argument("StepRequest.session is missing"))?;
        let flow_id = wire.flow_id.clone();
        let flow = self
            .flows
            .get(&flow_id)
            .ok_or_else(|| Status::not_found(format!("no IVR flow `{flow_id}`")))?;
        let event = ivr_wire::event_from_wire(req.event).ok_or_else(|| {
            Status::invalid_argument("StepRequest.event is missing or of an unknown kind")
        })?;
        let session = ivr_wire::session_from_wire(wire);
        let (session, actions) = acd_ivr::step(
            flow,
            session,
            event,
            &acd_ivr::StepEnv {
                now_unix_ms: now_unix_ms(),
            },
        )
        .map_err(|e| Status::failed_precondition(format!("flow `{flow_id}`: {e}")))?;
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
        let _guard = span.enter();
        match IvrRunner::step(self, req) {
            Ok(resp) => {
                metrics::counter!("acd_ivr_steps_total").increment(1);
                tracing::debug!(node = %resp.session.as_ref().map(|s| s.node.as_str()).unwrap_or(""), "step");
                Ok(Response::new(resp))
            }
            Err(status) => {
                metrics::counter!("acd_ivr_step_errors_total", "code" => format!("{:?}", status.code())).increment(1);
                tracing::warn!(error = %status.message(), "step refused");
                Err(status)
            }
        }
    }
}

fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
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

    #[test]
    fn two_runners_serve_alternate_steps() {
        let (a, b) = (runner(), runner());
        let r1 = a
            .step(req("", EventKind::Started(pb::Started::default())))
            .unwrap();
        let node = r1.session.unwrap().node;
        let r2 = b
            .step(req(
                &node,
                EventKind::PromptFinished(pb::PromptFinished::default()),
            ))
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

    #[test]
    fn precise_statuses() {
        let r = runner();
        let mut bad = req("", EventKind::Started(pb::Started::default()));
        bad.session.as_mut().unwrap().flow_id = "nope".into();
        assert_eq!(r.step(bad).unwrap_err().code(), tonic::Code::NotFound);
        let mut no_event = req("", EventKind::Started(pb::Started::default()));
        no_event.event = None;
        assert_eq!(
            r.step(no_event).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
        let wrong = req(
            "e",
            EventKind::PromptFinished(pb::PromptFinished::default()),
        );
        assert_eq!(
            r.step(wrong).unwrap_err().code(),
            tonic::Code::FailedPrecondition
        );
    }
}
