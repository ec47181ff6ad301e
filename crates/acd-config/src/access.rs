//! `[access]`: who may use the gRPC API, and `[grpc.tls]`: how it is encrypted.
//!
//! Three kinds of credentials (see `acd_distributor::access` for the checks):
//! `cluster_token` (the processes of one site talk to each other with it:
//! edge ↔ distributor, standby ↔ primary, edge → IVR runner), `[[access.users]]`
//! (supervisors and admins, a bearer token each) and an agent's own
//! `[[agents]] password` (HTTP Basic `agent_id:password`). A secret may be
//! given as its SHA-256 in hex (`token_sha256`, `password_sha256`) so the file
//! need not hold it.

use serde::Deserialize;

use crate::{Seg, Validator};

/// What a user may do; agents are not users (they log in with their password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    Supervisor,
    Admin,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// `false` only in a lab: every caller is then an admin (logged loudly).
    pub enabled: bool,
    /// The site's internal token (role `service`); also what this process
    /// sends to the others. Required for edges, standbys and IVR runners to
    /// connect once access control is on.
    pub cluster_token: String,
    pub users: Vec<UserDef>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig {
            enabled: true,
            cluster_token: String::new(),
            users: Vec::new(),
        }
    }
}

/// `[[access.users]]`: a supervisor's or an admin's bearer token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDef {
    pub name: String,
    pub role: UserRole,
    #[serde(default)]
    pub token: String,
    /// SHA-256 of the token, 64 hex digits (instead of `token`).
    #[serde(default)]
    pub token_sha256: String,
}

/// `[grpc.tls]`: TLS on the gRPC listener and for this process's own clients.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsConfig {
    /// PEM certificate chain and key, relative to the config file.
    pub cert: String,
    pub key: String,
    /// PEM CA: clients must present a certificate it signed (mutual TLS);
    /// this process's own clients then present `cert`/`key`.
    pub client_ca: Option<String>,
    /// PEM CA this process trusts when it dials `https://` peers; absent:
    /// the system's roots.
    pub ca: Option<String>,
}

/// A secret as configured: in clear or as its SHA-256 (lower-case hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretForm<'a> {
    Plain(&'a str),
    Sha256Hex(&'a str),
}

impl UserDef {
    pub fn secret(&self) -> Option<SecretForm<'_>> {
        secret_form(&self.token, &self.token_sha256)
    }
}

impl crate::AgentDef {
    /// The agent's own password for the API, if it has one.
    pub fn secret(&self) -> Option<SecretForm<'_>> {
        secret_form(&self.password, &self.password_sha256)
    }
}

fn secret_form<'a>(plain: &'a str, sha: &'a str) -> Option<SecretForm<'a>> {
    match (plain.is_empty(), sha.is_empty()) {
        (false, _) => Some(SecretForm::Plain(plain)),
        (true, false) => Some(SecretForm::Sha256Hex(sha)),
        (true, true) => None,
    }
}

/// The secrets `config/acd.toml` ships with; `acd check-config` warns about them.
pub const DEMO_SECRETS: &[&str] = &[
    "demo-cluster-token-change-me",
    "demo-admin-token-change-me",
    "demo-supervisor-token-change-me",
];

/// Warnings (not errors) about `[access]`: it is off, or uses demo secrets.
pub fn warnings(c: &crate::Config) -> Vec<String> {
    let a = &c.access;
    let mut out = Vec::new();
    if !a.enabled {
        out.push("[access] enabled = false: anyone who reaches the gRPC port is an admin".into());
    }
    let demo = std::iter::once(a.cluster_token.as_str())
        .chain(a.users.iter().map(|u| u.token.as_str()))
        .any(|t| DEMO_SECRETS.contains(&t));
    if a.enabled && demo {
        out.push("[access] uses the demo tokens of config/acd.toml: change them".into());
    }
    out
}

impl Validator<'_> {
    pub(crate) fn access(&mut self, c: &crate::Config) {
        let a = &c.access;
        for (i, u) in a.users.iter().enumerate() {
            let at = |key| {
                [
                    Seg::Key("access"),
                    Seg::Key("users"),
                    Seg::Index(i),
                    Seg::Key(key),
                ]
            };
            if u.name.trim().is_empty() {
                self.push(&at("name"), "must not be empty");
            }
            match (u.token.is_empty(), u.token_sha256.is_empty()) {
                (true, true) => self.push(&at("token"), "give `token` or `token_sha256`"),
                (false, false) => self.push(
                    &at("token_sha256"),
                    "give only one of `token` and `token_sha256`",
                ),
                (true, false) if !is_sha256_hex(&u.token_sha256) => {
                    self.push(&at("token_sha256"), "must be 64 hex digits")
                }
                _ => {}
            }
        }
        for (i, ag) in c.agents.iter().enumerate() {
            if !ag.password_sha256.is_empty() && !is_sha256_hex(&ag.password_sha256) {
                self.push(
                    &[
                        Seg::Key("agents"),
                        Seg::Index(i),
                        Seg::Key("password_sha256"),
                    ],
                    "must be 64 hex digits",
                );
            }
        }
        if let Some(t) = &c.grpc.tls {
            for (key, v) in [("cert", &t.cert), ("key", &t.key)] {
                if v.trim().is_empty() {
                    self.push(
                        &[Seg::Key("grpc"), Seg::Key("tls"), Seg::Key(key)],
                        "must not be empty",
                    );
                }
            }
        }
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    const BASE: &str = "[sip]\nrealm = \"t\"\npublic_ip = \"127.0.0.1\"\n";

    fn errors(extra: &str) -> Vec<String> {
        match crate::parse(&format!("{BASE}{extra}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(e) => {
                e.0.iter()
                    .map(|e| format!("{}: {}", e.key, e.message))
                    .collect()
            }
        }
    }

    #[test]
    fn access_defaults_on_and_checks_secrets() {
        let c = crate::parse(BASE, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert!(c.access.enabled && c.access.users.is_empty());
        assert!(super::warnings(&c).is_empty());
        let both = "[[access.users]]\nname = \"a\"\nrole = \"admin\"\ntoken = \"x\"\ntoken_sha256 = \"00\"\n";
        assert!(
            errors(both)[0].contains("give only one"),
            "{:?}",
            errors(both)
        );
        let short =
            "[[access.users]]\nname = \"a\"\nrole = \"supervisor\"\ntoken_sha256 = \"abc\"\n";
        assert!(
            errors(short)[0].contains("64 hex digits"),
            "{:?}",
            errors(short)
        );
        let none = "[[access.users]]\nname = \"a\"\nrole = \"admin\"\n";
        assert!(
            errors(none)[0].contains("give `token`"),
            "{:?}",
            errors(none)
        );
        assert!(
            !errors("[[access.users]]\nname = \"a\"\nrole = \"root\"\ntoken = \"x\"\n").is_empty()
        );
        let demo = format!("{BASE}[access]\ncluster_token = \"demo-cluster-token-change-me\"\n");
        let c = crate::parse(&demo, "t.toml").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(super::warnings(&c).len(), 1);
    }

    #[test]
    fn the_shipped_config_has_demo_secrets_and_agent_passwords() {
        let c = crate::Loaded::embedded()
            .unwrap_or_else(|e| panic!("{e}"))
            .config;
        assert!(c.agents.iter().all(|a| a.secret().is_some()));
        assert!(super::warnings(&c)[0].contains("demo"));
    }
}
