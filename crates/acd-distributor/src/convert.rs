//! Translation between the routing core's types and the wire types.

use acd_proto::v1 as pb;
use acd_routing::{
    AgentState, AgentView, CallerInfo, CommandError, ErrorKind, QueueView, Timestamp,
};
use tonic::Status;

use crate::ShellError;

pub fn status_from(e: ShellError) -> Status {
    match e {
        ShellError::NotLeader(url) => {
            let mut s = Status::failed_precondition(format!("not leader; try {url}"));
            // While the leader is unknown there is nowhere to point at.
            if let (false, Ok(v)) = (url.is_empty(), url.parse()) {
                s.metadata_mut().insert("x-acd-leader", v);
            }
            s
        }
        ShellError::Command(c) => command_status(&c),
    }
}

pub fn command_status(e: &CommandError) -> Status {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::NotFound => Status::not_found(msg),
        ErrorKind::AlreadyExists => Status::already_exists(msg),
        ErrorKind::FailedPrecondition => Status::failed_precondition(msg),
        ErrorKind::Internal => Status::internal(msg),
        ErrorKind::Unimplemented => Status::unimplemented(msg),
        ErrorKind::InvalidArgument => Status::invalid_argument(msg),
    }
}

pub fn agent_state(s: &AgentState) -> pb::AgentState {
    match s {
        AgentState::LoggedOut => pb::AgentState::LoggedOut,
        AgentState::NotReady => pb::AgentState::NotReady,
        AgentState::Ready => pb::AgentState::Ready,
        AgentState::Reserved { .. } => pb::AgentState::Reserved,
        AgentState::OnCall { .. } => pb::AgentState::OnCall,
        AgentState::WrapUp { .. } => pb::AgentState::WrapUp,
    }
}

pub fn agent_status(v: &AgentView) -> pb::AgentStatus {
    let wrap_up_until_ms = match v.state {
        AgentState::WrapUp { until } => until.0,
        _ => 0,
    };
    pb::AgentStatus {
        agent_id: v.id.0.clone(),
        name: v.name.clone(),
        state: agent_state(&v.state) as i32,
        extension: v
            .extension
            .as_ref()
            .map(|e| e.0.clone())
            .unwrap_or_default(),
        reason: v.reason.clone().unwrap_or_default(),
        call_id: v.state.call().map(|c| c.0.clone()).unwrap_or_default(),
        wrap_up_until_ms,
        skills: v
            .skills
            .iter()
            .map(|(s, l)| pb::Skill {
                id: s.0.clone(),
                level: u32::from(*l),
            })
            .collect(),
    }
}

pub fn queue_status(
    q: &QueueView,
    required: &[(acd_routing::SkillId, u8)],
    now: Timestamp,
) -> pb::QueueStatus {
    pb::QueueStatus {
        queue_id: q.id.0.clone(),
        waiting: q.waiting as u32,
        longest_wait_ms: q.longest_wait_since.map(|t| now.ms_since(t)).unwrap_or(0),
        agents_ready: q.agents_ready as u32,
        agents_logged_in: q.agents_logged_in as u32,
        offered: q.offered,
        answered: q.answered,
        abandoned: q.abandoned,
        required_skills: required
            .iter()
            .map(|(s, l)| pb::Skill {
                id: s.0.clone(),
                level: u32::from(*l),
            })
            .collect(),
        ..Default::default()
    }
}

pub fn caller_from_wire(c: Option<pb::Caller>) -> CallerInfo {
    let c = c.unwrap_or_default();
    CallerInfo {
        from: c.from_uri,
        display: c.display_name,
        did: c.did,
        variables: c.variables.into_iter().collect(),
        number: c.number,
    }
}

/// A callback attempt's outcome from the edge's report (`None`: unspecified).
pub fn callback_outcome(outcome: i32) -> Option<acd_routing::CallbackOutcome> {
    use acd_routing::CallbackOutcome as O;
    match pb::CallbackOutcome::try_from(outcome) {
        Ok(pb::CallbackOutcome::Answered) => Some(O::Answered),
        Ok(pb::CallbackOutcome::Busy) => Some(O::Busy),
        Ok(pb::CallbackOutcome::NoAnswer) => Some(O::NoAnswer),
        Ok(pb::CallbackOutcome::Failed) => Some(O::Failed),
        _ => None,
    }
}

/// Who ended a call, from the edge's report.
pub fn ended_by(by: i32) -> acd_routing::EndReason {
    use acd_routing::EndReason;
    match pb::EndedBy::try_from(by) {
        Ok(pb::EndedBy::Caller) => EndReason::CallerHungUp,
        Ok(pb::EndedBy::Agent) => EndReason::AgentHungUp,
        Ok(pb::EndedBy::Failure) => EndReason::Failed,
        _ => EndReason::Unknown,
    }
}

/// The plain `skill >= level` terms an expression requires in every case (the
/// `required_skills` list of a queue's status); the full text is in `skills`.
pub fn expr_terms(e: &acd_routing::SkillExpr) -> Vec<(acd_routing::SkillId, u8)> {
    use acd_routing::SkillExpr;
    match e {
        SkillExpr::AtLeast { skill, min } => vec![(skill.clone(), *min)],
        SkillExpr::All(xs) => xs.iter().flat_map(expr_terms).collect(),
        _ => Vec::new(),
    }
}

