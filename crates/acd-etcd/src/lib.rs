//! A thin etcd v3 client: what a distributor pair needs for leadership and
//! no more — lease grant, keep-alive and revoke; election campaign, observe,
//! leader and resign.
//!
//! The generated code comes from the etcd protos vendored under `proto/`
//! (see NOTICE), compiled by `protox` at build time, so no system `protoc`.
//! Every error names the endpoint it came from.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};
use tonic::Streaming;

/// Generated etcd types, one module per proto package.
#[allow(clippy::all, missing_docs, rustdoc::all)]
pub mod pb {
    pub mod etcdserverpb {
        tonic::include_proto!("etcdserverpb");
    }
    pub mod mvccpb {
        tonic::include_proto!("mvccpb");
    }
    pub mod authpb {
        tonic::include_proto!("authpb");
    }
    pub mod v3electionpb {
        tonic::include_proto!("v3electionpb");
    }
    pub mod google {
        pub mod api {
            tonic::include_proto!("google.api");
        }
    }
    pub mod grpc {
        pub mod gateway {
            pub mod protoc_gen_openapiv2 {
                pub mod options {
                    tonic::include_proto!("grpc.gateway.protoc_gen_openapiv2.options");
                }
            }
        }
    }
}

use pb::etcdserverpb::lease_client::LeaseClient;
use pb::etcdserverpb::{LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest};
use pb::v3electionpb::election_client::ElectionClient;
use pb::v3electionpb::{CampaignRequest, LeaderRequest, ResignRequest};

pub use pb::v3electionpb::LeaderKey;

/// How long connecting to one endpoint may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Bound on a unary request (campaign and observe excepted: they wait by design).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("etcd: no endpoint given")]
    NoEndpoint,
    #[error("etcd at {endpoint}: bad URL: {reason}")]
    BadUrl { endpoint: String, reason: String },
    #[error("etcd at {endpoint}: cannot connect: {reason}")]
    Connect { endpoint: String, reason: String },
    #[error("etcd at {endpoint}: {op} failed: {status}")]
    Rpc {
        endpoint: String,
        op: &'static str,
        status: tonic::Status,
    },
    #[error("etcd at {endpoint}: {op} timed out")]
    Timeout { endpoint: String, op: &'static str },
    #[error("etcd at {endpoint}: lease {lease:x} has expired or was revoked")]
    LeaseGone { endpoint: String, lease: i64 },
    #[error("etcd at {endpoint}: the {op} stream ended")]
    StreamEnded { endpoint: String, op: &'static str },
}

/// A granted lease: its id and the TTL etcd chose (it may raise the asked one
/// to its minimum).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub id: i64,
    pub ttl_secs: i64,
}

/// The current holder of an election, as etcd stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The leader's key (unique per campaign).
    pub key: Vec<u8>,
    /// What the leader proclaimed (for acd: its gRPC URL).
    pub value: Vec<u8>,
    /// The key's create revision: grows with every new leader.
    pub rev: i64,
    /// The lease holding the key.
    pub lease: i64,
}

/// A connection to one etcd endpoint.
#[derive(Clone)]
pub struct Etcd {
    endpoint: String,
    channel: Channel,
}

