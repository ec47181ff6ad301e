//! Access control and TLS of the gRPC API, against a real `acd run`: no or
//! bad credentials are UNAUTHENTICATED; an agent acts for itself only and
//! cannot drain; a supervisor cannot either, an admin can; with
//! `[grpc.tls]` acdctl reaches the process over https and plain HTTP/2 is
//! refused.

use acd_proto::client::{ClientTls, Credentials};
use acd_tests::grpc::{agent_password, ADMIN_TOKEN, SUPERVISOR_TOKEN};
use acd_tests::metrics::{counter_with, scrape};
use acd_tests::proto::admin_service_client::AdminServiceClient;
use acd_tests::proto::{
    AgentState, DrainRequest, ListAgentsRequest, ListQueuesRequest, StatusRequest,
};
use acd_tests::{acdctl, AcdClient, TestEnv};
use tonic::Code;

/// The gRPC code of a harness call's error.
fn code<T: std::fmt::Debug>(r: anyhow::Result<T>) -> (Code, String) {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => match e.downcast_ref::<tonic::Status>() {
            Some(s) => (s.code(), s.message().to_string()),
            None => panic!("not a gRPC status: {e:#}"),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_roles_are_enforced() {
    let env = TestEnv::new("access_roles", 115);
    let acd = env.start_run().await.unwrap();
    let url = acd.grpc_url();
    let mut admin = AcdClient::connect(&url).await.unwrap();

    // Nobody: refused, but the load balancer's readiness probe answers.
    let mut anon = AcdClient::connect_as(&url, Credentials::none())
        .await
        .unwrap();
    let (c, msg) = code(
        anon.agent
            .list_agents(ListAgentsRequest {})
            .await
            .map_err(Into::into),
    );
    assert_eq!(c, Code::Unauthenticated, "{msg}");
    let (c, _) = code(anon.status().await);
    assert_eq!(c, Code::Unauthenticated);
    let mut forged = AcdClient::connect_as(&url, Credentials::bearer("not-the-token"))
        .await
        .unwrap();
    assert_eq!(code(forged.status().await).0, Code::Unauthenticated);
    let mut wrong_pw = AcdClient::connect_as(&url, Credentials::basic("alice", "guess"))
        .await
        .unwrap();
    assert_eq!(
        code(wrong_pw.login("alice", "1001").await).0,
        Code::Unauthenticated
    );
    assert_eq!(
        acd_tests::metrics::http_status(&acd.metrics_addr(), "/ready").await,
        200
    );

    // Alice acts for herself, and reads the boards.
    let alice_creds = Credentials::basic("alice", &agent_password("alice"));
    let mut alice = AcdClient::connect_as(&url, alice_creds).await.unwrap();
    alice.login("alice", "1001").await.unwrap();
    let st = alice.ready("alice").await.unwrap();
    assert_eq!(st.state, AgentState::Ready as i32);
    alice.agent.list_queues(ListQueuesRequest {}).await.unwrap();
    alice.agent.list_agents(ListAgentsRequest {}).await.unwrap();

    // ...but not for bob, and nothing changes for him.
    let (c, msg) = code(alice.login("bob", "1002").await);
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(msg.contains("alice may act only for alice"), "{msg}");
    assert_eq!(code(alice.ready("bob").await).0, Code::PermissionDenied);
    let bob = admin.get_agent("bob").await.unwrap();
    assert_eq!(bob.state, AgentState::LoggedOut as i32, "{bob:?}");

    // Draining needs an admin: not an agent, not a supervisor.
    let (c, msg) = code(alice.admin.drain(DrainRequest {}).await.map_err(Into::into));
    assert_eq!(c, Code::PermissionDenied, "{msg}");
    assert!(
        msg.contains("admin"),
        "the refusal names the role needed: {msg}"
    );
    let mut sup = AcdClient::connect_as(&url, Credentials::bearer(SUPERVISOR_TOKEN))
        .await
        .unwrap();
    sup.status().await.unwrap();
    assert_eq!(
        code(sup.admin.drain(DrainRequest {}).await.map_err(Into::into)).0,
        Code::PermissionDenied
    );
    assert!(
        !admin.status().await.unwrap().draining,
        "nobody drained yet"
    );

    // The same through acdctl: no token, an agent's password for another agent.
    let out = acdctl(&url, &["--token", "", "agent", "list"])
        .await
        .unwrap();
    assert!(
        !out.success() && out.stderr.contains("UNAUTHENTICATED"),
        "{out:?}"
    );
    let bob_pw = agent_password("bob");
    let out = acdctl(
        &url,
        &["--agent-password", &bob_pw, "agent", "ready", "alice"],
    )
    .await
    .unwrap();
    assert!(
        !out.success() && out.stderr.contains("UNAUTHENTICATED"),
        "{out:?}"
    );
    let out = acdctl(
        &url,
        &[
            "--agent-password",
            &bob_pw,
            "agent",
            "login",
            "bob",
            "--extension",
            "1002",
        ],
    )
    .await
    .unwrap();
    assert!(out.success(), "bob logs himself in: {out:?}");
    let out = acdctl(&url, &["--token", SUPERVISOR_TOKEN, "drain"])
        .await
        .unwrap();
    assert!(
        !out.success() && out.stderr.contains("PERMISSION_DENIED"),
        "{out:?}"
    );

    // Refusals are counted by service and reason.
    let text = scrape(&acd.metrics_addr()).await.unwrap();
    let refused = |service, reason| {
        counter_with(
            &text,
            "acd_grpc_refused_total",
            &[("service", service), ("reason", reason)],
        )
        .unwrap_or(0.0)
    };
    assert!(refused("AgentService", "missing") >= 1.0, "{text}");
    assert!(refused("AgentService", "other_agent") >= 2.0, "{text}");
    assert!(refused("AdminService", "role") >= 3.0, "{text}");
    assert!(refused("AdminService", "bad_token") >= 1.0, "{text}");

    // The admin may.
    let out = acdctl(&url, &["--token", ADMIN_TOKEN, "drain", "--json"])
        .await
        .unwrap();
    assert!(out.success(), "{out:?}");
    assert!(admin.status().await.unwrap().draining);
}

/// A CA and a certificate for 127.0.0.1 it signed, as PEM files in `dir`:
/// (ca, cert, key).
fn make_certs(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("grpc.pem"),
        dir.join("grpc.key"),
    );
    std::fs::write(&paths.0, ca.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_with_acdctl() {
    let env = TestEnv::new("access_tls", 116);
    let (ca, cert, key) = make_certs(&env.log_dir);
    // The process's own edge dials its distributor over https too: it trusts `ca`.
    let config = env.write_config(&format!(
        "[grpc.tls]\ncert = \"{}\"\nkey = \"{}\"\nca = \"{}\"\n",
        cert.display(),
        key.display(),
        ca.display()
    ));
    let acd = env.start_run_with(&config, &[]).await.unwrap();
    let https = acd.grpc_url().replacen("http://", "https://", 1);
    let ca_arg = ca.display().to_string();

    let out = acdctl(&https, &["--ca", &ca_arg, "status", "--json"])
        .await
        .unwrap();
    assert!(out.success(), "acdctl over https: {out:?}");
    let status = &out.json_lines().unwrap()[0];
    assert_eq!(status["edge"]["distributor_connected"], true, "{status}");

    // A generated client trusting the CA, as the admin.
    let tls = ClientTls {
        ca_pem: Some(std::fs::read(&ca).unwrap()),
        ..Default::default()
    };
    let ch = acd_tests::grpc::connect_plain(&https, acd_tests::SHORT, &tls)
        .await
        .unwrap();
    let mut admin =
        AdminServiceClient::new(acd_proto::client::authed(ch, &acd_tests::grpc::admin()));
    let st = admin.status(StatusRequest {}).await.unwrap().into_inner();
    assert!(st.ready, "{st:?}");

    // Plain HTTP/2 to the TLS port gets nowhere; nor does https without the CA.
    let out = acdctl(&acd.grpc_url(), &["status"]).await.unwrap();
    assert!(!out.success(), "plain http must be refused: {out:?}");
    let out = acdctl(&https, &["status"]).await.unwrap();
    assert!(!out.success(), "an unknown CA must be refused: {out:?}");
}
