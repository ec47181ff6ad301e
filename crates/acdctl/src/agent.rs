//! `acdctl agent ...`: AgentService calls, on the leader.

use acd_proto::client::AuthChannel;
use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::{
    transfer_request, AgentEvent, AgentStatus, EndWrapUpRequest, GetAgentRequest,
    ListAgentsRequest, ListReasonsRequest, LoginRequest, LogoutRequest, OfferRequest,
    SetNotReadyRequest, SetReadyRequest, TransferRequest, WatchRequest,
};
use anyhow::Result;
use tonic::Streaming;

use crate::output::{self, emit};
use crate::servers::{backoff, Servers};
use crate::{request, AgentCmd};

fn print_agent(a: &AgentStatus, json: bool) -> Result<()> {
    Ok(emit(
        json,
        || output::agent_line(a),
        || output::agent_json(a),
    )?)
}

fn client(channel: AuthChannel) -> AgentServiceClient<AuthChannel> {
    AgentServiceClient::new(channel)
}

pub async fn run(servers: &mut Servers, cmd: AgentCmd, json: bool) -> Result<()> {
    let status = match cmd {
        AgentCmd::Login { agent, extension } => {
            let req = LoginRequest {
                agent_id: agent,
                extension,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).login(request(req)).await }
                })
                .await?
        }
        AgentCmd::Ready { agent } => {
            let req = SetReadyRequest { agent_id: agent };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).set_ready(request(req)).await }
                })
                .await?
        }
        AgentCmd::NotReady { agent, reason } => {
            let req = SetNotReadyRequest {
                agent_id: agent,
                reason,
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).set_not_ready(request(req)).await }
                })
                .await?
        }
        AgentCmd::Logout { agent } => {
            let req = LogoutRequest { agent_id: agent };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).logout(request(req)).await }
                })
                .await?
        }
        AgentCmd::Show { agent } => {
            let req = GetAgentRequest { agent_id: agent };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).get_agent(request(req)).await }
                })
                .await?
        }
        AgentCmd::List => {
            let agents = servers
                .call(
                    |ch| async move { client(ch).list_agents(request(ListAgentsRequest {})).await },
                )
                .await?
                .into_inner()
                .agents;
            if json {
                for a in &agents {
                    output::print(&output::agent_json(a).to_string())?;
                }
            } else {
                output::print(&output::agents_table(&agents))?;
            }
            return Ok(());
        }
        AgentCmd::Watch { agent, count } => return watch(servers, agent, count, json).await,
        AgentCmd::Console { agent, extension } => {
            return crate::console::run(servers, &agent, &extension).await
        }
        AgentCmd::Accept { agent, call } => {
            let req = OfferRequest {
                agent_id: agent,
                call_id: call,
            };
            offer(servers, req, true).await?
        }
        AgentCmd::Reject { agent, call } => {
            let req = OfferRequest {
                agent_id: agent,
                call_id: call,
            };
            offer(servers, req, false).await?
        }
        AgentCmd::Wrapup { agent, reason } => {
            let req = EndWrapUpRequest {
                agent_id: agent,
                not_ready_reason: reason.unwrap_or_default(),
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).end_wrap_up(request(req)).await }
                })
                .await?
        }
        AgentCmd::Transfer {
            agent,
            call,
            queue,
            to_agent,
        } => {
            let target = match (queue, to_agent) {
                (Some(q), _) => transfer_request::Target::QueueId(q),
                (None, Some(a)) => transfer_request::Target::ToAgentId(a),
                (None, None) => anyhow::bail!("give --queue or --to-agent"),
            };
            let req = TransferRequest {
                agent_id: agent,
                call_id: call,
                target: Some(target),
            };
            servers
                .call(|ch| {
                    let req = req.clone();
                    async move { client(ch).transfer(request(req)).await }
                })
                .await?
        }
        AgentCmd::Reasons => {
            let reasons = servers
                .call(|ch| async move {
                    client(ch)
                        .list_reasons(request(ListReasonsRequest {}))
                        .await
                })
                .await?
                .into_inner()
                .reasons;
            for r in &reasons {
                let line = if json {
                    serde_json::json!({ "reason": r }).to_string()
                } else {
                    r.clone()
                };
                output::print(&line)?;
            }
            return Ok(());
        }
    };
    print_agent(&status.into_inner(), json)
}

/// Accepts (`true`) or rejects an offer.
async fn offer(
    servers: &mut Servers,
    req: OfferRequest,
    accept: bool,
) -> Result<tonic::Response<AgentStatus>> {
    servers
        .call(|ch| {
            let req = request(req.clone());
            async move {
                match accept {
                    true => client(ch).accept_offer(req).await,
                    false => client(ch).reject_offer(req).await,
                }
            }
        })
        .await
}

/// Prints one line per event until `count` events or Ctrl-C. A broken
/// stream (a distributor restarting, a fail-over) is re-attached on the
/// leader, resuming after the last event seen, so each event prints once.
async fn watch(servers: &mut Servers, agent: String, count: Option<u64>, json: bool) -> Result<()> {
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut seen = 0u64;
    let mut after_seq = 0u64;
    let mut attempt = 0u32;
    while count.is_none_or(|n| seen < n) {
        let attach = open_watch(servers, &agent, after_seq);
        let mut stream = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            s = attach => match s {
                Ok(s) => s,
                // Nothing seen yet: a plain error (unknown agent, no server).
                Err(e) if after_seq == 0 => return Err(e),
                Err(e) => {
                    eprintln!("acdctl: watch: {e:#}; retrying");
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
            },
        };
        attempt = 0;
        while count.is_none_or(|n| seen < n) {
            let event = tokio::select! {
                _ = &mut ctrl_c => return Ok(()),
                msg = stream.message() => match msg {
                    Ok(Some(event)) => event,
                    // Ended or broken: attach again after what was printed.
                    Ok(None) | Err(_) => break,
                },
            };
            after_seq = after_seq.max(event.seq);
            emit(
                json,
                || output::event_line(&event),
                || output::event_json(&event),
            )?;
            seen += 1;
        }
    }
    Ok(())
}

pub(crate) async fn open_watch(
    servers: &mut Servers,
    agent: &str,
    after_seq: u64,
) -> Result<Streaming<AgentEvent>> {
    let req = WatchRequest {
        agent_id: agent.to_string(),
        after_seq,
    };
    let resp = servers
        .call(|ch| {
            let req = req.clone();
            async move { client(ch).watch(req).await }
        })
        .await?;
    Ok(resp.into_inner())
}
