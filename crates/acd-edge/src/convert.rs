//! Wire types (protobuf) ↔ the core's own types, at the edge of the process.

use acd_b2bua::{
    AgentContact, CallId, FromDistributor, IvrAction, IvrEvent, IvrReply, IvrStep, SiteBinding,
    ToDistributor,
};
use acd_proto::v1 as pb;
use pb::edge_message::Kind as ToDist;

pub fn from_distributor(msg: pb::DistributorMessage) -> Option<(u64, FromDistributor)> {
    use pb::distributor_message::Kind;
    let cmd = match msg.kind? {
        Kind::Connect(c) => FromDistributor::Connect {
            call: CallId(c.call_id),
            agent: acd_b2bua::AgentId(c.agent_id),
            extension: c.extension,
            contact: (!c.contact.is_empty()).then_some(AgentContact {
                contact: c.contact,
                source: c.source,
            }),
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
    };
    Some((msg.term, cmd))
}

pub fn to_distributor(msg: ToDistributor) -> Option<ToDist> {
    Some(match msg {
        ToDistributor::Enqueue(e) => ToDist::Enqueue(pb::EnqueueCall {
            call_id: e.call.0,
            queue_id: e.queue,
            priority: e.priority,
            caller: Some(pb::Caller {
                from_uri: e.caller.from_uri,
                display_name: e.caller.display_name,
                did: e.caller.did,
                variables: e.caller.variables.into_iter().collect(),
            }),
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
        ToDistributor::CallEnded { call, reason } => ToDist::CallEnded(pb::CallEnded {
            call_id: call.0,
            reason,
        }),
        ToDistributor::Binding(b) => ToDist::Binding(binding_to_wire(b)),
        _ => return None,
    })
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
    use pb::ivr_event::Kind;
    let kind = match &step.event {
        IvrEvent::Started { did, caller } => Kind::Started(pb::Started {
            did: did.clone(),
            caller: caller.clone(),
        }),
        IvrEvent::PromptFinished => Kind::PromptFinished(pb::PromptFinished::default()),
        IvrEvent::Digits(d) => Kind::Digits(pb::DigitsCollected { digits: d.clone() }),
        IvrEvent::Timeout => Kind::Timeout(pb::InputTimeout {}),
    };
    pb::StepRequest {
        call_id: step.call.0.clone(),
        session: Some(pb::IvrSession {
            flow_id: step.flow.clone(),
            node: step.session.node.clone(),
            variables: step.session.variables.clone().into_iter().collect(),
        }),
        event: Some(pb::IvrEvent { kind: Some(kind) }),
    }
}

pub fn step_reply(resp: pb::StepResponse) -> IvrReply {
    use pb::ivr_action::Kind;
    let actions = resp
        .actions
        .into_iter()
        .filter_map(|a| {
            Some(match a.kind? {
                Kind::Play(p) => IvrAction::Play { prompt: p.prompt },
                Kind::Enqueue(q) => IvrAction::Enqueue {
                    queue: q.queue_id,
                    priority: q.priority,
                },
                Kind::Hangup(h) => IvrAction::Hangup { reason: h.reason },
                Kind::Collect(c) => IvrAction::Collect {
                    max_digits: c.max_digits,
                    timeout_ms: c.timeout_ms,
                },
            })
        })
        .collect();
    IvrReply {
        session: resp.session.map(|s| acd_ivr::Session {
            node: s.node,
            variables: s.variables.into_iter().collect(),
        }),
        actions,
    }
}
