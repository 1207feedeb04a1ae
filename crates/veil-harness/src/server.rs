//! A private-inference server for a model, the security of its sessions, and the identity
//! files of the encrypted channels.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use veil_net::{Identity, PublicKey};
use veil_nn::Model;
use veil_protocols::{Protocol, Served, ServerConfig, ServerSecurity};

use crate::runtime::multi_thread;

/// Parses a comma-separated list of protocol names (`he,yao,gmw`).
pub fn parse_protocols(list: &str) -> Result<Vec<Protocol>> {
    list.split(',')
        .map(|p| p.trim().parse::<Protocol>().map_err(anyhow::Error::msg))
        .collect()
}

/// How a server protects its sessions.
#[derive(Debug, Clone, Default)]
pub struct ServeSecurity {
    /// The server's identity file (a fresh identity when absent).
    pub identity: Option<PathBuf>,
    /// Client keys served (any client when empty); they are trusted with GMW.
    pub allow: Vec<PublicKey>,
    /// Serve GMW, which is secure against semi-honest clients only, to every client.
    pub trust_clients: bool,
    /// Serve without encryption or authentication.
    pub plaintext: bool,
}

impl ServeSecurity {
    fn resolve(self) -> Result<ServerSecurity> {
        if self.plaintext {
            return Ok(ServerSecurity::InsecurePlaintext);
        }
        let identity = match &self.identity {
            Some(path) => Identity::load(path)?,
            None => Identity::generate(),
        };
        Ok(ServerSecurity::Noise {
            identity: Arc::new(identity),
            allowed_clients: (!self.allow.is_empty()).then(|| self.allow.into()),
        })
    }
}

/// What a server offers.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The protocols offered.
    pub protocols: Vec<Protocol>,
    /// The address to listen on (port 0 picks a free port).
    pub listen: String,
    /// Whether clients may ask for logits (Yao and GMW; HE clients always decrypt them).
    pub allow_logits: bool,
    /// Longest a client session may last (at least one second).
    pub session_timeout: Duration,
    /// How sessions are protected.
    pub security: ServeSecurity,
    /// Most inputs a session may have classified.
    pub max_queries_per_session: u64,
    /// Most inputs a client (its identity on an allow-list, else its address) may have
    /// classified per `query_window`.
    pub max_queries_per_window: u64,
    /// The window of `max_queries_per_window`.
    pub query_window: Duration,
}

/// Serves `model` until the process ends or the listener fails. Once listening, calls
/// `on_listening` with the bound address and the public key clients pin (`None` for a
/// plaintext server), before the first client is accepted. Logs what is served, and any
/// semi-honest or insecure protocol offered, through `tracing`.
pub fn serve(
    model: &Model,
    options: ServeOptions,
    on_listening: impl FnOnce(SocketAddr, Option<PublicKey>) -> Result<()>,
) -> Result<()> {
    let mut config = ServerConfig::new(model.quantized.clone());
    config.protocols = options.protocols;
    config.allow_logits = options.allow_logits;
    config.session_timeout = options.session_timeout.max(Duration::from_secs(1));
    config.max_queries_per_session = options.max_queries_per_session;
    config.max_queries_per_window = options.max_queries_per_window;
    config.query_window = options.query_window.max(Duration::from_secs(1));
    config.trust_clients = options.security.trust_clients;
    let allow_list = !options.security.allow.is_empty();
    config.security = options.security.resolve()?;
    let semi_honest: Vec<String> = config
        .protocols
        .iter()
        .filter(|p| p.requires_trust())
        .map(|p| p.to_string())
        .collect();
    if !semi_honest.is_empty() {
        let names = semi_honest.join(", ");
        if config.trust_clients {
            tracing::warn!(
                "serving {names} to every client (--trust-clients): it is secure only against \
                 semi-honest clients"
            );
        } else if allow_list {
            tracing::info!("serving {names} (semi-honest) only to the --allow-client keys");
        } else {
            tracing::info!(
                "{names} is semi-honest and served only to trusted clients; no client is \
                 trusted (pass --trust-clients or --allow-client KEY), so {names} clients are \
                 refused"
            );
        }
    }
    for p in config.protocols.iter().filter(|p| p.insecure()) {
        tracing::warn!(
            "offering {p}, which is INSECURE: its clients send their inputs in the clear (a \
             baseline for measurements)"
        );
    }
    let key = config.public_key();
    let served = Arc::new(Served::new(config)?);
    let listen = options.listen;
    multi_thread()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        on_listening(addr, key)?;
        if key.is_none() {
            tracing::warn!("serving WITHOUT encryption or authentication (--insecure-plaintext)");
        }
        veil_protocols::serve(listener, served).await?;
        Ok(())
    })
}

/// Writes a fresh identity to the file `out` (private, mode 0600; never overwritten) and
/// returns its public key.
pub fn new_identity(out: &Path) -> Result<PublicKey> {
    let id = Identity::generate();
    id.save(out)?;
    Ok(id.public())
}

/// The public key of the identity in the file `path`.
pub fn identity_key(path: &Path) -> Result<PublicKey> {
    Ok(Identity::load(path)?.public())
}
