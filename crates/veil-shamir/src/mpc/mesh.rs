//! Setting up the full mesh of channels between `n` parties, with a validated hello.
//!
//! Party `i` listens on `parties[i]`, connects to every party `j > i` (retrying until the
//! connect timeout while `j` starts up) and accepts one connection from every `j < i`. The
//! connecting side sends a [`Hello`] (protocol magic, session id, its index, the index it
//! wants, the number of parties and the degree); the accepting side checks every field,
//! rejects unknown or repeated indices, and answers with its own hello, which the connecting
//! side checks in turn. The whole setup must finish within the channel configuration's
//! `connect_timeout`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use veil_net::{Channel, ChannelConfig};

use crate::error::MpcError;
use crate::mpc::party::{Party, PartyConfig};

const MAGIC: [u8; 8] = *b"veilbgw1";

/// The first message on every link of the mesh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol magic and version, `veilbgw1`.
    pub magic: [u8; 8],
    /// The session id every party was configured with.
    pub session: [u8; 16],
    /// The sender's party index.
    pub from: u32,
    /// The receiver's party index, as the sender believes it.
    pub to: u32,
    /// Number of parties.
    pub parties: u32,
    /// Sharing degree `t`.
    pub degree: u32,
}

impl Hello {
    fn new(config: &PartyConfig, to: usize) -> Self {
        Hello {
            magic: MAGIC,
            session: config.session_id,
            from: config.index as u32,
            to: to as u32,
            parties: config.parties.len() as u32,
            degree: config.threshold as u32,
        }
    }

    /// Checks a hello received by `config`'s party; `from` restricts the sender's index.
    fn check(&self, config: &PartyConfig, from: impl Fn(usize) -> bool) -> Result<usize, String> {
        if self.magic != MAGIC {
            return Err("wrong protocol magic".into());
        }
        if self.session != config.session_id {
            return Err("session id differs".into());
        }
        if self.parties as usize != config.parties.len() || self.degree as usize != config.threshold
        {
            return Err(format!(
                "peer runs {} parties with degree {}, this party {} with degree {}",
                self.parties,
                self.degree,
                config.parties.len(),
                config.threshold
            ));
        }
        if self.to as usize != config.index {
            return Err(format!(
                "peer addressed party {}, this is party {}",
                self.to, config.index
            ));
        }
        let f = self.from as usize;
        if !from(f) {
            return Err(format!("unexpected sender index {f}"));
        }
        Ok(f)
    }
}

fn handshake(peer: impl ToString, reason: impl Into<String>) -> MpcError {
    MpcError::Handshake {
        peer: peer.to_string(),
        reason: reason.into(),
    }
}

/// Binds `config.parties[config.index]` and sets up the mesh.
///
/// # Errors
///
/// As [`establish_with_listener`], plus [`MpcError::Listen`] if binding fails.
pub async fn establish(config: PartyConfig) -> Result<Party, MpcError> {
    config.validate()?;
    let addr = config.parties[config.index];
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MpcError::Listen { addr, source })?;
    establish_with_listener(config, listener).await
}

/// Sets up the mesh using an already bound listener (for callers that bind port 0 first).
///
/// # Errors
///
/// [`MpcError::InvalidArgument`] for a bad configuration, [`MpcError::Handshake`] if a peer's
/// hello does not match, [`MpcError::SetupTimeout`] if the mesh is not complete within the
/// connect timeout, [`MpcError::Net`] / [`MpcError::Listen`] for channel and socket failures.
pub async fn establish_with_listener(
    config: PartyConfig,
    listener: TcpListener,
) -> Result<Party, MpcError> {
    config.validate()?;
    let n = config.parties.len();
    let me = config.index;
    let limit = config.channel.connect_timeout;
    let setup = async {
        let accept_all = accept_lower(&config, &listener);
        let connect_all = connect_higher(&config);
        let (lower, higher) = tokio::try_join!(accept_all, connect_all)?;
        let mut peers: Vec<Option<Channel>> = (0..n).map(|_| None).collect();
        for (j, ch) in lower.into_iter().chain(higher) {
            peers[j] = Some(ch);
        }
        Ok::<_, MpcError>(peers)
    };
    let peers = match tokio::time::timeout(limit, setup).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(MpcError::SetupTimeout(format!(
                "party {me} could not reach all {n} parties within {limit:?}"
            )))
        }
    };
    Party::from_channels(config, peers)
}

