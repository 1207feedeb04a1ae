//! The client: connects, shakes hands, sets its protocol up, and classifies inputs.

use std::sync::Arc;
use veil_net::{Channel, ChannelConfig, Identity, PublicKey, Stats};
use veil_nn::compile::CompileError;
use veil_nn::graph::Architecture;

pub use veil_nn::compile::Prediction;

use crate::registry::ClientSession;
use crate::wire::{Hello, Protocol, Request, Welcome, MAX_QUERY, WIRE_VERSION};
use crate::SessionError;

/// How a client connects.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// The protocol.
    pub protocol: Protocol,
    /// Ask for the logits too (Yao and GMW; HE always yields them).
    pub want_logits: bool,
    /// Channel limits and timeouts.
    pub channel: ChannelConfig,
    /// How the session is protected on the wire.
    pub security: ClientSecurity,
    /// HE only: keys made once and used by every session that carries them, so that a server
    /// that stored the evaluation key of this client's identity needs no second upload
    /// ([`crate::he::HeKeys`]); without them, each HE session makes fresh keys.
    pub he_keys: Option<Arc<crate::he::HeKeys>>,
}

/// How a client protects its session.
#[derive(Clone, Debug)]
pub enum ClientSecurity {
    /// The Noise IK handshake (`veil_net::secure`) against the server whose public key is
    /// pinned here; the client authenticates with `identity`, or with a fresh key per session
    /// when `None` (enough unless the server keeps an allow-list).
    Noise {
        /// The server's public key.
        server_key: PublicKey,
        /// This client's long-term identity.
        identity: Option<Arc<Identity>>,
    },
    /// No handshake and no encryption: for measurements on a trusted network only.
    InsecurePlaintext,
}

impl ClientOptions {
    /// Defaults for `protocol`, encrypted, with the server's public key pinned.
    pub fn new(protocol: Protocol, server_key: PublicKey) -> ClientOptions {
        ClientOptions::with_security(
            protocol,
            ClientSecurity::Noise {
                server_key,
                identity: None,
            },
        )
    }

    /// Defaults for `protocol` without encryption (for a plaintext server, in measurements).
    pub fn insecure_plaintext(protocol: Protocol) -> ClientOptions {
        ClientOptions::with_security(protocol, ClientSecurity::InsecurePlaintext)
    }

    /// Defaults for `protocol` under `security`.
    pub fn with_security(protocol: Protocol, security: ClientSecurity) -> ClientOptions {
        ClientOptions {
            protocol,
            want_logits: false,
            channel: ChannelConfig::default(),
            security,
            he_keys: None,
        }
    }

    /// Uses `keys` for HE sessions instead of fresh keys per session.
    #[must_use]
    pub fn with_he_keys(mut self, keys: Arc<crate::he::HeKeys>) -> ClientOptions {
        self.he_keys = Some(keys);
        self
    }

    /// Authenticates with `identity` (for servers with an allow-list).
    #[must_use]
    pub fn with_identity(mut self, identity: Arc<Identity>) -> ClientOptions {
        if let ClientSecurity::Noise { identity: id, .. } = &mut self.security {
            *id = Some(identity);
        }
        self
    }
}

/// A connected client session.
pub struct Client {
    ch: Channel,
    protocol: Protocol,
    architecture: Architecture,
    logits: bool,
    session: Box<dyn ClientSession>,
    setup_stats: Stats,
    queries_left: u64,
}

impl Client {
    /// Connects to `addr` and sets the session up: for HE, key generation and key upload;
    /// for GMW, the first triples.
    pub async fn connect(addr: &str, options: ClientOptions) -> Result<Client, SessionError> {
        let ch = Channel::connect(addr, options.channel).await?;
        Client::start(ch, options).await
    }

