//! The server: accepts clients on a TCP listener, one task per session, each session under a
//! timeout and isolated from the others (a failing or hostile client ends its own session
//! only). Logs one structured line per session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tracing::{info, warn};
use veil_gc::Garbler;
use veil_gmw::{GmwParty, PartyId};
use veil_net::{Channel, ChannelConfig, Identity, PublicKey, Stats};
use veil_nn::compile::{compile, Architecture, CompiledModel, Outputs};
use veil_nn::quant::QuantModel;

use crate::wire::{Hello, Protocol, Request, Welcome, MAX_QUERY, WIRE_VERSION};
use crate::{gmw, he, yao, SessionError};

/// What a server serves and how.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The model (the server's secret).
    pub model: QuantModel,
    /// Protocols offered.
    pub protocols: Vec<Protocol>,
    /// Whether a client that asks for logits gets them (Yao and GMW; under HE the client
    /// always decrypts the logits).
    pub allow_logits: bool,
    /// Channel limits and timeouts.
    pub channel: ChannelConfig,
    /// Longest a session may last.
    pub session_timeout: Duration,
    /// Largest evaluation key an HE client may upload.
    pub max_key_bytes: u64,
    /// How sessions are protected on the wire.
    pub security: ServerSecurity,
    /// Sessions served at once; further connections wait (in the order they arrived) for one
    /// to end, which bounds the server's memory.
    pub max_sessions: usize,
}

/// How a server protects its sessions.
#[derive(Clone, Debug)]
pub enum ServerSecurity {
    /// Every session starts with the Noise IK handshake (`veil_net::secure`) under this
    /// identity, whose public key clients pin; with `allowed_clients`, a client whose key is
    /// not listed is refused before any protocol message.
    Noise {
        /// The server's long-term identity.
        identity: Arc<Identity>,
        /// The client keys served, or `None` for any client.
        allowed_clients: Option<Arc<[PublicKey]>>,
    },
    /// No handshake and no encryption: for measurements on a trusted network only.
    InsecurePlaintext,
}

impl ServerConfig {
    /// Serves `model` by every protocol, logits allowed, with default limits, encrypted under a
    /// fresh identity (see [`public_key`](Self::public_key)) for any client.
    pub fn new(model: QuantModel) -> ServerConfig {
        ServerConfig {
            model,
            protocols: Protocol::ALL.to_vec(),
            allow_logits: true,
            channel: ChannelConfig::default(),
            session_timeout: Duration::from_secs(600),
            max_key_bytes: 1 << 30,
            security: ServerSecurity::Noise {
                identity: Arc::new(Identity::generate()),
                allowed_clients: None,
            },
            max_sessions: 128,
        }
    }

    /// The public key clients must pin, `None` for a plaintext server.
    pub fn public_key(&self) -> Option<PublicKey> {
        match &self.security {
            ServerSecurity::Noise { identity, .. } => Some(identity.public()),
            ServerSecurity::InsecurePlaintext => None,
        }
    }
}

/// A model prepared for serving: its architecture, its two compiled circuits and their
/// server inputs.
pub struct Served {
    config: ServerConfig,
    architecture: Architecture,
    class_only: (CompiledModel, Vec<Vec<bool>>),
    with_logits: (CompiledModel, Vec<Vec<bool>>),
}

impl Served {
    /// Compiles the model's circuits.
    pub fn new(config: ServerConfig) -> Result<Served, SessionError> {
        let architecture = Architecture::of(&config.model)?;
        let prep = |o: Outputs| -> Result<(CompiledModel, Vec<Vec<bool>>), SessionError> {
            let c = compile(&config.model, o)?;
            let inputs = c.server_inputs(&config.model)?;
            Ok((c, inputs))
        };
        Ok(Served {
            class_only: prep(Outputs::Class)?,
            with_logits: prep(Outputs::ClassAndLogits)?,
            architecture,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }
}

/// What one session did.
#[derive(Clone, Debug)]
pub struct SessionSummary {
    /// Its protocol, once known.
    pub protocol: Option<Protocol>,
    /// Inputs classified.
    pub inputs: u64,
    /// Channel counters.
    pub stats: Stats,
}

/// Accepts clients forever, one task per session.
pub async fn serve(listener: TcpListener, served: Arc<Served>) -> std::io::Result<()> {
    let mut next_id = 0u64;
    let slots = Arc::new(tokio::sync::Semaphore::new(
        served.config.max_sessions.max(1),
    ));
    loop {
        // The semaphore is never closed, so acquiring only waits.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        let id = next_id;
        let served = served.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let t0 = Instant::now();
            let mut ch = Channel::from_tcp(sock, served.config.channel);
            let r =
                tokio::time::timeout(served.config.session_timeout, accept(&mut ch, &served)).await;
            let ms = t0.elapsed().as_millis() as u64;
            let stats = ch.stats();
            match r {
                Ok(Ok(s)) => info!(
                    session = id, %peer, protocol = ?s.protocol, inputs = s.inputs, ms,
                    bytes_in = stats.bytes_received, bytes_out = stats.bytes_sent, "session done"
                ),
                Ok(Err(e)) => warn!(session = id, %peer, ms, error = %e, "session failed"),
                Err(_) => warn!(session = id, %peer, ms, "session timed out"),
            }
        });
    }
}

