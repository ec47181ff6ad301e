//! Access control of the gRPC API: who is calling (`authorization`
//! metadata) and whether their role may call this method.
//!
//! One tower layer in front of every service ([`AccessLayer`]) authenticates
//! and checks the role per method; it puts the caller's [`Principal`] into
//! the request's extensions, where the agent service checks the finer rule
//! "an agent acts for itself only" ([`Principal::may_act_for`]).
//!
//! | role       | credentials                    | may call                                      |
//! |------------|--------------------------------|-----------------------------------------------|
//! | agent      | Basic `agent_id:password`      | AgentService for itself; ListQueues/Agents/Reasons |
//! | supervisor | Bearer user token              | AgentService (any agent), SupervisorService but ApplyConfig, Admin Status/ListCallbacks |
//! | admin      | Bearer user token              | everything                                    |
//! | service    | Bearer `[access] cluster_token`| EdgeService, ReplicationService, IvrService, Admin Status |
//!
//! The standard health and reflection services are open (load balancers probe
//! health; the schema is public).

use std::collections::HashMap;
use std::sync::Arc;
use std::task::{Context, Poll};

use acd_config::{Config, SecretForm, UserRole};
use base64::Engine;
use sha2::{Digest, Sha256};
use tonic::codegen::{http, BoxFuture, Service};
use tonic::Status;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Agent,
    Supervisor,
    Admin,
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
            Role::Service => "service",
        }
    }
}

