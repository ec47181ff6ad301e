//! The built `acd` binary: check-config's verdicts and exit codes, the READY
//! line, /metrics and /ready, AdminService and gRPC health.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use acd_proto::v1 as pb;
use pb::admin_service_client::AdminServiceClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const ACD: &str = env!("CARGO_BIN_EXE_acd");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config")
}

fn acd(args: &[&str]) -> Output {
    Command::new(ACD).args(args).output().expect("running acd")
}

/// A fresh directory for one test (removed at the start of the next run).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("acd-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("prompts")).unwrap();
    dir
}

/// Copies the files of `from` into `to`, and its subdirectories (the
/// language prompt sets) likewise.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, target).unwrap();
        }
    }
}

/// config/acd.toml, its prompts and flows copied to `dir`, with `edit` applied to the text.
fn copy_config(dir: &Path, edit: impl FnOnce(String) -> String) -> PathBuf {
    copy_dir(&config_dir().join("prompts"), &dir.join("prompts"));
    copy_dir(&config_dir().join("flows"), &dir.join("flows"));
    let text = std::fs::read_to_string(config_dir().join("acd.toml")).unwrap();
    let path = dir.join("acd.toml");
    std::fs::write(&path, edit(text)).unwrap();
    path
}

#[test]
fn check_config_accepts_the_shipped_config() {
    let file = config_dir().join("acd.toml");
    let out = acd(&["check-config", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.trim_end().ends_with(": ok"), "stdout: {stdout}");
}

#[test]
fn check_config_names_file_key_and_line_of_an_unknown_queue() {
    let dir = temp_dir("unknown-queue");
    let mut line = 0;
    let path = copy_config(&dir, |text| {
        // The `queue = "sales"` of [flows.sales.nodes.queue].
        let mut in_node = false;
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if l.starts_with('[') {
                    in_node = l.trim() == "[flows.sales.nodes.queue]";
                }
                if in_node && l.trim() == "queue = \"sales\"" {
                    line = i + 1;
                    "queue = \"nosuch\"".to_string()
                } else {
                    l.to_string()
                }
            })
            .collect();
        lines.join("\n") + "\n"
    });
    assert!(line > 0, "did not find the flow's queue line to break");

    let out = acd(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    let file = path.display().to_string();
    let error = stderr
        .lines()
        .find(|l| l.contains("flows.sales.nodes.queue.queue"))
        .unwrap_or_else(|| {
            panic!("no error names `flows.sales.nodes.queue.queue`; stderr: {stderr}")
        });
    assert!(
        error.starts_with(&format!("{file}:{line}:")),
        "expected `{file}:{line}:` first in {error:?}"
    );
    assert!(out.stdout.is_empty(), "stdout should be empty on errors");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_decodes_prompts() {
    let dir = temp_dir("bad-wav");
    let path = copy_config(&dir, |text| text);
    std::fs::write(dir.join("prompts/moh.wav"), b"this is not a wav file").unwrap();

    let out = acd(&["check-config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(&path.display().to_string()),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("key `prompts.moh`"), "stderr: {stderr}");
    assert!(stderr.contains("RIFF"), "stderr: {stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_config_reports_a_missing_file() {
    let out = acd(&["check-config", "/nonexistent/acd.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/acd.toml"));
}

/// A running `acd`, killed when dropped.
struct Running {
    child: Child,
    fields: Vec<(String, String)>,
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        // The embedded defaults write call records under `data/` of the
        // working directory: keep them out of the source tree.
        static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("acd-cli-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a working directory for acd");
        let mut child = Command::new(ACD)
            .current_dir(&dir)
            .args(args)
            // Only problems reach the test output.
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawning acd");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Keeps reading after the READY line so the child never blocks on stdout.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("ACD READY") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("acd {args:?}: no READY line ({e})");
            }
        };
        let fields = line
            .trim_start_matches("ACD READY")
            .split_whitespace()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .collect();
        Running { child, fields }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn field(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("READY line has no {key}=: {:?}", self.fields))
    }

    fn grpc_url(&self) -> String {
        format!("http://{}", self.field("grpc"))
    }

    /// SIGTERM, then the exit code (bounded).
    fn terminate(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("acd did not exit within 10 s of SIGTERM");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` over HTTP/1.0; (status code, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {resp:?}"));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, body.to_string())
}

#[test]
fn ivr_reports_ready_and_serves_metrics() {
    let ivr = Running::spawn(&["ivr", "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    assert_eq!(ivr.get("role"), Some("ivr"));
    assert!(
        ivr.get("sip_udp").is_none(),
        "an IVR runner has no SIP: {:?}",
        ivr.fields
    );
    let grpc = ivr.field("grpc");
    assert!(
        !grpc.ends_with(":0"),
        "grpc= must be the bound address, got {grpc}"
    );
    let metrics = ivr.field("metrics").to_string();
    assert!(
        !metrics.ends_with(":0"),
        "metrics= must be the bound address, got {metrics}"
    );

    let (code, body) = http_get(&metrics, "/metrics");
    assert_eq!(code, 200, "body: {body}");
    assert!(body.contains("acd_build_info"), "body: {body}");
    assert_eq!(http_get(&metrics, "/ready").0, 200);
    assert_eq!(http_get(&metrics, "/nope").0, 404);
    assert_eq!(ivr.terminate(), Some(0));
}

async fn health(url: &str, service: &str) -> ServingStatus {
    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut client = HealthClient::new(channel);
    let resp = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("Health.Check");
    ServingStatus::try_from(resp.into_inner().status).expect("known status")
}

#[tokio::test]
async fn run_serves_every_role_and_drains_honestly() {
    let run = Running::spawn(&[
        "run",
        "--sip-udp",
        "127.0.0.1:0",
        "--sip-tcp",
        "127.0.0.1:0",
        "--grpc",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--rtp-ports",
        "41000-41999",
        "--public-ip",
        "127.0.0.1",
    ]);
    assert_eq!(run.get("role"), Some("run"));
    for key in ["grpc", "sip_udp", "sip_tcp", "metrics"] {
        assert!(
            !run.field(key).ends_with(":0"),
            "{key}= must be the bound address: {:?}",
            run.fields
        );
    }
    let url = run.grpc_url();
    let metrics = run.field("metrics").to_string();

    let mut admin = admin_client(url.clone()).await.expect("connect admin");
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .expect("Status")
        .into_inner();
    for role in ["edge", "ivr", "distributor"] {
        assert!(
            status.roles.iter().any(|r| r == role),
            "roles {:?} lack {role}",
            status.roles
        );
    }
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        status.distributor.expect("distributor status").role,
        "primary"
    );
    assert!(
        status.edge.expect("edge status").distributor_connected,
        "edge not attached over loopback gRPC"
    );
    assert!(!status.draining);

    for service in [
        "",
        "acd.v1.AdminService",
        "acd.v1.AgentService",
        "acd.v1.IvrService",
        "acd.v1.EdgeService",
    ] {
        assert_eq!(
            health(&url, service).await,
            ServingStatus::Serving,
            "health of {service:?}"
        );
    }

    let err = admin
        .switchover(pb::SwitchoverRequest {})
        .await
        .expect_err("switchover");
    // `acd run` holds a static primary: no election to hand over.
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    assert!(err.message().contains("etcd"), "{err:?}");

    admin.drain(pb::DrainRequest {}).await.expect("Drain");
    assert!(
        admin
            .status(pb::StatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .draining
    );
    assert_eq!(health(&url, "").await, ServingStatus::NotServing);
    let m = metrics.clone();
    let (code, _) = tokio::task::spawn_blocking(move || http_get(&m, "/ready"))
        .await
        .unwrap();
    assert_eq!(code, 503);

    assert_eq!(run.terminate(), Some(0));
}

#[tokio::test]
async fn drain_without_an_edge_is_refused() {
    let dist = Running::spawn(&[
        "distributor",
        "--grpc",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    assert_eq!(dist.get("role"), Some("distributor"));
    let mut admin = admin_client(dist.grpc_url()).await.expect("connect admin");
    let err = admin.drain(pb::DrainRequest {}).await.expect_err("drain");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    let status = admin
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.roles, ["distributor"]);
    assert!(status.edge.is_none());
    assert!(status.distributor.is_some());
}

/// Services a generic gRPC client (grpcurl and the like) finds by reflection.
async fn reflected_services(url: &str) -> Vec<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let channel = tonic::transport::Endpoint::from_shared(url.to_string())
        .expect("gRPC URL")
        .connect()
        .await
        .expect("connect for reflection");
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await
        .expect("reflection call")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("reflection answer")
        .expect("one answer");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            list.service.into_iter().map(|s| s.name).collect()
        }
        other => panic!("unexpected reflection answer: {other:?}"),
    }
}

#[tokio::test]
async fn every_server_lists_its_services_by_reflection() {
    let ivr = Running::spawn(&["ivr", "--grpc", "127.0.0.1:0", "--metrics", "127.0.0.1:0"]);
    let services = reflected_services(&ivr.grpc_url()).await;
    for want in [
        "acd.v1.IvrService",
        "acd.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == want),
            "`acd ivr` must list {want}: {services:?}"
        );
    }
    ivr.terminate();

    let dist = Running::spawn(&[
        "distributor",
        "--grpc",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ]);
    let services = reflected_services(&dist.grpc_url()).await;
    for want in [
        "acd.v1.AgentService",
        "acd.v1.EdgeService",
        "acd.v1.ReplicationService",
        "acd.v1.AdminService",
    ] {
        assert!(
            services.iter().any(|s| s == want),
            "`acd distributor` must list {want}: {services:?}"
        );
    }
    dist.terminate();
}

/// AdminService as the admin of the embedded config (its demo token).
async fn admin_client(
    url: String,
) -> Result<AdminServiceClient<acd_proto::client::AuthChannel>, tonic::transport::Error> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .connect()
        .await?;
    let creds = acd_proto::client::Credentials::bearer("demo-admin-token-change-me");
    Ok(AdminServiceClient::new(acd_proto::client::authed(
        channel, &creds,
    )))
}