/// Runs one session on an accepted channel: the secure handshake the configuration asks for,
/// then [`session`].
pub async fn accept(ch: &mut Channel, served: &Served) -> Result<SessionSummary, SessionError> {
    if let ServerSecurity::Noise {
        identity,
        allowed_clients,
    } = &served.config.security
    {
        let key = ch
            .secure_server(identity, allowed_clients.as_deref())
            .await?;
        let key = key.to_string();
        tracing::debug!(client_key = &key[..16], "client authenticated");
    }
    session(ch, served).await
}

/// Runs one session on an accepted channel that is already secured (or plaintext on purpose).
pub async fn session(ch: &mut Channel, served: &Served) -> Result<SessionSummary, SessionError> {
    let hello: Hello = ch.recv().await?;
    let refuse = |why: String| Welcome::Refused(why);
    let verdict = if hello.version != WIRE_VERSION {
        Some(format!(
            "wire version {} (this server speaks {WIRE_VERSION})",
            hello.version
        ))
    } else if !served.config.protocols.contains(&hello.protocol) {
        Some(format!("protocol {} is not offered", hello.protocol))
    } else {
        None
    };
    if let Some(why) = verdict {
        ch.send(&refuse(why.clone())).await?;
        ch.flush().await?;
        return Err(SessionError::Refused(why));
    }
    let logits =
        hello.protocol == Protocol::He || (hello.want_logits && served.config.allow_logits);
    ch.send(&Welcome::Accepted {
        architecture: served.architecture.clone(),
        logits,
    })
    .await?;
    ch.flush().await?;
    let (compiled, server_inputs) = if logits {
        &served.with_logits
    } else {
        &served.class_only
    };
    let mut summary = SessionSummary {
        protocol: Some(hello.protocol),
        inputs: 0,
        stats: Stats::default(),
    };
    let mut rng = veil_ot::secure_rng();
    match hello.protocol {
        Protocol::He => {
            let server = std::sync::Arc::new(
                he::receive_key(ch, &served.config.model, served.config.max_key_bytes).await?,
            );
            while let Some(n) = next_query(ch).await? {
                for _ in 0..n {
                    he::serve_one(ch, &server).await?;
                }
                summary.inputs += u64::from(n);
            }
        }
        Protocol::Yao => {
            let mut garbler = Garbler::new(&mut rng);
            while let Some(n) = next_query(ch).await? {
                for _ in 0..n {
                    yao::serve_one(ch, &mut garbler, compiled, server_inputs).await?;
                }
                summary.inputs += u64::from(n);
            }
        }
        Protocol::Gmw => {
            let mut party = GmwParty::new(PartyId::P0, &mut rng);
            // Triples for a first full batch, before any query arrives.
            party
                .offline(ch, gmw::triples_for(compiled, gmw::LANES))
                .await?;
            while let Some(n) = next_query(ch).await? {
                let mut left = n as usize;
                while left > 0 {
                    let lanes = left.min(gmw::LANES);
                    gmw::serve_batch(ch, &mut party, compiled, server_inputs, lanes).await?;
                    left -= lanes;
                }
                summary.inputs += u64::from(n);
            }
        }
    }
    summary.stats = ch.stats();
    Ok(summary)
}

async fn next_query(ch: &mut Channel) -> Result<Option<u32>, SessionError> {
    match ch.recv::<Request>().await? {
        Request::Bye => Ok(None),
        Request::Query { count } if (1..=MAX_QUERY).contains(&count) => Ok(Some(count)),
        Request::Query { count } => Err(SessionError::Protocol(format!("query of {count} inputs"))),
    }
}
