//! Rendering of the wire types: aligned tables and one-line summaries for
//! humans, one JSON object per line for `--json`. Prost types do not derive
//! `Serialize`, so the JSON objects are built here by hand; their field names
//! are the proto field names and enum values are short names (`"READY"`).

use std::collections::BTreeMap;

use acd_proto::v1::{
    agent_event::Kind, AgentEvent, AgentState, AgentStatus, CallOffer, Caller, DistributorStatus,
    DrainResponse, EdgeStatus, QueueStatus, Skill, StatusResponse,
};
use serde_json::{json, Value};

/// `AGENT_STATE_WRAP_UP` → `"WRAP_UP"`; an unknown number → `"UNKNOWN(n)"`.
pub fn state_name(state: i32) -> String {
    match AgentState::try_from(state) {
        Ok(s) => s
            .as_str_name()
            .trim_start_matches("AGENT_STATE_")
            .to_string(),
        Err(_) => format!("UNKNOWN({state})"),
    }
}

/// The canonical gRPC name of a status code (`NOT_FOUND`, `UNAVAILABLE`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Writes `text` and a newline to stdout and flushes, so a reader sees
/// every line (every watch event) as soon as it is printed.
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// The human rendering, or the JSON object on one line.
pub fn emit(
    json: bool,
    human: impl FnOnce() -> String,
    value: impl FnOnce() -> Value,
) -> std::io::Result<()> {
    if json {
        print(&value().to_string())
    } else {
        print(&human())
    }
}

// ---------------------------------------------------------------- JSON

pub fn skills_json(skills: &[Skill]) -> Value {
    Value::Array(
        skills
            .iter()
            .map(|s| json!({ "id": s.id, "level": s.level }))
            .collect(),
    )
}

pub fn agent_json(a: &AgentStatus) -> Value {
    json!({
        "agent_id": a.agent_id,
        "name": a.name,
        "state": state_name(a.state),
        "extension": a.extension,
        "reason": a.reason,
        "call_id": a.call_id,
        "wrap_up_until_ms": a.wrap_up_until_ms,
        "skills": skills_json(&a.skills),
    })
}

pub fn queue_json(q: &QueueStatus) -> Value {
    json!({
        "queue_id": q.queue_id,
        "waiting": q.waiting,
        "longest_wait_ms": q.longest_wait_ms,
        "agents_ready": q.agents_ready,
        "agents_logged_in": q.agents_logged_in,
        "offered": q.offered,
        "answered": q.answered,
        "abandoned": q.abandoned,
        "required_skills": skills_json(&q.required_skills),
    })
}

pub fn caller_json(c: &Caller) -> Value {
    // Sorted, so the output is stable.
    let variables: BTreeMap<&String, &String> = c.variables.iter().collect();
    json!({
        "from_uri": c.from_uri,
        "number": c.number,
        "display_name": c.display_name,
        "did": c.did,
        "variables": variables,
    })
}

pub fn offer_json(o: &CallOffer) -> Value {
    json!({
        "call_id": o.call_id,
        "queue_id": o.queue_id,
        "caller": o.caller.as_ref().map(caller_json).unwrap_or(Value::Null),
        "waited_ms": o.waited_ms,
        "priority": o.priority,
        "skills": o.skills,
    })
}

/// `{"seq": n, "kind": "offer", "offer": {...}}`; the kind names the oneof
/// member, which is also the key of its payload.
pub fn event_json(e: &AgentEvent) -> Value {
    let (kind, payload) = match &e.kind {
        Some(Kind::Status(s)) => ("status", agent_json(s)),
        Some(Kind::Offer(o)) => ("offer", offer_json(o)),
        Some(Kind::Connected(c)) => ("connected", json!({ "call_id": c.call_id })),
        Some(Kind::Finished(f)) => (
            "finished",
            json!({ "call_id": f.call_id, "reason": f.reason }),
        ),
        None => return json!({ "seq": e.seq, "kind": Value::Null }),
    };
    let mut obj = json!({ "seq": e.seq, "kind": kind });
    obj[kind] = payload;
    obj
}

/// The digest as the server spells it (older servers: from the number).
fn digest_hex(d: &DistributorStatus) -> String {
    if d.state_digest_hex.is_empty() {
        format!("{:016x}", d.state_digest)
    } else {
        d.state_digest_hex.clone()
    }
}

pub fn distributor_json(d: &DistributorStatus) -> Value {
    json!({
        "role": d.role,
        "term": d.term,
        "last_seq": d.last_seq,
        "state_digest": d.state_digest,
        "state_digest_hex": digest_hex(d),
        "config_version": d.config_version,
        "following": d.following,
        "calls_waiting": d.calls_waiting,
        "agents_logged_in": d.agents_logged_in,
        "replication_lag": d.replication_lag,
        "followers": d.followers,
        "leader": d.leader,
    })
}

