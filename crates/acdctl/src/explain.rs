//! `acdctl explain <call_id>`: the recorded reasoning of every routing decision
//! made for a call (SupervisorService.Explain).

use std::fmt::Write as _;

use acd_proto::v1::supervisor_service_client::SupervisorServiceClient;
use acd_proto::v1::{Decision, ExplainRequest, ExplainResponse, Scored};
use anyhow::Result;
use serde_json::json;

use crate::output;
use crate::request;
use crate::servers::Servers;

/// Prints each decision (one JSON object per decision with `--json`).
pub async fn run(servers: &mut Servers, call_id: &str, json: bool) -> Result<()> {
    let call_id = call_id.to_string();
    let resp = servers
        .call(|ch| {
            let call_id = call_id.clone();
            async move {
                SupervisorServiceClient::new(ch)
                    .explain(request(ExplainRequest { call_id }))
                    .await
            }
        })
        .await?
        .into_inner();
    if json {
        for d in &resp.decisions {
            output::print(&decision_json(&resp.call_id, d).to_string())?;
        }
    } else {
        output::print(&text(&resp))?;
    }
    Ok(())
}

fn scored_json(s: &[Scored]) -> serde_json::Value {
    s.iter()
        .map(|s| json!({ "id": s.id, "score": s.score }))
        .collect()
}

pub fn decision_json(call_id: &str, d: &Decision) -> serde_json::Value {
    json!({
        "call_id": call_id,
        "seq": d.seq,
        "at_ms": d.at_ms,
        "kind": d.kind,
        "agent_id": d.agent_id,
        "queue_id": d.queue_id,
        "strategy": d.strategy,
        "relax_step": d.relax_step,
        "skills": d.skills,
        "effective_priority": d.effective_priority,
        "candidates": scored_json(&d.candidates),
        "other_calls": scored_json(&d.other_calls),
        "note": d.note,
    })
}

/// `HH:MM:SS.mmm` UTC of a Unix time in milliseconds.
fn clock(at_ms: u64) -> String {
    let ms = at_ms % 1000;
    let s = at_ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{ms:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60
    )
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// One block per decision: what, who, why, and who else was in the running.
pub fn text(resp: &ExplainResponse) -> String {
    let mut out = format!("call {}", resp.call_id);
    if resp.decisions.is_empty() {
        out.push_str(": no routing decisions recorded");
        return out;
    }
    for d in &resp.decisions {
        let _ = write!(
            out,
            "\n{} #{} {} agent={} queue={} strategy={} relax_step={} skills={} priority={}",
            clock(d.at_ms),
            d.seq,
            d.kind,
            or_dash(&d.agent_id),
            or_dash(&d.queue_id),
            or_dash(&d.strategy),
            d.relax_step,
            or_dash(&d.skills),
            d.effective_priority
        );
        for (i, c) in d.candidates.iter().enumerate() {
            let mark = if c.id == d.agent_id { "*" } else { " " };
            let _ = write!(
                out,
                "\n  {mark} candidate {}. {} ({})",
                i + 1,
                c.id,
                c.score
            );
        }
        for c in &d.other_calls {
            let _ = write!(out, "\n    lost: call {} ({})", c.id, c.score);
        }
        if !d.note.is_empty() {
            let _ = write!(out, "\n    note: {}", d.note);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_render_with_winner_and_losers() {
        let resp = ExplainResponse {
            call_id: "c1".into(),
            decisions: vec![Decision {
                seq: 7,
                at_ms: 3_600_000 + 61_250,
                kind: "offered".into(),
                agent_id: "alice".into(),
                queue_id: "sales".into(),
                strategy: "longest_idle".into(),
                relax_step: 1,
                skills: "sales >= 1".into(),
                effective_priority: 3,
                candidates: vec![
                    Scored {
                        id: "alice".into(),
                        score: "idle 42 s".into(),
                    },
                    Scored {
                        id: "bob".into(),
                        score: "idle 3 s".into(),
                    },
                ],
                other_calls: vec![Scored {
                    id: "c2".into(),
                    score: "lower priority".into(),
                }],
                note: String::new(),
            }],
        };
        let t = text(&resp);
        assert!(t.contains("01:01:01.250 #7 offered agent=alice queue=sales strategy=longest_idle relax_step=1"), "{t}");
        assert!(t.contains("* candidate 1. alice (idle 42 s)"), "{t}");
        assert!(t.contains("  candidate 2. bob"), "{t}");
        assert!(t.contains("lost: call c2 (lower priority)"), "{t}");
        let j = decision_json("c1", &resp.decisions[0]);
        assert_eq!(j["candidates"][1]["id"], "bob");
        assert_eq!(j["agent_id"], "alice");
        let none = ExplainResponse {
            call_id: "c9".into(),
            decisions: vec![],
        };
        assert_eq!(text(&none), "call c9: no routing decisions recorded");
    }
}