/// The authenticated caller; for an agent, `name` is its agent id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    /// Whether the caller may act for `agent`: supervisors and admins for
    /// any, an agent only for itself. No principal (no access layer in
    /// front, e.g. a library test) acts for any.
    pub fn may_act_for(p: Option<&Principal>, agent: &str) -> Result<(), Status> {
        match p {
            Some(Principal {
                role: Role::Agent,
                name,
            }) if name != agent => {
                refused("AgentService", "other_agent");
                Err(Status::permission_denied(format!(
                    "agent {name} may act only for {name}, not for {agent}"
                )))
            }
            Some(Principal {
                role: Role::Service,
                ..
            }) => {
                refused("AgentService", "role");
                Err(Status::permission_denied(
                    "the cluster token acts for no agent; use a supervisor's token",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The credentials a process accepts, from `[access]` and `[[agents]]`.
#[derive(Debug, Clone)]
pub struct Access {
    enabled: bool,
    cluster: Option<[u8; 32]>,
    users: Vec<(String, Role, [u8; 32])>,
    agents: HashMap<String, [u8; 32]>,
}

impl Access {
    pub fn from_config(c: &Config) -> Access {
        let users = c
            .access
            .users
            .iter()
            .filter_map(|u| {
                let role = match u.role {
                    UserRole::Supervisor => Role::Supervisor,
                    UserRole::Admin => Role::Admin,
                };
                Some((u.name.clone(), role, digest_of(u.secret()?)?))
            })
            .collect();
        let agents = c
            .agents
            .iter()
            .filter_map(|a| Some((a.id.clone(), digest_of(a.secret()?)?)))
            .collect();
        let cluster =
            (!c.access.cluster_token.is_empty()).then(|| sha256(c.access.cluster_token.as_bytes()));
        Access {
            enabled: c.access.enabled,
            cluster,
            users,
            agents,
        }
    }

    /// Everyone is an admin (`[access] enabled = false`).
    pub fn disabled() -> Access {
        Access {
            enabled: false,
            cluster: None,
            users: Vec::new(),
            agents: HashMap::new(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Who presents this `authorization` value; `Err(reason)` for the metric.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, &'static str> {
        if !self.enabled {
            return Ok(Principal {
                name: "anyone".into(),
                role: Role::Admin,
            });
        }
        let value = authorization.ok_or("missing")?;
        if let Some(token) = strip_scheme(value, "bearer") {
            return self.bearer(token.trim());
        }
        if let Some(encoded) = strip_scheme(value, "basic") {
            return self.basic(encoded.trim());
        }
        Err("scheme")
    }

    fn bearer(&self, token: &str) -> Result<Principal, &'static str> {
        let given = sha256(token.as_bytes());
        // Every secret is compared, matched or not: timing tells nothing.
        let mut found = None;
        if let Some(c) = &self.cluster {
            if ct_eq(c, &given) {
                found = Some(Principal {
                    name: "cluster".into(),
                    role: Role::Service,
                });
            }
        }
        for (name, role, d) in &self.users {
            if ct_eq(d, &given) && found.is_none() {
                found = Some(Principal {
                    name: name.clone(),
                    role: *role,
                });
            }
        }
        found.ok_or("bad_token")
    }

    fn basic(&self, encoded: &str) -> Result<Principal, &'static str> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| "bad_basic")?;
        let text = String::from_utf8(decoded).map_err(|_| "bad_basic")?;
        let (agent, password) = text.split_once(':').ok_or("bad_basic")?;
        let given = sha256(password.as_bytes());
        // An unknown agent costs the same comparison as a known one.
        let expected = self.agents.get(agent).copied();
        let ok = ct_eq(&expected.unwrap_or([0; 32]), &given) && expected.is_some();
        if !ok {
            return Err("bad_password");
        }
        Ok(Principal {
            name: agent.to_string(),
            role: Role::Agent,
        })
    }
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn digest_of(s: SecretForm<'_>) -> Option<[u8; 32]> {
    match s {
        SecretForm::Plain(p) => Some(sha256(p.as_bytes())),
        SecretForm::Sha256Hex(h) => hex::decode(h).ok()?.try_into().ok(),
    }
}

/// Constant-time equality of two digests.
fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who may call `service`/`method` (None: anyone, unauthenticated).
pub fn allowed_roles(service: &str, method: &str) -> Option<&'static [Role]> {
    use Role::*;
    const STAFF: &[Role] = &[Supervisor, Admin];
    Some(match (service, method) {
        // Load balancers probe health; the schema is public (and grpcurl
        // needs it before it sends any credentials).
        ("grpc.health.v1.Health", _)
        | ("grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection", _) => {
            return None
        }
        ("acd.v1.AgentService", _) => &[Agent, Supervisor, Admin],
        ("acd.v1.SupervisorService", "ApplyConfig") => &[Admin],
        ("acd.v1.SupervisorService", _) => STAFF,
        ("acd.v1.AdminService", "Status") => &[Supervisor, Admin, Service],
        ("acd.v1.AdminService", "ListCallbacks") => STAFF,
        ("acd.v1.EdgeService" | "acd.v1.ReplicationService" | "acd.v1.IvrService", _) => {
            &[Service, Admin]
        }
        _ => &[Admin],
    })
}

/// Authenticates and authorizes one request by its path and headers.
pub fn check(
    access: &Access,
    path: &str,
    authorization: Option<&str>,
) -> Result<Option<Principal>, Status> {
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path, ""));
    let Some(roles) = allowed_roles(service, method) else {
        return Ok(None);
    };
    let principal = access.authenticate(authorization).map_err(|reason| {
        refused(service, reason);
        Status::unauthenticated(match reason {
            "missing" => {
                "credentials required: authorization: Bearer <token> or Basic <agent:password>"
            }
            _ => "bad credentials",
        })
    })?;
    if !roles.contains(&principal.role) {
        refused(service, "role");
        let need: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        return Err(Status::permission_denied(format!(
            "{service}/{method} needs role {}; {} `{}` is not",
            need.join(" or "),
            principal.role.as_str(),
            principal.name
        )));
    }
    Ok(Some(principal))
}

fn refused(service: &str, reason: &'static str) {
    let service = service.rsplit('.').next().unwrap_or(service).to_string();
    metrics::counter!("acd_grpc_refused_total", "service" => service, "reason" => reason)
        .increment(1);
}

/// The tower layer in front of every gRPC service.
#[derive(Clone)]
pub struct AccessLayer(Arc<Access>);

impl AccessLayer {
    pub fn new(access: Access) -> Self {
        AccessLayer(Arc::new(access))
    }
}

impl<S> tower_layer::Layer<S> for AccessLayer {
    type Service = AccessService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AccessService {
            access: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct AccessService<S> {
    access: Arc<Access>,
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for AccessService<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let authorization = req
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match check(&self.access, req.uri().path(), authorization) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                Box::pin(self.inner.call(req))
            }
            Err(status) => {
                tracing::info!(path = %req.uri().path(), code = ?status.code(), "gRPC call refused");
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        let text = r#"
[sip]
realm = "t"
public_ip = "127.0.0.1"
[access]
cluster_token = "cluster"
users = [
  { name = "root", role = "admin", token = "admintoken" },
  { name = "sue", role = "supervisor", token_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" },
]
[[agents]]
id = "alice"
password = "pw"
[[agents]]
id = "bob"
"#;
        let cfg = acd_config::parse(text, "t").unwrap_or_else(|e| panic!("{e}"));
        Access::from_config(&cfg)
    }

    fn basic(s: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[test]
    fn roles_from_credentials() {
        let a = access();
        let role = |h: &str| a.authenticate(Some(h)).map(|p| p.role);
        assert_eq!(role("Bearer admintoken"), Ok(Role::Admin));
        // sha256("password")
        assert_eq!(role("bearer password"), Ok(Role::Supervisor));
        assert_eq!(role("Bearer cluster"), Ok(Role::Service));
        assert_eq!(role(&basic("alice:pw")), Ok(Role::Agent));
        assert_eq!(role(&basic("alice:nope")), Err("bad_password"));
        assert_eq!(role(&basic("bob:")), Err("bad_password"));
        assert_eq!(role("Bearer nope"), Err("bad_token"));
        assert_eq!(a.authenticate(None), Err("missing"));
    }

    #[test]
    fn methods_by_role() {
        let a = access();
        let call =
            |path: &str, h: Option<&str>| check(&a, path, h).map(|_| ()).map_err(|s| s.code());
        assert_eq!(call("/grpc.health.v1.Health/Check", None), Ok(()));
        assert_eq!(
            call("/acd.v1.AdminService/Drain", None),
            Err(tonic::Code::Unauthenticated)
        );
        let alice = basic("alice:pw");
        assert_eq!(
            call("/acd.v1.AdminService/Drain", Some(&alice)),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            call("/acd.v1.AdminService/Drain", Some("Bearer admintoken")),
            Ok(())
        );
        assert_eq!(call("/acd.v1.AgentService/Login", Some(&alice)), Ok(()));
        assert_eq!(
            call("/acd.v1.EdgeService/Attach", Some(&alice)),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            call("/acd.v1.EdgeService/Attach", Some("Bearer cluster")),
            Ok(())
        );
        assert_eq!(
            call(
                "/acd.v1.SupervisorService/ApplyConfig",
                Some("Bearer password")
            ),
            Err(tonic::Code::PermissionDenied)
        );
        assert_eq!(
            call(
                "/acd.v1.SupervisorService/ForceState",
                Some("Bearer password")
            ),
            Ok(())
        );
    }

    #[test]
    fn an_agent_acts_for_itself_only() {
        let alice = Principal {
            name: "alice".into(),
            role: Role::Agent,
        };
        assert!(Principal::may_act_for(Some(&alice), "alice").is_ok());
        let e = Principal::may_act_for(Some(&alice), "bob")
            .err()
            .map(|s| s.message().to_string());
        assert_eq!(
            e.as_deref(),
            Some("agent alice may act only for alice, not for bob")
        );
    }
}