pub fn edge_json(e: &EdgeStatus) -> Value {
    json!({
        "active_calls": e.active_calls,
        "registrations": e.registrations,
        "sip_transactions": e.sip_transactions,
        "distributor_connected": e.distributor_connected,
    })
}

pub fn status_json(s: &StatusResponse) -> Value {
    json!({
        "roles": s.roles,
        "version": s.version,
        "draining": s.draining,
        "distributor": s.distributor.as_ref().map(distributor_json).unwrap_or(Value::Null),
        "edge": s.edge.as_ref().map(edge_json).unwrap_or(Value::Null),
    })
}

pub fn drain_json(d: &DrainResponse) -> Value {
    json!({ "active_calls": d.active_calls })
}

// ---------------------------------------------------------------- human

/// Columns separated by two spaces, padded to the widest cell; the last
/// column is not padded.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i + 1 < n {
                s.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                s.push_str(cell);
            }
        }
        s.trim_end().to_string()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn skills_text(skills: &[Skill]) -> String {
    skills
        .iter()
        .map(|s| format!("{}:{}", s.id, s.level))
        .collect::<Vec<_>>()
        .join(",")
}

/// `alice  READY  ext=1001 call=acd-1 reason=break skills=sales:5`
pub fn agent_line(a: &AgentStatus) -> String {
    let mut s = format!("{}  {}", a.agent_id, state_name(a.state));
    let mut extra = Vec::new();
    if !a.extension.is_empty() {
        extra.push(format!("ext={}", a.extension));
    }
    if !a.name.is_empty() && a.name != a.agent_id {
        extra.push(format!("name={:?}", a.name));
    }
    if !a.call_id.is_empty() {
        extra.push(format!("call={}", a.call_id));
    }
    if !a.reason.is_empty() {
        extra.push(format!("reason={}", a.reason));
    }
    if a.wrap_up_until_ms != 0 {
        extra.push(format!("wrap_up_until_ms={}", a.wrap_up_until_ms));
    }
    if !a.skills.is_empty() {
        extra.push(format!("skills={}", skills_text(&a.skills)));
    }
    if !extra.is_empty() {
        s.push_str("  ");
        s.push_str(&extra.join(" "));
    }
    s
}

pub fn agents_table(agents: &[AgentStatus]) -> String {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.agent_id.clone(),
                or_dash(&a.name),
                state_name(a.state),
                or_dash(&a.extension),
                or_dash(&a.call_id),
                or_dash(&a.reason),
                or_dash(&skills_text(&a.skills)),
            ]
        })
        .collect();
    table(
        &["AGENT", "NAME", "STATE", "EXT", "CALL", "REASON", "SKILLS"],
        &rows,
    )
}

pub fn queues_table(queues: &[QueueStatus]) -> String {
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            vec![
                q.queue_id.clone(),
                q.waiting.to_string(),
                format!("{}ms", q.longest_wait_ms),
                q.agents_ready.to_string(),
                q.agents_logged_in.to_string(),
                q.offered.to_string(),
                q.answered.to_string(),
                q.abandoned.to_string(),
                or_dash(&skills_text(&q.required_skills)),
            ]
        })
        .collect();
    table(
        &[
            "QUEUE",
            "WAITING",
            "LONGEST",
            "READY",
            "LOGGED_IN",
            "OFFERED",
            "ANSWERED",
            "ABANDONED",
            "SKILLS",
        ],
        &rows,
    )
}

/// One line per watch event.
pub fn event_line(e: &AgentEvent) -> String {
    match &e.kind {
        Some(Kind::Status(s)) => format!("STATUS {}", agent_line(s)),
        Some(Kind::Offer(o)) => {
            let c = o.caller.clone().unwrap_or_default();
            let mut s = format!(
                "OFFER call={} queue={} from={}",
                o.call_id,
                o.queue_id,
                or_dash(&c.from_uri)
            );
            if !c.display_name.is_empty() {
                s.push_str(&format!(" name={:?}", c.display_name));
            }
            s.push_str(&format!(
                " did={} waited={}ms",
                or_dash(&c.did),
                o.waited_ms
            ));
            if o.priority != 0 {
                s.push_str(&format!(" priority={}", o.priority));
            }
            s
        }
        Some(Kind::Connected(c)) => format!("CONNECTED call={}", c.call_id),
        Some(Kind::Finished(f)) => {
            format!("FINISHED call={} reason={}", f.call_id, or_dash(&f.reason))
        }
        None => format!("EVENT seq={}", e.seq),
    }
}

