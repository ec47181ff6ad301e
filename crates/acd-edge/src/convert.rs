//! Wire types (protobuf) ↔ the core's own types, at the edge of the process.

use acd_b2bua::{
    AgentContact, CallId, CallbackOutcome, DialCallback, EndedBy, FromDistributor, IvrReply,
    IvrStep, RedirectTarget, SiteBinding, ToDistributor,
};
use acd_proto::ivr_wire;
use acd_proto::v1 as pb;
use pb::edge_message::Kind as ToDist;

pub fn from_distributor(msg: pb::DistributorMessage) -> Option<(u64, FromDistributor)> {
    use pb::distributor_message::Kind;
    let cmd = match msg.kind? {
        Kind::Connect(c) => FromDistributor::Connect {
            call: CallId(c.call_id),
            agent: acd_b2bua::AgentId(c.agent_id),
            extension: c.extension,
            contact: contact_from_wire(c.contact, c.source),
            auto_answer: c.auto_answer,
            ring_also: c
                .ring_also
                .into_iter()
                .map(|t| acd_b2bua::RingTarget {
                    agent: acd_b2bua::AgentId(t.agent_id),
                    extension: t.extension,
                    contact: contact_from_wire(t.contact, t.source),
                    auto_answer: t.auto_answer,
                })
                .collect(),
            survey_flow: c.survey_flow,
        },
        Kind::Queued(q) => FromDistributor::Queued {
            call: CallId(q.call_id),
            queue: q.queue_id,
            position: q.position,
        },
        Kind::Rejected(r) => FromDistributor::Rejected {
            call: CallId(r.call_id),
            reason: r.reason,
        },
        Kind::Unknown(u) => FromDistributor::Unknown {
            call: CallId(u.call_id),
        },
        Kind::Bindings(u) => FromDistributor::Bindings {
            full: u.full,
            bindings: u.bindings.into_iter().map(binding_from_wire).collect(),
        },
        // Handled by the distributor link.
        Kind::Ack(_) => return None,
        Kind::Redirect(r) => FromDistributor::Redirect {
            call: CallId(r.call_id),
            target: redirect_target(r.target?),
            reason: r.reason,
        },
        Kind::Announce(a) => FromDistributor::Announce {
            call: CallId(a.call_id),
            position: a.position,
            estimated_wait_secs: a.estimated_wait_secs,
        },
        Kind::Dial(d) => FromDistributor::Dial(Box::new(dial_from_wire(d)?)),
        Kind::Release(r) => FromDistributor::Release {
            call: CallId(r.call_id),
            agent: acd_b2bua::AgentId(r.agent_id),
            reason: r.reason,
        },
    };
    Some((msg.term, cmd))
}

fn contact_from_wire(contact: String, source: String) -> Option<AgentContact> {
    (!contact.is_empty()).then_some(AgentContact { contact, source })
}

fn redirect_target(t: pb::call_redirect::Target) -> RedirectTarget {
    use pb::call_redirect::Target;
    match t {
        Target::Uri(u) => RedirectTarget::Uri(u),
        Target::MessagePrompt(p) => RedirectTarget::Message(p),
        Target::Flow(f) => RedirectTarget::Flow(f),
        Target::CallbackPrompt(p) => RedirectTarget::Callback(p),
    }
}

/// `None` without the reserved agent (nobody to connect the customer to).
fn dial_from_wire(d: pb::DialCallback) -> Option<DialCallback> {
    let agent = d.agent?;
    Some(DialCallback {
        call: CallId(d.call_id),
        number: d.number,
        trunk: d.trunk,
        ring_secs: d.ring_secs,
        attempt: d.attempt,
        agent: acd_b2bua::AgentId(agent.agent_id),
        extension: agent.extension,
        contact: contact_from_wire(agent.contact, agent.source),
        auto_answer: agent.auto_answer,
        caller: d.caller.map(caller_from_wire).unwrap_or_default(),
    })
}

fn caller_from_wire(c: pb::Caller) -> acd_b2bua::CallerInfo {
    acd_b2bua::CallerInfo {
        from_uri: c.from_uri,
        number: c.number,
        display_name: c.display_name,
        did: c.did,
        variables: c.variables.into_iter().collect(),
    }
}

fn caller_to_wire(c: acd_b2bua::CallerInfo) -> pb::Caller {
    pb::Caller {
        from_uri: c.from_uri,
        display_name: c.display_name,
        did: c.did,
        variables: c.variables.into_iter().collect(),
        number: c.number,
    }
}

pub fn to_distributor(msg: ToDistributor) -> Option<ToDist> {
    Some(match msg {
        ToDistributor::Enqueue(e) => ToDist::Enqueue(pb::EnqueueCall {
            call_id: e.call.0,
            queue_id: e.queue,
            priority: e.priority,
            caller: Some(caller_to_wire(e.caller)),
            skills: e
                .skills
                .into_iter()
                .map(|(k, v)| (k, u32::from(v)))
                .collect(),
        }),
        ToDistributor::Callback(c) => ToDist::Callback(pb::CallbackRequest {
            call_id: c.call.0,
            queue_id: c.queue,
            number: c.number,
            priority: c.priority,
            caller: Some(caller_to_wire(c.caller)),
            voicemail: c.voicemail.unwrap_or_default(),
            requested_at_ms: c.requested_at_ms,
        }),
        ToDistributor::Abandon { call } => ToDist::Abandon(pb::AbandonCall { call_id: call.0 }),
        ToDistributor::AgentAnswered { call, agent } => ToDist::AgentAnswered(pb::AgentAnswered {
            call_id: call.0,
            agent_id: agent.0,
        }),
        ToDistributor::AgentFailed {
            call,
            agent,
            reason,
            sip_status,
        } => ToDist::AgentFailed(pb::AgentFailed {
            call_id: call.0,
            agent_id: agent.0,
            reason,
            sip_status: u32::from(sip_status),
        }),
        ToDistributor::CallEnded { call, reason, by } => ToDist::CallEnded(pb::CallEnded {
            call_id: call.0,
            reason,
            by: ended_by_to_wire(by) as i32,
        }),
        ToDistributor::CallbackResult {
            call,
            outcome,
            sip_status,
        } => ToDist::CallbackResult(pb::CallbackResult {
            call_id: call.0,
            outcome: callback_outcome_to_wire(outcome) as i32,
            sip_status: u32::from(sip_status),
        }),
        ToDistributor::Binding(b) => ToDist::Binding(binding_to_wire(b)),
        ToDistributor::Note(n) => ToDist::Note(note_to_wire(n)),
        _ => return None,
    })
}

