//! A flow's transfer target named by host name: the core only dials
//! addresses, so the step's task resolves the name first (off the edge
//! loop, bounded in time) and writes the address into the URI.

use std::net::IpAddr;
use std::time::Duration;

use acd_proto::v1 as pb;
use acd_sip::message::{uri_host, uri_port};

/// Longest a transfer target's name lookup may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// Resolves the host of every `Transfer` in `resp` that is a name. A name
/// that does not resolve is left as it is: the core then fails the transfer.
pub async fn resolve(resp: &mut pb::StepResponse) {
    for action in &mut resp.actions {
        if let Some(pb::ivr_action::Kind::Transfer(t)) = &mut action.kind {
            if let Some(uri) = resolved_uri(&t.uri).await {
                t.uri = uri;
            }
        }
    }
}

async fn resolved_uri(uri: &str) -> Option<String> {
    let host = uri_host(uri)?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        return None;
    }
    let port = uri_port(uri).unwrap_or(5060);
    let lookup = tokio::net::lookup_host((bare, port));
    let ip = match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
        Ok(Ok(mut addrs)) => addrs.next()?.ip(),
        Ok(Err(e)) => {
            tracing::warn!(%uri, error = %e, "transfer target does not resolve");
            metrics::counter!("acd_edge_transfers_total", "outcome" => "unresolved").increment(1);
            return None;
        }
        Err(_) => {
            metrics::counter!("acd_edge_transfers_total", "outcome" => "resolve_timeout")
                .increment(1);
            return None;
        }
    };
    // `host` borrows from `uri`: replace exactly that span.
    let start = host.as_ptr() as usize - uri.as_ptr() as usize;
    let ip = match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    Some(format!(
        "{}{ip}{}",
        &uri[..start],
        &uri[start + host.len()..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_becomes_its_address_and_an_address_stays() {
        let got = resolved_uri("sip:night@localhost:5070;transport=udp").await;
        assert_eq!(
            got.as_deref(),
            Some("sip:night@127.0.0.1:5070;transport=udp")
        );
        assert_eq!(resolved_uri("sip:night@10.0.0.9:5070").await, None);
        assert_eq!(resolved_uri("sip:night@nowhere.invalid").await, None);
    }
}
