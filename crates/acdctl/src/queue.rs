//! `acdctl queue list`.

use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::ListQueuesRequest;
use anyhow::Result;

use crate::output;
use crate::request;
use crate::servers::Servers;

/// A table, or one JSON object per queue.
pub async fn list(servers: &mut Servers, json: bool) -> Result<()> {
    let queues = servers
        .call(|ch| async move {
            AgentServiceClient::new(ch)
                .list_queues(request(ListQueuesRequest {}))
                .await
        })
        .await?
        .into_inner()
        .queues;
    if json {
        for q in &queues {
            output::print(&output::queue_json(q).to_string())?;
        }
    } else {
        output::print(&output::queues_table(&queues))?;
    }
    Ok(())
}
