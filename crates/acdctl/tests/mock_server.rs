//! `acdctl` against an in-process mock of AgentService and AdminService:
//! exit codes, `--json` lines, watch `--count` and errors.

use std::pin::Pin;
use std::process::Output;
use std::time::Duration;

use acd_proto::v1::admin_service_server::{AdminService, AdminServiceServer};
use acd_proto::v1::agent_service_server::{AgentService, AgentServiceServer};
use acd_proto::v1::*;
use serde_json::Value;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

struct Mock;

fn agent(id: &str, state: AgentState) -> AgentStatus {
    AgentStatus {
        agent_id: id.into(),
        state: state as i32,
        extension: "1001".into(),
        ..Default::default()
    }
}

#[tonic::async_trait]
impl AgentService for Mock {
    async fn login(&self, r: Request<LoginRequest>) -> Result<Response<AgentStatus>, Status> {
        let r = r.into_inner();
        Ok(Response::new(AgentStatus {
            extension: r.extension,
            ..agent(&r.agent_id, AgentState::NotReady)
        }))
    }
    async fn set_ready(
        &self,
        r: Request<SetReadyRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Ok(Response::new(agent(
            &r.into_inner().agent_id,
            AgentState::Ready,
        )))
    }
    async fn set_not_ready(
        &self,
        r: Request<SetNotReadyRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        let r = r.into_inner();
        Ok(Response::new(AgentStatus {
            reason: r.reason,
            ..agent(&r.agent_id, AgentState::NotReady)
        }))
    }
    async fn accept_offer(
        &self,
        _r: Request<acd_proto::v1::OfferRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Err(Status::unimplemented("mock"))
    }
    async fn reject_offer(
        &self,
        _r: Request<acd_proto::v1::OfferRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Err(Status::unimplemented("mock"))
    }
    async fn end_wrap_up(
        &self,
        _r: Request<acd_proto::v1::EndWrapUpRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Err(Status::unimplemented("mock"))
    }
    async fn transfer(
        &self,
        _r: Request<acd_proto::v1::TransferRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        Err(Status::unimplemented("mock"))
    }
    async fn list_reasons(
        &self,
        _r: Request<acd_proto::v1::ListReasonsRequest>,
    ) -> Result<Response<acd_proto::v1::ListReasonsResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
    async fn logout(&self, r: Request<LogoutRequest>) -> Result<Response<AgentStatus>, Status> {
        Ok(Response::new(agent(
            &r.into_inner().agent_id,
            AgentState::LoggedOut,
        )))
    }
    async fn get_agent(
        &self,
        r: Request<GetAgentRequest>,
    ) -> Result<Response<AgentStatus>, Status> {
        let id = r.into_inner().agent_id;
        if id == "ghost" {
            return Err(Status::not_found("unknown agent ghost"));
        }
        Ok(Response::new(agent(&id, AgentState::OnCall)))
    }
    async fn list_agents(
        &self,
        _: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        Ok(Response::new(ListAgentsResponse {
            agents: vec![
                agent("alice", AgentState::Ready),
                agent("bob", AgentState::WrapUp),
            ],
        }))
    }
    async fn list_queues(
        &self,
        _: Request<ListQueuesRequest>,
    ) -> Result<Response<ListQueuesResponse>, Status> {
        Ok(Response::new(ListQueuesResponse {
            queues: vec![QueueStatus {
                queue_id: "sales".into(),
                waiting: 2,
                offered: 5,
                ..Default::default()
            }],
        }))
    }
    type WatchStream = Pin<Box<dyn Stream<Item = Result<AgentEvent, Status>> + Send>>;
    async fn watch(&self, r: Request<WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let id = r.into_inner().agent_id;
        let events = vec![
            Ok(AgentEvent {
                seq: 1,
                kind: Some(agent_event::Kind::Status(agent(&id, AgentState::Ready))),
            }),
            Ok(AgentEvent {
                seq: 2,
                kind: Some(agent_event::Kind::Offer(CallOffer {
                    call_id: "acd-1".into(),
                    queue_id: "sales".into(),
                    caller: Some(Caller {
                        from_uri: "sip:c@x".into(),
                        did: "5550100".into(),
                        ..Default::default()
                    }),
                    waited_ms: 1200,
                    enqueued_at_ms: 0,
                    ..Default::default()
                })),
            }),
            Ok(AgentEvent {
                seq: 3,
                kind: Some(agent_event::Kind::Connected(CallConnected {
                    call_id: "acd-1".into(),
                })),
            }),
        ];
        // Then nothing, forever: only --count ends the watch.
        Ok(Response::new(Box::pin(
            tokio_stream::iter(events).chain(tokio_stream::pending()),
        )))
    }
}

