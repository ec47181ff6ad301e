//! Wiring of the gRPC API's protection: the access layer every service sits
//! behind, TLS on the listener, and the identity this process's own clients
//! present to the site's other processes.

use acd_config::Loaded;
use acd_distributor::access::{Access, AccessLayer};
use acd_proto::client::{ClientTls, Credentials};
use anyhow::{Context, Result};
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// The access layer for this process, and the site identity set for its
/// clients. Without `[access] cluster_token` a random one is made up: the
/// roles of one `acd run` process still reach each other, other processes
/// cannot (they need the configured token).
pub fn setup(loaded: &Loaded) -> Result<AccessLayer> {
    let cfg = &loaded.config;
    let mut access_cfg = cfg.clone();
    if access_cfg.access.cluster_token.is_empty() {
        access_cfg.access.cluster_token = random_token()?;
    }
    let access = Access::from_config(&access_cfg);
    if !access.enabled() {
        for _ in 0..3 {
            tracing::warn!("[access] enabled = false: ANYONE WHO REACHES THE gRPC PORT IS AN ADMIN (lab use only)");
        }
    }
    for w in acd_config::access::warnings(cfg) {
        tracing::warn!("{w}");
    }
    if access.enabled() && cfg.access.cluster_token.is_empty() {
        tracing::warn!("[access] cluster_token is not set: the roles of this process reach each other, other processes of the site are refused");
    }
    acd_proto::client::set_site_identity(
        Credentials::bearer(&access_cfg.access.cluster_token),
        client_tls(loaded)?,
    );
    Ok(AccessLayer::new(access))
}

/// What this process's clients trust (`[grpc.tls] ca`) and, under mutual
/// TLS (`client_ca`), the certificate they present: the listener's own.
fn client_tls(loaded: &Loaded) -> Result<ClientTls> {
    let Some(t) = &loaded.config.grpc.tls else {
        return Ok(ClientTls::default());
    };
    let ca_pem = match &t.ca {
        Some(ca) => Some(read(loaded, ca, "[grpc.tls] ca")?),
        None => None,
    };
    let identity_pem = match &t.client_ca {
        Some(_) => Some((
            read(loaded, &t.cert, "[grpc.tls] cert")?,
            read(loaded, &t.key, "[grpc.tls] key")?,
        )),
        None => None,
    };
    Ok(ClientTls {
        ca_pem,
        identity_pem,
    })
}

/// `[grpc.tls]` as the server's TLS configuration, if configured.
pub fn server_tls(loaded: &Loaded) -> Result<Option<ServerTlsConfig>> {
    let Some(t) = &loaded.config.grpc.tls else {
        return Ok(None);
    };
    let identity = Identity::from_pem(
        read(loaded, &t.cert, "[grpc.tls] cert")?,
        read(loaded, &t.key, "[grpc.tls] key")?,
    );
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &t.client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(
            loaded,
            ca,
            "[grpc.tls] client_ca",
        )?));
    }
    Ok(Some(tls))
}

fn read(loaded: &Loaded, relative: &str, key: &str) -> Result<Vec<u8>> {
    loaded
        .read_file(relative)
        .map_err(anyhow::Error::msg)
        .with_context(|| key.to_string())
}

/// 128 random bits in hex, from the kernel.
fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the process's internal token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
