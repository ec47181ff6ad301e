//! `acdctl queue list`.

use acd_proto::v1::agent_service_client::AgentServiceClient;
use acd_proto::v1::ListQueuesRequest;
use anyhow::Result;
use tonic::transport::Channel;

use crate::output;
use crate::request;

/// A table, or one JSON object per queue.
pub async fn list(channel: Channel, json: bool) -> Result<()> {
    let mut client = AgentServiceClient::new(channel);
    let queues = client
        .list_queues(request(ListQueuesRequest {}))
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