#[tonic::async_trait]
impl AdminService for Mock {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        Ok(Response::new(StatusResponse {
            roles: vec!["distributor".into()],
            version: "0.1.0".into(),
            distributor: Some(DistributorStatus {
                role: "primary".into(),
                term: 1,
                ..Default::default()
            }),
            edge: None,
            draining: false,
            ..Default::default()
        }))
    }
    async fn drain(&self, _: Request<DrainRequest>) -> Result<Response<DrainResponse>, Status> {
        Ok(Response::new(DrainResponse { active_calls: 3 }))
    }
    async fn switchover(
        &self,
        _: Request<SwitchoverRequest>,
    ) -> Result<Response<SwitchoverResponse>, Status> {
        Err(Status::unimplemented("switchover"))
    }

    async fn edge_snapshot(
        &self,
        _: Request<acd_proto::v1::EdgeSnapshotRequest>,
    ) -> Result<Response<acd_proto::v1::EdgeSnapshotResponse>, Status> {
        Err(Status::failed_precondition("this process has no edge"))
    }

    async fn reload(
        &self,
        _: Request<acd_proto::v1::ReloadRequest>,
    ) -> Result<Response<acd_proto::v1::ReloadResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }

    async fn list_callbacks(
        &self,
        _: Request<acd_proto::v1::ListCallbacksRequest>,
    ) -> Result<Response<acd_proto::v1::ListCallbacksResponse>, Status> {
        Err(Status::unimplemented("mock"))
    }
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(AgentServiceServer::new(Mock))
            .add_service(AdminServiceServer::new(Mock))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

async fn acdctl(server: &str, args: &[&str]) -> Output {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_acdctl"))
        .arg("--server")
        .arg(server)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("acdctl hung")
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect()
}

#[tokio::test]
async fn agent_commands() {
    let s = serve().await;
    let out = acdctl(
        &s,
        &["--json", "agent", "login", "alice", "--extension", "2002"],
    )
    .await;
    assert!(out.status.success());
    let v = json_lines(&out);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["agent_id"], "alice");
    assert_eq!(v[0]["state"], "NOT_READY");
    assert_eq!(v[0]["extension"], "2002");

    let out = acdctl(&s, &["agent", "ready", "alice"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice  READY  ext=1001\n"
    );

    let out = acdctl(
        &s,
        &["--json", "agent", "not-ready", "alice", "--reason", "lunch"],
    )
    .await;
    assert_eq!(json_lines(&out)[0]["reason"], "lunch");

    let out = acdctl(&s, &["agent", "logout", "alice", "--json"]).await;
    assert_eq!(json_lines(&out)[0]["state"], "LOGGED_OUT");

    let out = acdctl(&s, &["--json", "agent", "list"]).await;
    let v = json_lines(&out);
    assert_eq!(
        v.iter()
            .map(|a| a["state"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["READY", "WRAP_UP"]
    );

    let out = acdctl(&s, &["agent", "list"]).await;
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    let out = acdctl(&s, &["agent", "show", "ghost"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "acdctl: NOT_FOUND: unknown agent ghost"
    );
}

#[tokio::test]
async fn watch_stops_after_count() {
    let s = serve().await;
    let out = acdctl(&s, &["--json", "agent", "watch", "alice", "--count", "2"]).await;
    assert!(out.status.success());
    let v = json_lines(&out);
    assert_eq!(v.len(), 2);
    assert_eq!(v[0]["kind"], "status");
    assert_eq!(v[0]["status"]["state"], "READY");
    assert_eq!(v[1]["kind"], "offer");
    assert_eq!(v[1]["offer"]["caller"]["did"], "5550100");

    let out = acdctl(&s, &["agent", "watch", "alice", "--count", "3"]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[1],
        "OFFER call=acd-1 queue=sales from=sip:c@x did=5550100 waited=1200ms"
    );
    assert_eq!(lines[2], "CONNECTED call=acd-1");
}

#[tokio::test]
async fn queues_status_drain() {
    let s = serve().await;
    let v = json_lines(&acdctl(&s, &["--json", "queue", "list"]).await);
    assert_eq!(v[0]["queue_id"], "sales");
    assert_eq!(v[0]["waiting"], 2);
    assert_eq!(v[0]["offered"], 5);

    let v = json_lines(&acdctl(&s, &["--json", "status"]).await);
    assert_eq!(v[0]["distributor"]["role"], "primary");
    assert_eq!(v[0]["edge"], Value::Null);

    let v = json_lines(&acdctl(&s, &["--json", "drain"]).await);
    assert_eq!(v[0]["active_calls"], 3);
}

#[tokio::test]
async fn unreachable_server() {
    // Bind then drop: a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = acdctl(&url, &["status"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("acdctl: cannot reach {url}: ")),
        "{err}"
    );
}

#[tokio::test]
async fn watch_stops_on_ctrl_c() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let s = serve().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_acdctl"))
        .args(["--server", &s, "--json", "agent", "watch", "alice"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        // Flushed line by line: each event is readable while the watch runs.
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str::<Value>(&line).unwrap();
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("no exit on SIGINT")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