pub fn caller_to_wire(c: &CallerInfo) -> pb::Caller {
    pb::Caller {
        from_uri: c.from.clone(),
        display_name: c.display.clone(),
        did: c.did.clone(),
        variables: c.variables.clone().into_iter().collect(),
        number: c.number.clone(),
    }
}

/// Extra skills of an enqueue: a level beyond 255 is the highest level.
pub fn skills_from_wire(
    skills: std::collections::HashMap<String, u32>,
) -> std::collections::BTreeMap<acd_routing::SkillId, u8> {
    skills
        .into_iter()
        .map(|(s, l)| (acd_routing::SkillId(s), u8::try_from(l).unwrap_or(u8::MAX)))
        .collect()
}

/// An edge's callback request as the core's command (the core stamps the time).
pub fn callback_from_wire(c: pb::CallbackRequest) -> acd_routing::Command {
    acd_routing::Command::RequestCallback {
        call: acd_routing::CallId(c.call_id),
        record: acd_routing::CallbackRecord {
            queue: acd_routing::QueueId(c.queue_id),
            number: c.number,
            priority: c.priority,
            voicemail: (!c.voicemail.is_empty()).then_some(c.voicemail),
            caller: caller_from_wire(c.caller),
            requested_at: acd_routing::Timestamp(c.requested_at_ms),
        },
    }
}

/// An edge's call note as the core's (an unknown outcome name becomes `Unknown`;
/// the core refuses oversized or inconsistent notes).
pub fn note_from_wire(n: pb::CallNote) -> (acd_routing::CallId, acd_routing::CallNote) {
    use acd_routing::Timestamp;
    let outcome = serde_json::from_value(serde_json::Value::String(n.outcome)).unwrap_or_default();
    let note = acd_routing::CallNote {
        arrived_at: Timestamp(n.arrived_at_ms),
        left_at: Timestamp(n.left_at_ms),
        did: n.did,
        caller: n.caller,
        flow: n.flow,
        steps: n
            .steps
            .into_iter()
            .map(|s| acd_routing::IvrStep {
                at: Timestamp(s.at_ms),
                node: s.node,
                input: s.input,
            })
            .collect(),
        outcome,
        survey_score: Some(u8::try_from(n.survey_score).unwrap_or(u8::MAX)).filter(|s| *s != 0),
    };
    (acd_routing::CallId(n.call_id), note)
}

/// A pending callback for `ListCallbacks`.
pub fn callback_to_wire(
    call: &acd_routing::CallId,
    r: &acd_routing::CallbackRecord,
) -> pb::CallbackRequest {
    pb::CallbackRequest {
        call_id: call.0.clone(),
        queue_id: r.queue.0.clone(),
        number: r.number.clone(),
        priority: r.priority,
        caller: Some(caller_to_wire(&r.caller)),
        voicemail: r.voicemail.clone().unwrap_or_default(),
        requested_at_ms: r.requested_at.0,
    }
}

/// A queue's status with the figures of its definition: expression,
/// strategy, service level (target and achieved) and whether it is open.
pub fn queue_status_full(
    q: &QueueView,
    def: Option<&acd_routing::QueueDef>,
    now: Timestamp,
) -> pb::QueueStatus {
    let required = def.map(|d| expr_terms(&d.skills)).unwrap_or_default();
    let mut s = queue_status(q, &required, now);
    s.offering = q.offering as u32;
    s.timed_out = q.timed_out;
    s.overflowed = q.overflowed;
    // Of the calls that entered the queue, the share answered within the target.
    s.service_level_permille = q
        .answered_in_sl
        .saturating_mul(1000)
        .checked_div(q.offered)
        .map_or(1000, |p| u32::try_from(p).unwrap_or(1000));
    let Some(def) = def else {
        s.open = true;
        return s;
    };
    s.skills = def.skills.to_string();
    s.strategy = crate::agent_events::strategy_name(&def.strategy);
    s.target_percent = u32::from(def.service_level.percent);
    s.target_secs = u32::try_from(def.service_level.within_ms / 1000).unwrap_or(u32::MAX);
    s.open = def.hours.as_ref().is_none_or(|h| {
        let now = i64::try_from(now.0).unwrap_or(i64::MAX);
        acd_ivr::calendar::hours(&h.timezone, &h.weekly, &h.holidays, now)
            == acd_ivr::calendar::Hours::Open
    });
    s
}

#[cfg(test)]
mod note_tests {
    use super::*;

    /// The edge sends these names (`acd_b2bua::EdgeOutcome::as_str`); each
    /// must be one of the core's outcomes, not `Unknown`.
    #[test]
    fn every_edge_outcome_name_is_known_and_a_zero_score_is_none() {
        let names = [
            "queued",
            "self_served",
            "abandoned_in_ivr",
            "voicemail",
            "redirected",
            "refused",
            "failed",
        ];
        for name in names {
            let (call, note) = note_from_wire(pb::CallNote {
                call_id: "acd-1".into(),
                outcome: name.into(),
                ..Default::default()
            });
            assert_eq!(call.0, "acd-1");
            assert_ne!(note.outcome, acd_routing::EdgeOutcome::Unknown, "{name}");
            assert_eq!(note.survey_score, None);
        }
        let (_, note) = note_from_wire(pb::CallNote {
            survey_score: 4,
            ..Default::default()
        });
        assert_eq!(note.survey_score, Some(4));
    }
}