fn note_to_wire(n: acd_b2bua::CallNote) -> pb::CallNote {
    pb::CallNote {
        call_id: n.call.0,
        arrived_at_ms: n.arrived_at_ms,
        left_at_ms: n.left_at_ms,
        did: n.did,
        caller: n.caller,
        flow: n.flow,
        steps: n
            .steps
            .into_iter()
            .map(|s| pb::IvrStep {
                at_ms: s.at_ms,
                node: s.node,
                input: s.input,
            })
            .collect(),
        outcome: n.outcome.as_str().to_string(),
        // 0 on the wire: no answer.
        survey_score: n.survey_score.map_or(0, u32::from),
    }
}

fn ended_by_to_wire(by: EndedBy) -> pb::EndedBy {
    match by {
        EndedBy::Unspecified => pb::EndedBy::Unspecified,
        EndedBy::Caller => pb::EndedBy::Caller,
        EndedBy::Agent => pb::EndedBy::Agent,
        EndedBy::Failure => pb::EndedBy::Failure,
    }
}

fn callback_outcome_to_wire(o: CallbackOutcome) -> pb::CallbackOutcome {
    match o {
        CallbackOutcome::Answered => pb::CallbackOutcome::Answered,
        CallbackOutcome::Busy => pb::CallbackOutcome::Busy,
        CallbackOutcome::NoAnswer => pb::CallbackOutcome::NoAnswer,
        CallbackOutcome::Failed => pb::CallbackOutcome::Failed,
    }
}

fn binding_from_wire(b: pb::Binding) -> SiteBinding {
    SiteBinding {
        aor: b.aor,
        contact: b.contact,
        source: b.source,
        expires_at_ms: b.expires_at_ms,
        edge_id: b.edge_id,
    }
}

fn binding_to_wire(b: SiteBinding) -> pb::Binding {
    pb::Binding {
        aor: b.aor,
        contact: b.contact,
        expires_at_ms: b.expires_at_ms,
        source: b.source,
        edge_id: b.edge_id,
    }
}

pub fn step_request(step: &IvrStep) -> pb::StepRequest {
    pb::StepRequest {
        call_id: step.call.0.clone(),
        session: Some(ivr_wire::session_to_wire(&step.flow, &step.session)),
        event: ivr_wire::event_to_wire(&step.event),
        step: step.step.0,
    }
}

pub fn step_reply(resp: pb::StepResponse) -> IvrReply {
    IvrReply {
        session: resp.session.map(ivr_wire::session_from_wire),
        actions: resp
            .actions
            .into_iter()
            .filter_map(ivr_wire::action_from_wire)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_note_goes_on_the_wire_with_its_outcome_name_and_score() {
        let note = acd_b2bua::CallNote {
            call: CallId("acd-1".into()),
            arrived_at_ms: 1_000,
            left_at_ms: 9_000,
            did: "5550100".into(),
            caller: "0611223344".into(),
            flow: "sales".into(),
            steps: vec![acd_b2bua::NoteStep {
                at_ms: 2_000,
                node: "menu".into(),
                input: "1".into(),
            }],
            outcome: acd_b2bua::EdgeOutcome::AbandonedInIvr,
            survey_score: Some(4),
        };
        let Some(ToDist::Note(w)) = to_distributor(ToDistributor::Note(note.clone())) else {
            panic!("a note");
        };
        assert_eq!(w.call_id, "acd-1");
        assert_eq!((w.arrived_at_ms, w.left_at_ms), (1_000, 9_000));
        assert_eq!(
            (w.did.as_str(), w.caller.as_str(), w.flow.as_str()),
            ("5550100", "0611223344", "sales")
        );
        assert_eq!(w.steps.len(), 1);
        assert_eq!(
            (w.steps[0].node.as_str(), w.steps[0].input.as_str()),
            ("menu", "1")
        );
        assert_eq!(w.outcome, "abandoned_in_ivr");
        assert_eq!(w.survey_score, 4);
        let unanswered = acd_b2bua::CallNote {
            survey_score: None,
            ..note
        };
        let Some(ToDist::Note(w)) = to_distributor(ToDistributor::Note(unanswered)) else {
            panic!("a note");
        };
        assert_eq!(w.survey_score, 0);
    }

    #[test]
    fn an_offer_brings_its_queues_survey_flow() {
        let msg = pb::DistributorMessage {
            term: 3,
            kind: Some(pb::distributor_message::Kind::Connect(pb::ConnectAgent {
                call_id: "acd-1".into(),
                agent_id: "alice".into(),
                extension: "1001".into(),
                survey_flow: "survey".into(),
                ..Default::default()
            })),
        };
        let Some((3, FromDistributor::Connect { survey_flow, .. })) = from_distributor(msg) else {
            panic!("a connect");
        };
        assert_eq!(survey_flow, "survey");
    }
}
