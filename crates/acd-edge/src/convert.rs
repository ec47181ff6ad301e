//! Wire types (protobuf) ↔ the core's own types, at the edge of the process.

use acd_b2bua::{
    AgentContact, CallId, FromDistributor, IvrReply, IvrStep, SiteBinding, ToDistributor,
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
        // Routing-engine messages this edge does not act on yet.
        Kind::Redirect(_) | Kind::Announce(_) | Kind::Dial(_) | Kind::Release(_) => return None,
    };
    Some((msg.term, cmd))
}

fn caller_to_wire(c: acd_b2bua::CallerInfo) -> pb::Caller {
    pb::Caller {
        from_uri: c.from_uri,
        display_name: c.display_name,
        did: c.did,
        variables: c.variables.into_iter().collect(),
        ..Default::default()
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
        ToDistributor::CallEnded { call, reason } => ToDist::CallEnded(pb::CallEnded {
            call_id: call.0,
            reason,
            ..Default::default()
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