    /// Sets a session up on an open channel (for instance an in-memory one), starting with
    /// the secure handshake the options ask for.
    pub async fn start(mut ch: Channel, options: ClientOptions) -> Result<Client, SessionError> {
        if let ClientSecurity::Noise {
            server_key,
            identity,
        } = &options.security
        {
            let fresh;
            let identity = match identity {
                Some(id) => id.as_ref(),
                None => {
                    fresh = Identity::generate();
                    &fresh
                }
            };
            ch.secure_client(identity, server_key).await?;
        }
        ch.send(&Hello {
            version: WIRE_VERSION,
            protocol: options.protocol,
            want_logits: options.want_logits,
        })
        .await?;
        ch.flush().await?;
        let (architecture, logits, queries_left) = match ch.recv::<Welcome>().await? {
            Welcome::Accepted {
                architecture,
                logits,
                queries,
            } => (architecture, logits, queries),
            Welcome::Refused(why) => return Err(SessionError::Refused(why)),
        };
        architecture
            .validate()
            .map_err(|e| CompileError::InvalidArchitecture(e.to_string()))?;
        let session = crate::registry::get(options.protocol)
            .connect(&mut ch, &architecture, logits, &options)
            .await?;
        let setup_stats = ch.stats();
        Ok(Client {
            ch,
            protocol: options.protocol,
            architecture,
            logits,
            session,
            setup_stats,
            queries_left,
        })
    }

    /// Inputs this session may still have classified: the server's query budget
    /// ([`crate::budget`]), as its welcome said, less what the session has sent since.
    pub fn queries_left(&self) -> u64 {
        self.queries_left
    }

    /// The protocol of this session.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The model's public architecture.
    pub fn architecture(&self) -> &Architecture {
        &self.architecture
    }

    /// Whether predictions carry logits.
    pub fn reveals_logits(&self) -> bool {
        self.logits || crate::registry::get(self.protocol).always_reveals_logits()
    }

    /// Channel counters so far.
    pub fn stats(&self) -> Stats {
        self.ch.stats()
    }

    /// Channel counters of the setup (handshake, keys, OT setup, first triples).
    pub fn setup_stats(&self) -> Stats {
        self.setup_stats
    }

    /// Classifies input codes (each `inputs` codes of the architecture's width): one query.
    pub async fn classify(&mut self, inputs: &[Vec<u8>]) -> Result<Vec<Prediction>, SessionError> {
        if inputs.is_empty() || inputs.len() > MAX_QUERY as usize {
            return Err(SessionError::Invalid(format!(
                "{} inputs in one query",
                inputs.len()
            )));
        }
        if inputs.len() as u64 > self.queries_left {
            return Err(SessionError::Refused(format!(
                "the server's query budget leaves this session {} more inputs, and this query \
                 has {}",
                self.queries_left,
                inputs.len()
            )));
        }
        self.queries_left -= inputs.len() as u64;
        self.ch
            .send(&Request::Query {
                count: inputs.len() as u32,
            })
            .await?;
        self.session.classify(&mut self.ch, inputs).await
    }

    /// Runs the offline phase of the next `count` inputs now, before they exist, so that
    /// their queries spend only the online phase: Yao garbles `count` evaluations ahead (the
    /// client then holds their tables, 32 bytes per AND gate each, and at most
    /// [`MAX_AHEAD`](crate::wire::MAX_AHEAD) at once), GMW makes the triples of up to one batch of `count` inputs;
    /// for HE and `clear` it does nothing.
    pub async fn prepare(&mut self, count: usize) -> Result<(), SessionError> {
        if count == 0 || count > MAX_QUERY as usize {
            return Err(SessionError::Invalid(format!(
                "preparation of {count} inputs"
            )));
        }
        self.session.prepare(&mut self.ch, count).await
    }

    /// Ends the session; returns the channel counters.
    pub async fn close(mut self) -> Result<Stats, SessionError> {
        self.ch.send(&Request::Bye).await?;
        let stats = self.ch.stats();
        self.ch.close().await?;
        Ok(stats)
    }
}
