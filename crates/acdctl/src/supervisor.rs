//! `acdctl supervisor ...`: SupervisorService calls, on the leader.

use acd_proto::client::AuthChannel;
use acd_proto::v1::supervisor_service_client::SupervisorServiceClient;
use acd_proto::v1::{
    AgentState, ApplyConfigRequest, CallStatus, ConfigChange, ForceStateRequest, ListCallsRequest,
    RemoveAgentRequest, RemoveQueueRequest, UpsertAgentRequest, UpsertQueueRequest,
    WatchAgentsRequest, WatchQueuesRequest,
};
use anyhow::{anyhow, bail, Context, Result};
use clap::Subcommand;
use serde_json::json;

use crate::output::{self, emit};
use crate::request;
use crate::servers::Servers;

#[derive(Subcommand, Debug)]
pub enum SupervisorCmd {
    /// Every queue's status; with --watch, again at every change.
    Queues {
        #[arg(long)]
        watch: bool,
        /// Fastest refresh with --watch.
        #[arg(long, default_value = "200", value_name = "MS")]
        interval_ms: u32,
    },
    /// Every agent's status; with --watch, then each change.
    Agents {
        #[arg(long)]
        watch: bool,
    },
    /// Force an agent READY, NOT_READY (with a reason) or logged out.
    Force {
        agent: String,
        /// ready | not-ready | logout
        state: String,
        reason: Option<String>,
    },
    /// Add or change an agent (name, skills, auto-answer).
    AgentSet {
        agent: String,
        #[arg(long, default_value = "")]
        name: String,
        /// `skill=level`, repeated.
        #[arg(long = "skill", value_name = "SKILL=LEVEL")]
        skills: Vec<String>,
        #[arg(long)]
        auto_answer: bool,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove an agent.
    AgentRm {
        agent: String,
        #[arg(long)]
        dry_run: bool,
    },
    /// Add or change a queue from a TOML file holding one `[[queues]]` table's keys.
    QueueSet {
        #[arg(long, value_name = "FILE")]
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
    },
    /// Remove a queue; its waiting calls move to `--move-to`.
    QueueRm {
        queue: String,
        #[arg(long, value_name = "QUEUE")]
        move_to: Option<String>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Replace the routing configuration with a config file's (admin).
    Apply {
        file: std::path::PathBuf,
        #[arg(long)]
        dry_run: bool,
        /// Calls in queues the file drops move here.
        #[arg(long, value_name = "QUEUE")]
        move_to: Option<String>,
    },
    /// The calls the distributor holds.
    Calls {
        #[arg(long)]
        queue: Option<String>,
    },
}

fn client(ch: AuthChannel) -> SupervisorServiceClient<AuthChannel> {
    SupervisorServiceClient::new(ch)
}

pub async fn run(servers: &mut Servers, cmd: SupervisorCmd, json: bool) -> Result<()> {
    let change = match cmd {
        SupervisorCmd::Queues { watch, interval_ms } => {
            return queues(servers, watch, interval_ms, json).await
        }
        SupervisorCmd::Agents { watch } => return agents(servers, watch, json).await,
        SupervisorCmd::Calls { queue } => {
            return calls(servers, queue.unwrap_or_default(), json).await
        }
        SupervisorCmd::Force {
            agent,
            state,
            reason,
        } => {
            let state = match state.as_str() {
                "ready" => AgentState::Ready,
                "not-ready" | "not_ready" => AgentState::NotReady,
                "logout" | "logged-out" => AgentState::LoggedOut,
                other => bail!("state `{other}`: give ready, not-ready or logout"),
            };
            let req = ForceStateRequest {
                agent_id: agent,
                state: state as i32,
                reason: reason.unwrap_or_default(),
            };
            let a = servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).force_state(request(req)).await }
                })
                .await?
                .into_inner();
            return Ok(emit(
                json,
                || output::agent_line(&a),
                || output::agent_json(&a),
            )?);
        }
        SupervisorCmd::AgentSet {
            agent,
            name,
            skills,
            auto_answer,
            dry_run,
        } => {
            let req = UpsertAgentRequest {
                agent_id: agent,
                name,
                skills: parse_skills(&skills)?,
                auto_answer,
                dry_run,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).upsert_agent(request(req)).await }
                })
                .await?
        }
        SupervisorCmd::AgentRm { agent, dry_run } => {
            let req = RemoveAgentRequest {
                agent_id: agent,
                dry_run,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).remove_agent(request(req)).await }
                })
                .await?
        }
        SupervisorCmd::QueueSet { file, dry_run } => {
            let req = UpsertQueueRequest {
                toml: read(&file)?,
                dry_run,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).upsert_queue(request(req)).await }
                })
                .await?
        }
        SupervisorCmd::QueueRm {
            queue,
            move_to,
            dry_run,
        } => {
            let req = RemoveQueueRequest {
                queue_id: queue,
                move_calls_to: move_to.unwrap_or_default(),
                dry_run,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).remove_queue(request(req)).await }
                })
                .await?
        }
        SupervisorCmd::Apply {
            file,
            dry_run,
            move_to,
        } => {
            let req = ApplyConfigRequest {
                toml: read(&file)?,
                dry_run,
                move_calls_to: move_to.unwrap_or_default(),
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).apply_config(request(req)).await }
                })
                .await?
        }
    };
    print_change(&change.into_inner(), json)
}

