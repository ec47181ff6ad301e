//! What every gRPC client of acd does the same way: send its credentials in
//! the `authorization` metadata, and speak TLS to `https://` URLs.

use std::sync::OnceLock;

use base64::Engine;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// A channel that adds [`Credentials`] to every request.
pub type AuthChannel = InterceptedService<Channel, Credentials>;

/// The `authorization` header a client sends (none: the server refuses
/// every call but health checks, unless its access control is off).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    header: Option<MetadataValue<Ascii>>,
}

impl Credentials {
    pub fn none() -> Self {
        Credentials::default()
    }

    /// `Bearer <token>` (users, the site's cluster token); an empty token is none.
    pub fn bearer(token: &str) -> Self {
        if token.is_empty() {
            return Credentials::none();
        }
        Credentials::from_header(&format!("Bearer {token}"))
    }

    /// `Basic base64(agent_id:password)`: an agent acting for itself.
    pub fn basic(agent_id: &str, password: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{agent_id}:{password}"));
        Credentials::from_header(&format!("Basic {encoded}"))
    }

    /// A header with bytes metadata cannot carry (a token with a newline)
    /// is sent as none: the server then answers UNAUTHENTICATED.
    fn from_header(value: &str) -> Self {
        Credentials {
            header: value.parse().ok(),
        }
    }

    pub fn is_none(&self) -> bool {
        self.header.is_none()
    }
}

impl tonic::service::Interceptor for Credentials {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        if let Some(h) = &self.header {
            req.metadata_mut().insert("authorization", h.clone());
        }
        Ok(req)
    }
}

/// Which servers an `https://` client trusts: a PEM CA, or the system's roots.
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    pub ca_pem: Option<Vec<u8>>,
    /// PEM certificate and key presented to servers that require one
    /// (mutual TLS).
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
}

impl ClientTls {
    fn config(&self) -> ClientTlsConfig {
        let c = match &self.ca_pem {
            Some(pem) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        match &self.identity_pem {
            Some((cert, key)) => c.identity(tonic::transport::Identity::from_pem(cert, key)),
            None => c,
        }
    }
}

/// An endpoint for `url`; TLS when it is `https://`.
pub fn endpoint(url: &str, tls: &ClientTls) -> Result<Endpoint, tonic::transport::Error> {
    let e = Endpoint::from_shared(url.to_string())?;
    if url.starts_with("https://") {
        e.tls_config(tls.config())
    } else {
        Ok(e)
    }
}

/// How this process's own clients (edge → distributor, standby → primary,
/// edge → IVR runner) identify themselves: set once at start from `[access]
/// cluster_token` and `[grpc.tls] ca`, so every internal client sends the same
/// without threading it through each constructor.
static SITE: OnceLock<(Credentials, ClientTls)> = OnceLock::new();

/// Sets the site identity; a second call is ignored (first wins).
pub fn set_site_identity(creds: Credentials, tls: ClientTls) {
    let _ = SITE.set((creds, tls));
}

/// The site's credentials (none until [`set_site_identity`]).
pub fn site_credentials() -> Credentials {
    SITE.get().map(|(c, _)| c.clone()).unwrap_or_default()
}

/// An endpoint for a peer of this site (TLS trust from the site identity).
pub fn site_endpoint(url: &str) -> Result<Endpoint, tonic::transport::Error> {
    let tls = SITE.get().map(|(_, t)| t.clone()).unwrap_or_default();
    endpoint(url, &tls)
}

/// `channel` sending the site's credentials with every request.
pub fn site_authed(channel: Channel) -> AuthChannel {
    authed(channel, &site_credentials())
}

/// `channel` sending `creds` with every request.
pub fn authed(channel: Channel, creds: &Credentials) -> AuthChannel {
    InterceptedService::new(channel, creds.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_is_base64_of_id_colon_password() {
        let c = Credentials::basic("alice", "pw");
        let h = c
            .header
            .as_ref()
            .map(|h| h.to_str().unwrap_or_default().to_string());
        assert_eq!(h.as_deref(), Some("Basic YWxpY2U6cHc="));
        assert!(Credentials::bearer("").is_none());
        assert!(Credentials::bearer("a\nb").is_none());
    }
}
