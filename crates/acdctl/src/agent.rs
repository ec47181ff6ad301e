//! `acdctl agent ...`: AgentService calls.

use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::{
    AgentStatus, GetAgentRequest, ListAgentsRequest, LoginRequest, LogoutRequest,
    SetNotReadyRequest, SetReadyRequest, WatchRequest,
};
use anyhow::Result;
use tonic::transport::Channel;

use crate::output::{self, emit};
use crate::{request, AgentCmd};

fn print_agent(a: &AgentStatus, json: bool) -> Result<()> {
    Ok(emit(
        json,
        || output::agent_line(a),
        || output::agent_json(a),
    )?)
}

pub async fn run(channel: Channel, cmd: AgentCmd, json: bool) -> Result<()> {
    let mut client = AgentServiceClient::new(channel);
    let status = match cmd {
        AgentCmd::Login { agent, extension } => {
            client
                .login(request(LoginRequest {
                    agent_id: agent,
                    extension,
                }))
                .await?
        }
        AgentCmd::Ready { agent } => {
            client
                .set_ready(request(SetReadyRequest { agent_id: agent }))
                .await?
        }
        AgentCmd::NotReady { agent, reason } => {
            client
                .set_not_ready(request(SetNotReadyRequest {
                    agent_id: agent,
                    reason,
                }))
                .await?
        }
        AgentCmd::Logout { agent } => {
            client
                .logout(request(LogoutRequest { agent_id: agent }))
                .await?
        }
        AgentCmd::Show { agent } => {
            client
                .get_agent(request(GetAgentRequest { agent_id: agent }))
                .await?
        }
        AgentCmd::List => {
            let agents = client
                .list_agents(request(ListAgentsRequest {}))
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
        AgentCmd::Watch { agent, count } => return watch(client, agent, count, json).await,
    };
    print_agent(&status.into_inner(), json)
}

/// Prints one line per event until `count` events, the end of the stream,
/// or Ctrl-C.
async fn watch(
    mut client: AgentServiceClient<Channel>,
    agent: String,
    count: Option<u64>,
    json: bool,
) -> Result<()> {
    let mut stream = client
        .watch(WatchRequest {
            agent_id: agent,
            after_seq: 0,
        })
        .await?
        .into_inner();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut seen = 0u64;
    while count.is_none_or(|n| seen < n) {
        let event = tokio::select! {
            _ = &mut ctrl_c => break,
            msg = stream.message() => match msg? {
                Some(event) => event,
                None => break,
            },
        };
        emit(
            json,
            || output::event_line(&event),
            || output::event_json(&event),
        )?;
        seen += 1;
    }
    Ok(())
}