pub fn status_text(s: &StatusResponse) -> String {
    let mut rows = vec![
        vec!["version".to_string(), or_dash(&s.version)],
        vec!["roles".to_string(), or_dash(&s.roles.join(","))],
        vec!["draining".to_string(), s.draining.to_string()],
    ];
    if let Some(d) = &s.distributor {
        rows.push(vec!["distributor.role".into(), or_dash(&d.role)]);
        rows.push(vec!["distributor.term".into(), d.term.to_string()]);
        rows.push(vec!["distributor.last_seq".into(), d.last_seq.to_string()]);
        rows.push(vec!["distributor.state_digest".into(), digest_hex(d)]);
        rows.push(vec![
            "distributor.config_version".into(),
            d.config_version.to_string(),
        ]);
        rows.push(vec!["distributor.following".into(), or_dash(&d.following)]);
        rows.push(vec![
            "distributor.calls_waiting".into(),
            d.calls_waiting.to_string(),
        ]);
        rows.push(vec![
            "distributor.agents_logged_in".into(),
            d.agents_logged_in.to_string(),
        ]);
    }
    if let Some(e) = &s.edge {
        rows.push(vec!["edge.active_calls".into(), e.active_calls.to_string()]);
        rows.push(vec![
            "edge.registrations".into(),
            e.registrations.to_string(),
        ]);
        rows.push(vec![
            "edge.sip_transactions".into(),
            e.sip_transactions.to_string(),
        ]);
        rows.push(vec![
            "edge.distributor_connected".into(),
            e.distributor_connected.to_string(),
        ]);
    }
    // Key/value pairs: reuse the table alignment, without a header line.
    let t = table(&["", ""], &rows);
    t.split_once('\n')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

pub fn drain_text(d: &DrainResponse) -> String {
    format!("draining: {} active calls", d.active_calls)
}

#[cfg(test)]
mod tests {
    use super::*;
    use acd_proto::v1::{CallConnected, CallFinished};

    fn alice() -> AgentStatus {
        AgentStatus {
            agent_id: "alice".into(),
            name: "Alice".into(),
            state: AgentState::Ready as i32,
            extension: "1001".into(),
            skills: vec![Skill {
                id: "sales".into(),
                level: 5,
            }],
            ..Default::default()
        }
    }

    fn offer() -> CallOffer {
        CallOffer {
            call_id: "acd-1".into(),
            queue_id: "sales".into(),
            caller: Some(Caller {
                number: "bob".into(),
                from_uri: "sip:bob@example.com".into(),
                display_name: "Bob".into(),
                did: "5550100".into(),
                variables: [("lang".to_string(), "en".to_string())].into(),
            }),
            waited_ms: 1200,
            enqueued_at_ms: 0,
            ..Default::default()
        }
    }

    #[test]
    fn state_names_are_short() {
        assert_eq!(state_name(AgentState::Unspecified as i32), "UNSPECIFIED");
        assert_eq!(state_name(AgentState::LoggedOut as i32), "LOGGED_OUT");
        assert_eq!(state_name(AgentState::NotReady as i32), "NOT_READY");
        assert_eq!(state_name(AgentState::Ready as i32), "READY");
        assert_eq!(state_name(AgentState::Reserved as i32), "RESERVED");
        assert_eq!(state_name(AgentState::OnCall as i32), "ON_CALL");
        assert_eq!(state_name(AgentState::WrapUp as i32), "WRAP_UP");
        assert_eq!(state_name(42), "UNKNOWN(42)");
    }

    #[test]
    fn agent_json_shape() {
        let v = agent_json(&alice());
        assert_eq!(
            v,
            json!({
                "agent_id": "alice", "name": "Alice", "state": "READY", "extension": "1001",
                "reason": "", "call_id": "", "wrap_up_until_ms": 0,
                "skills": [{"id": "sales", "level": 5}],
            })
        );
    }

    #[test]
    fn queue_json_shape() {
        let q = QueueStatus {
            queue_id: "sales".into(),
            skills: String::new(),
            strategy: String::new(),
            offering: 0,
            overflowed: 0,
            timed_out: 0,
            service_level_permille: 0,
            target_percent: 0,
            target_secs: 0,
            open: false,
            waiting: 2,
            longest_wait_ms: 3400,
            agents_ready: 1,
            agents_logged_in: 3,
            offered: 10,
            answered: 7,
            abandoned: 1,
            required_skills: vec![Skill {
                id: "sales".into(),
                level: 1,
            }],
        };
        assert_eq!(
            queue_json(&q),
            json!({
                "queue_id": "sales", "waiting": 2, "longest_wait_ms": 3400, "agents_ready": 1,
                "agents_logged_in": 3, "offered": 10, "answered": 7, "abandoned": 1,
                "required_skills": [{"id": "sales", "level": 1}],
            })
        );
    }

    #[test]
    fn event_json_shapes() {
        let ev = |seq, kind| AgentEvent {
            seq,
            kind: Some(kind),
        };
        assert_eq!(
            event_json(&ev(1, Kind::Offer(offer()))),
            json!({
                "seq": 1, "kind": "offer",
                "offer": {
                    "call_id": "acd-1", "queue_id": "sales", "waited_ms": 1200,
                    "priority": 0, "skills": {},
                    "caller": {"from_uri": "sip:bob@example.com", "number": "bob",
                               "display_name": "Bob", "did": "5550100",
                               "variables": {"lang": "en"}},
                },
            })
        );
        let s = event_json(&ev(2, Kind::Status(alice())));
        assert_eq!(s["kind"], "status");
        assert_eq!(s["status"]["state"], "READY");
        assert_eq!(
            event_json(&ev(
                3,
                Kind::Connected(CallConnected {
                    call_id: "acd-1".into()
                })
            )),
            json!({"seq": 3, "kind": "connected", "connected": {"call_id": "acd-1"}})
        );
        assert_eq!(
            event_json(&ev(
                4,
                Kind::Finished(CallFinished {
                    call_id: "acd-1".into(),
                    reason: "bye".into(),
                    ..Default::default()
                })
            )),
            json!({"seq": 4, "kind": "finished", "finished": {"call_id": "acd-1", "reason": "bye"}})
        );
        assert_eq!(
            event_json(&AgentEvent { seq: 5, kind: None }),
            json!({"seq": 5, "kind": null})
        );
        // One object per line: the rendering never contains a newline.
        assert!(!event_json(&ev(1, Kind::Offer(offer())))
            .to_string()
            .contains('\n'));
    }

    #[test]
    fn status_and_drain_json_shapes() {
        let s = StatusResponse {
            roles: vec!["edge".into(), "distributor".into()],
            version: "0.1.0".into(),
            distributor: Some(DistributorStatus {
                role: "primary".into(),
                term: 3,
                last_seq: 42,
                state_digest: 7,
                following: "".into(),
                calls_waiting: 1,
                agents_logged_in: 2,
                ..Default::default()
            }),
            edge: None,
            draining: false,
            ..Default::default()
        };
        assert_eq!(
            status_json(&s),
            json!({
                "roles": ["edge", "distributor"], "version": "0.1.0", "draining": false,
                "distributor": {"role": "primary", "term": 3, "last_seq": 42, "state_digest": 7,
                                "state_digest_hex": "0000000000000007", "config_version": 0,
                                "following": "", "calls_waiting": 1, "agents_logged_in": 2,
                                "replication_lag": 0, "followers": 0, "leader": ""},
                "edge": null,
            })
        );
        let e = edge_json(&EdgeStatus {
            active_calls: 1,
            registrations: 2,
            sip_transactions: 3,
            distributor_connected: true,
        });
        assert_eq!(
            e,
            json!({"active_calls": 1, "registrations": 2, "sip_transactions": 3, "distributor_connected": true})
        );
        assert_eq!(
            drain_json(&DrainResponse { active_calls: 4 }),
            json!({"active_calls": 4})
        );
    }

    #[test]
    fn human_lines() {
        assert_eq!(
            agent_line(&alice()),
            "alice  READY  ext=1001 name=\"Alice\" skills=sales:5"
        );
        let bare = AgentStatus {
            agent_id: "bob".into(),
            state: AgentState::LoggedOut as i32,
            ..Default::default()
        };
        assert_eq!(agent_line(&bare), "bob  LOGGED_OUT");
        assert_eq!(
            event_line(&AgentEvent { seq: 1, kind: Some(Kind::Offer(offer())) }),
            "OFFER call=acd-1 queue=sales from=sip:bob@example.com name=\"Bob\" did=5550100 waited=1200ms"
        );
        assert_eq!(
            event_line(&AgentEvent {
                seq: 2,
                kind: Some(Kind::Status(bare))
            }),
            "STATUS bob  LOGGED_OUT"
        );
        assert_eq!(
            drain_text(&DrainResponse { active_calls: 2 }),
            "draining: 2 active calls"
        );
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz    w");
        let a = agents_table(&[alice()]);
        let lines: Vec<&str> = a.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("AGENT  NAME   STATE"));
        assert!(lines[1].starts_with("alice  Alice  READY"));
        let st = status_text(&StatusResponse {
            version: "1".into(),
            ..Default::default()
        });
        assert_eq!(st.lines().next(), Some("version   1"));
    }

    #[test]
    fn code_names() {
        assert_eq!(code_name(tonic::Code::NotFound), "NOT_FOUND");
        assert_eq!(
            code_name(tonic::Code::FailedPrecondition),
            "FAILED_PRECONDITION"
        );
    }
}
