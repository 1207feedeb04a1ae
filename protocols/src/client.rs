//! The client: connects, shakes hands, sets its protocol up, and classifies inputs.

use std::sync::Arc;
use std::time::Duration;
use veil_fhe::{FheClient, PublicShape};
use veil_gc::Evaluator;
use veil_gmw::{GmwParty, PartyId};

use veil_net::{Channel, ChannelConfig, Identity, PublicKey, Stats};
use veil_nn::compile::{compile_architecture, CompileError, CompiledModel, Outputs};
use veil_nn::graph::Architecture;

pub use veil_nn::compile::Prediction;

use crate::wire::{Hello, Protocol, Request, Welcome, MAX_QUERY, WIRE_VERSION};
use crate::{gmw, he, yao, SessionError};

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
        }
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

enum State {
    /// The client's keys and how long it waits for one answer.
    He(Box<FheClient>, Duration),
    Yao(Box<Evaluator>, CompiledModel, Box<veil_gc::PreparedCircuit>),
    Gmw(Box<GmwParty>, CompiledModel, Box<veil_gmw::PreparedCircuit>),
}

/// A connected client session.
pub struct Client {
    ch: Channel,
    protocol: Protocol,
    architecture: Architecture,
    logits: bool,
    state: State,
    setup_stats: Stats,
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
        let (architecture, logits) = match ch.recv::<Welcome>().await? {
            Welcome::Accepted {
                architecture,
                logits,
            } => (architecture, logits),
            Welcome::Refused(why) => return Err(SessionError::Refused(why)),
        };
        architecture
            .validate()
            .map_err(|e| CompileError::InvalidArchitecture(e.to_string()))?;
        let outputs = if logits && options.protocol != Protocol::He {
            Outputs::ClassAndLogits
        } else {
            Outputs::Class
        };
        let mut rng = veil_ot::secure_rng();
        let state = match options.protocol {
            Protocol::He => {
                // The client plans its side from the public architecture alone: the input
                // width, the number of logits and their width (the server plans with the same).
                let shape = PublicShape::of(&architecture).map_err(veil_fhe::FheError::from)?;
                let client = tokio::task::spawn_blocking(move || FheClient::new(shape))
                    .await
                    .map_err(|e| SessionError::Invalid(format!("key generation: {e}")))?;
                he::send_key(&mut ch, &client).await?;
                let patience =
                    he::answer_timeout(options.channel.read_timeout, architecture.activations());
                State::He(Box::new(client), patience)
            }
            Protocol::Yao => {
                let compiled = compile_architecture(&architecture, outputs)?;
                let prepared = Box::new(yao::prepare(&compiled)?);
                State::Yao(Box::new(Evaluator::new(&mut rng)), compiled, prepared)
            }
            Protocol::Gmw => {
                let compiled = compile_architecture(&architecture, outputs)?;
                let prepared = Box::new(gmw::prepare(&compiled)?);
                let mut party = GmwParty::new(PartyId::P1, &mut rng);
                party
                    .offline(&mut ch, gmw::triples_for(&prepared, gmw::LANES))
                    .await?;
                State::Gmw(Box::new(party), compiled, prepared)
            }
        };
        let setup_stats = ch.stats();
        Ok(Client {
            ch,
            protocol: options.protocol,
            architecture,
            logits,
            state,
            setup_stats,
        })
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
        self.logits || self.protocol == Protocol::He
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
        self.ch
            .send(&Request::Query {
                count: inputs.len() as u32,
            })
            .await?;
        let mut out = Vec::with_capacity(inputs.len());
        match &mut self.state {
            State::He(client, patience) => {
                for codes in inputs {
                    out.push(he::query_one(&mut self.ch, client, codes, *patience).await?);
                }
            }
            State::Yao(ev, compiled, prepared) => {
                for codes in inputs {
                    out.push(yao::query_one(&mut self.ch, ev, compiled, prepared, codes).await?);
                }
            }
            State::Gmw(party, compiled, prepared) => {
                for batch in inputs.chunks(gmw::LANES) {
                    out.extend(
                        gmw::query_batch(&mut self.ch, party, compiled, prepared, batch).await?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Ends the session; returns the channel counters.
    pub async fn close(mut self) -> Result<Stats, SessionError> {
        self.ch.send(&Request::Bye).await?;
        let stats = self.ch.stats();
        self.ch.close().await?;
        Ok(stats)
    }
}