fn read(file: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// `sales=5` pairs.
fn parse_skills(pairs: &[String]) -> Result<std::collections::HashMap<String, u32>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("--skill {p}: give SKILL=LEVEL"))?;
            let level = v
                .trim()
                .parse::<u32>()
                .map_err(|_| anyhow!("--skill {p}: the level is not a number"))?;
            Ok((k.trim().to_string(), level))
        })
        .collect()
}

fn print_change(c: &ConfigChange, json: bool) -> Result<()> {
    if json {
        let v = json!({
            "applied": c.applied,
            "version": c.version,
            "diff": c.diff,
            "calls_affected": c.calls_affected,
        });
        return Ok(output::print(&v.to_string())?);
    }
    let mut text = c.diff.join("\n");
    if c.diff.is_empty() {
        text.push_str("no change");
    }
    text.push('\n');
    text.push_str(&match c.applied {
        true => format!(
            "applied: configuration version {} ({} waiting calls affected)",
            c.version, c.calls_affected
        ),
        false => format!(
            "dry run: nothing applied ({} waiting calls would be affected)",
            c.calls_affected
        ),
    });
    Ok(output::print(&text)?)
}

async fn queues(servers: &mut Servers, watch: bool, interval_ms: u32, json: bool) -> Result<()> {
    let req = WatchQueuesRequest {
        min_interval_ms: interval_ms,
    };
    let mut stream = servers
        .call(|ch| async move { client(ch).watch_queues(req).await })
        .await?
        .into_inner();
    while let Some(board) = stream.message().await? {
        if json {
            for q in &board.queues {
                output::print(&output::queue_json(q).to_string())?;
            }
        } else {
            output::print(&output::queues_table(&board.queues))?;
        }
        if !watch {
            break;
        }
    }
    Ok(())
}

async fn agents(servers: &mut Servers, watch: bool, json: bool) -> Result<()> {
    let mut stream = servers
        .call(|ch| async move { client(ch).watch_agents(WatchAgentsRequest {}).await })
        .await?
        .into_inner();
    if !watch {
        // Without --watch: the first list only (as many as ListAgents has).
        let total = servers
            .call(|ch| async move {
                acd_proto::v1::agent_service_client::AgentServiceClient::new(ch)
                    .list_agents(request(acd_proto::v1::ListAgentsRequest {}))
                    .await
            })
            .await?
            .into_inner()
            .agents
            .len();
        let mut first = Vec::with_capacity(total);
        while first.len() < total {
            match stream.message().await? {
                Some(a) => first.push(a),
                None => break,
            }
        }
        return print_agents(&first, json);
    }
    while let Some(a) = stream.message().await? {
        emit(json, || output::agent_line(&a), || output::agent_json(&a))?;
    }
    Ok(())
}

fn print_agents(agents: &[acd_proto::v1::AgentStatus], json: bool) -> Result<()> {
    if json {
        for a in agents {
            output::print(&output::agent_json(a).to_string())?;
        }
        return Ok(());
    }
    Ok(output::print(&output::agents_table(agents))?)
}

async fn calls(servers: &mut Servers, queue: String, json: bool) -> Result<()> {
    let req = ListCallsRequest { queue_id: queue };
    let calls = servers
        .call(|ch| {
            let req = req.clone();
            async move { client(ch).list_calls(request(req)).await }
        })
        .await?
        .into_inner()
        .calls;
    if json {
        for c in &calls {
            output::print(&call_json(c).to_string())?;
        }
        return Ok(());
    }
    let rows: Vec<Vec<String>> = calls
        .iter()
        .map(|c| {
            vec![
                c.call_id.clone(),
                c.queue_id.clone(),
                c.phase.clone(),
                if c.position > 0 {
                    c.position.to_string()
                } else {
                    "-".into()
                },
                format!("{:.1}", c.waited_ms as f64 / 1000.0),
                c.priority.to_string(),
                output::or_dash(&c.agent_id),
                c.caller
                    .as_ref()
                    .map(|x| output::or_dash(&x.number))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let headers = [
        "CALL", "QUEUE", "PHASE", "POS", "WAITED_S", "PRIO", "AGENT", "CALLER",
    ];
    Ok(output::print(&output::table(&headers, &rows))?)
}

fn call_json(c: &CallStatus) -> serde_json::Value {
    json!({
        "call_id": c.call_id,
        "queue_id": c.queue_id,
        "phase": c.phase,
        "position": c.position,
        "waited_ms": c.waited_ms,
        "priority": c.priority,
        "agent_id": c.agent_id,
        "relax_step": c.relax_step,
        "callback": c.callback,
        "caller": c.caller.as_ref().map(output::caller_json),
    })
}