impl Etcd {
    /// Connects to the first endpoint of `endpoints` that answers.
    pub async fn connect_any(endpoints: &[String]) -> Result<Etcd, Error> {
        let mut last = Error::NoEndpoint;
        for e in endpoints {
            match Etcd::connect(e).await {
                Ok(c) => return Ok(c),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    pub async fn connect(endpoint: &str) -> Result<Etcd, Error> {
        let channel = Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| Error::BadUrl {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(CONNECT_TIMEOUT)
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(|e| Error::Connect {
                endpoint: endpoint.to_string(),
                reason: chain(&e),
            })?;
        Ok(Etcd {
            endpoint: endpoint.to_string(),
            channel,
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn rpc(&self, op: &'static str) -> impl FnOnce(tonic::Status) -> Error + '_ {
        move |status| Error::Rpc {
            endpoint: self.endpoint.clone(),
            op,
            status,
        }
    }

    async fn timed<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(REQUEST_TIMEOUT, f)
            .await
            .map_err(|_| Error::Timeout {
                endpoint: self.endpoint.clone(),
                op,
            })?
    }

    /// Grants a lease of (at least) `ttl_secs`.
    pub async fn grant(&self, ttl_secs: i64) -> Result<Lease, Error> {
        let mut c = LeaseClient::new(self.channel.clone());
        let r = self
            .timed("lease grant", async {
                c.lease_grant(LeaseGrantRequest {
                    ttl: ttl_secs,
                    id: 0,
                })
                .await
                .map_err(self.rpc("lease grant"))
            })
            .await?
            .into_inner();
        Ok(Lease {
            id: r.id,
            ttl_secs: r.ttl,
        })
    }

    /// Revokes a lease: every key attached to it is deleted at once.
    pub async fn revoke(&self, lease: i64) -> Result<(), Error> {
        let mut c = LeaseClient::new(self.channel.clone());
        self.timed("lease revoke", async {
            c.lease_revoke(LeaseRevokeRequest { id: lease })
                .await
                .map_err(self.rpc("lease revoke"))
        })
        .await?;
        Ok(())
    }

    /// Opens a keep-alive stream for `lease`.
    pub async fn keep_alive(&self, lease: i64) -> Result<KeepAlive, Error> {
        let mut c = LeaseClient::new(self.channel.clone());
        let (tx, rx) = mpsc::channel(4);
        // etcd answers the stream's headers only with the first response, so
        // the first request goes out with the call; `refresh` then only reads.
        let _ = tx.try_send(LeaseKeepAliveRequest { id: lease });
        let responses = self
            .timed("lease keep-alive", async {
                c.lease_keep_alive(ReceiverStream::new(rx))
                    .await
                    .map_err(self.rpc("lease keep-alive"))
            })
            .await?
            .into_inner();
        Ok(KeepAlive {
            endpoint: self.endpoint.clone(),
            lease,
            tx,
            responses,
            primed: true,
        })
    }

    /// Campaigns in election `name` with `value` under `lease`; returns once
    /// elected (it waits for every earlier campaigner to resign or expire).
    pub async fn campaign(&self, name: &str, lease: i64, value: &str) -> Result<LeaderKey, Error> {
        let mut c = ElectionClient::new(self.channel.clone());
        let r = c
            .campaign(CampaignRequest {
                name: name.as_bytes().to_vec(),
                lease,
                value: value.as_bytes().to_vec(),
            })
            .await
            .map_err(self.rpc("campaign"))?
            .into_inner();
        r.leader.ok_or_else(|| Error::StreamEnded {
            endpoint: self.endpoint.clone(),
            op: "campaign",
        })
    }

    /// The current leader of `name`, or `None` when nobody holds it.
    pub async fn leader(&self, name: &str) -> Result<Option<Leader>, Error> {
        let mut c = ElectionClient::new(self.channel.clone());
        let r = self
            .timed("leader", async {
                c.leader(LeaderRequest {
                    name: name.as_bytes().to_vec(),
                })
                .await
                .map_err(self.rpc("leader"))
            })
            .await;
        match r {
            Ok(r) => Ok(r.into_inner().kv.map(leader_from)),
            // etcd answers "election: no leader" as an error.
            Err(Error::Rpc { status, .. }) if status.message().contains("no leader") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Streams every change of leader of `name` (the first item is the
    /// current one; nothing is sent while nobody leads).
    pub async fn observe(&self, name: &str) -> Result<Observe, Error> {
        let mut c = ElectionClient::new(self.channel.clone());
        let stream = self
            .timed("observe", async {
                c.observe(LeaderRequest {
                    name: name.as_bytes().to_vec(),
                })
                .await
                .map_err(self.rpc("observe"))
            })
            .await?
            .into_inner();
        Ok(Observe {
            endpoint: self.endpoint.clone(),
            stream,
        })
    }

    /// Gives up leadership held under `key`; the next campaigner wins.
    pub async fn resign(&self, key: LeaderKey) -> Result<(), Error> {
        let mut c = ElectionClient::new(self.channel.clone());
        self.timed("resign", async {
            c.resign(ResignRequest { leader: Some(key) })
                .await
                .map_err(self.rpc("resign"))
        })
        .await?;
        Ok(())
    }
}

fn leader_from(kv: pb::mvccpb::KeyValue) -> Leader {
    Leader {
        key: kv.key,
        value: kv.value,
        rev: kv.create_revision,
        lease: kv.lease,
    }
}

/// An open keep-alive stream for one lease.
pub struct KeepAlive {
    endpoint: String,
    lease: i64,
    tx: mpsc::Sender<LeaseKeepAliveRequest>,
    responses: Streaming<pb::etcdserverpb::LeaseKeepAliveResponse>,
    /// The first request was sent when the stream opened.
    primed: bool,
}

impl KeepAlive {
    /// Refreshes the lease once; returns the TTL etcd reset it to. The lease
    /// runs from when etcd handled the request, so callers date their
    /// deadline from *before* calling this.
    pub async fn refresh(&mut self) -> Result<i64, Error> {
        let ended = || Error::StreamEnded {
            endpoint: self.endpoint.clone(),
            op: "lease keep-alive",
        };
        if !std::mem::take(&mut self.primed) {
            self.tx
                .send(LeaseKeepAliveRequest { id: self.lease })
                .await
                .map_err(|_| ended())?;
        }
        let r = tokio::time::timeout(REQUEST_TIMEOUT, self.responses.message())
            .await
            .map_err(|_| Error::Timeout {
                endpoint: self.endpoint.clone(),
                op: "lease keep-alive",
            })?
            .map_err(|status| Error::Rpc {
                endpoint: self.endpoint.clone(),
                op: "lease keep-alive",
                status,
            })?
            .ok_or_else(ended)?;
        if r.ttl <= 0 {
            return Err(Error::LeaseGone {
                endpoint: self.endpoint.clone(),
                lease: self.lease,
            });
        }
        Ok(r.ttl)
    }
}

/// Leader changes of one election.
pub struct Observe {
    endpoint: String,
    stream: Streaming<pb::v3electionpb::LeaderResponse>,
}

impl Observe {
    /// The next leader; an error when the stream breaks.
    pub async fn next(&mut self) -> Result<Leader, Error> {
        loop {
            let r = self
                .stream
                .message()
                .await
                .map_err(|status| Error::Rpc {
                    endpoint: self.endpoint.clone(),
                    op: "observe",
                    status,
                })?
                .ok_or_else(|| Error::StreamEnded {
                    endpoint: self.endpoint.clone(),
                    op: "observe",
                })?;
            if let Some(kv) = r.kv {
                return Ok(leader_from(kv));
            }
        }
    }
}

/// An error and its causes on one line.
fn chain(err: &dyn std::error::Error) -> String {
    let mut s = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        s.push_str(": ");
        s.push_str(&e.to_string());
        cur = e.source();
    }
    s
}