async fn accept_lower(
    config: &PartyConfig,
    listener: &TcpListener,
) -> Result<Vec<(usize, Channel)>, MpcError> {
    let me = config.index;
    let mut got: Vec<(usize, Channel)> = Vec::with_capacity(me);
    while got.len() < me {
        let (stream, addr) = listener.accept().await.map_err(|source| MpcError::Listen {
            addr: config.parties[me],
            source,
        })?;
        let mut ch = Channel::from_tcp(stream, config.channel);
        let key = match &config.security {
            Some(sec) => Some(
                ch.secure_server(&sec.identity, Some(&sec.keys[..me]))
                    .await
                    .map_err(|e| handshake(addr, format!("secure channel: {e}")))?,
            ),
            None => None,
        };
        let hello: Hello = ch
            .recv()
            .await
            .map_err(|e| handshake(addr, format!("no valid hello: {e}")))?;
        let from = hello
            .check(config, |f| f < me)
            .map_err(|r| handshake(addr, r))?;
        if let (Some(sec), Some(key)) = (&config.security, key) {
            if sec.keys[from] != key {
                return Err(handshake(
                    addr,
                    format!("claims to be party {from} but holds another party's key"),
                ));
            }
        }
        if got.iter().any(|(j, _)| *j == from) {
            return Err(handshake(from, "second connection from the same party"));
        }
        ch.send(&Hello::new(config, from))
            .await
            .map_err(|source| MpcError::Net { peer: from, source })?;
        ch.flush()
            .await
            .map_err(|source| MpcError::Net { peer: from, source })?;
        got.push((from, ch));
    }
    Ok(got)
}

async fn connect_higher(config: &PartyConfig) -> Result<Vec<(usize, Channel)>, MpcError> {
    let me = config.index;
    let n = config.parties.len();
    let mut out = Vec::with_capacity(n - me - 1);
    for j in me + 1..n {
        let mut ch = connect_retry(config.parties[j], config.channel).await;
        if let Some(sec) = &config.security {
            ch.secure_client(&sec.identity, &sec.keys[j])
                .await
                .map_err(|e| handshake(j, format!("secure channel: {e}")))?;
        }
        ch.send(&Hello::new(config, j))
            .await
            .map_err(|source| MpcError::Net { peer: j, source })?;
        let reply: Hello = ch
            .recv()
            .await
            .map_err(|e| handshake(j, format!("no valid hello: {e}")))?;
        reply
            .check(config, |f| f == j)
            .map_err(|r| handshake(j, r))?;
        out.push((j, ch));
    }
    Ok(out)
}

/// Connects, retrying while the peer is not listening yet; the caller bounds the total time.
async fn connect_retry(addr: SocketAddr, config: ChannelConfig) -> Channel {
    let mut wait = Duration::from_millis(10);
    loop {
        if let Ok(ch) = Channel::connect(addr, config).await {
            return ch;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_millis(200));
    }
}

/// `n` parties connected over loopback TCP in this process, for tests and benchmarks: binds
/// `n` ephemeral ports on 127.0.0.1 and sets up the mesh concurrently. Party `i` uses `seeds`'s
/// `i`-th entry for its randomness if given, otherwise the OS.
///
/// # Errors
///
/// As [`establish_with_listener`].
pub async fn local_tcp_mesh(
    n: usize,
    threshold: usize,
    channel: ChannelConfig,
    seeds: Option<Vec<[u8; 32]>>,
) -> Result<Vec<Party>, MpcError> {
    let mut listeners = Vec::with_capacity(n);
    let mut addrs = Vec::with_capacity(n);
    for _ in 0..n {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let l = TcpListener::bind(any)
            .await
            .map_err(|source| MpcError::Listen { addr: any, source })?;
        let addr = l
            .local_addr()
            .map_err(|source| MpcError::Listen { addr: any, source })?;
        addrs.push(addr);
        listeners.push(l);
    }
    let mut session = [0u8; 16];
    rand::RngCore::fill_bytes(&mut crate::secure_rng(), &mut session);
    let futs: Vec<_> = listeners
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let mut config = PartyConfig::new(i, addrs.clone(), threshold)
                .with_session_id(session)
                .with_channel(channel);
            if let Some(s) = &seeds {
                config = config.with_seed(s.get(i).copied().unwrap_or([i as u8; 32]));
            }
            establish_with_listener(config, l)
        })
        .collect();
    crate::mpc::wire::try_join_all(futs).await
}
