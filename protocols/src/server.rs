//! The server: accepts clients on a TCP listener, one task per connection, each session under a
//! timeout and isolated from the others (a failing or hostile client ends its own session
//! only). Logs one structured line per session.
//!
//! # Admission
//!
//! [`serve`] never waits before accepting. Each accepted connection is first *pending*: it must
//! complete the secure handshake and send its [`Hello`] within
//! [`ServerConfig::handshake_timeout`]. At most
//! [`max_pending_handshakes`](ServerConfig::max_pending_handshakes) connections are pending at
//! once, and about [`max_pending_per_address`](ServerConfig::max_pending_per_address) from one
//! source address (an IPv4 address or an IPv6 /64). A new connection is always admitted; when
//! its address is at its cap, the oldest pending connection of that address that is *idle* (its
//! first handshake frame still not in, [`IDLE_GRACE`] after the server started waiting for it)
//! is closed to make room, and when the server is at its total cap, the oldest idle one of all,
//! or failing that the oldest of all. Each closure is logged as a warning.
//!
//! Evicting the oldest rather than refusing the newest means that idle connections cannot lock
//! honest clients out: an honest client sends its first frame as soon as it connects and
//! finishes in one round trip, so a flood must open `max_pending_handshakes` connections within
//! that round trip to push it out, while a refusal of the newest would turn away every honest
//! client for as long as the flood lasts. Sparing connections that are not idle (or not idle
//! for long) keeps a burst of honest clients behind one address (a NAT, a load test) from
//! evicting each other; an address that goes over its cap that way is still held by the total.
//!
//! Only then does the client wait for one of the [`max_sessions`](ServerConfig::max_sessions)
//! session slots, in arrival order, for at most [`queue_timeout`](ServerConfig::queue_timeout)
//! and with at most [`max_queued_sessions`](ServerConfig::max_queued_sessions) clients waiting;
//! a client that cannot get a slot is told that the server is busy. The session itself runs under
//! [`session_timeout`](ServerConfig::session_timeout).
//!
//! # Trust
//!
//! GMW and mixed are secure only against a semi-honest client: a client that deviates from
//! them can learn more of the model than its outputs. The server serves them only to clients
//! it trusts (the protocols whose registry entry requires trust): every
//! client when [`ServerConfig::trust_clients`] is set, otherwise the clients on the allow-list
//! of [`ServerSecurity::Noise`]. Yao and HE are served to any client.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};
use tracing::{info, warn};
use veil_net::{Channel, ChannelConfig, Identity, PublicKey, Stats, FRAME_HEADER_LEN};
use veil_nn::compile::{compile, CompiledModel, Outputs};
use veil_nn::graph::{Architecture, QuantGraph};

use crate::budget::{QueryLedger, SessionBudget};
use crate::wire::{Hello, Protocol, Request, Welcome, MAX_QUERY, WIRE_VERSION};
use crate::{budget, he, SessionError};

/// What a server serves and how.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The model (the server's secret).
    pub model: QuantGraph,
    /// Protocols offered. Default: every protocol that protects the client's input and the
    /// model ([`Protocol::secure`]); `clear`, which protects nothing, only when listed here.
    pub protocols: Vec<Protocol>,
    /// Whether a client that asks for logits gets them (Yao, GMW and mixed). Under HE the
    /// client always decrypts the logits, so a server without them refuses HE sessions with a
    /// message saying why.
    pub allow_logits: bool,
    /// Channel limits and timeouts.
    pub channel: ChannelConfig,
    /// Longest a session may last.
    pub session_timeout: Duration,
    /// Largest evaluation key an HE client may upload. Default [`he::key_limit`], the size of
    /// an honest key of veil-fhe's parameter set (about 30 MB); a larger value acts as that
    /// limit, since no conformant key is larger.
    pub max_key_bytes: u64,
    /// Memory all HE sessions may hold at once, in bytes: each HE session holds one evaluation
    /// key's share ([`veil_fhe::key_memory_bytes`], about 274 MB) from before its welcome until
    /// it ends, and a client that finds the budget full waits up to
    /// [`he::ADMISSION_WAIT`] and is then refused with a message saying why. Default
    /// [`he::DEFAULT_HE_MEMORY_BUDGET`] (2 GiB: seven HE sessions at once); a budget below one
    /// key's share refuses every HE session.
    pub he_memory_budget: u64,
    /// Memory the store of evaluation keys kept across sessions may hold, in bytes, in shares
    /// of [`veil_fhe::key_memory_bytes`] (about 274 MB) per key; the least recently used key
    /// goes first. A client whose identity and key hash match a stored key uploads nothing
    /// (`he/SPEC.md`). Default [`he::DEFAULT_KEY_STORE_BYTES`] (4 GiB: 15 keys); zero keeps no
    /// key beyond its session. The store adds to [`he_memory_budget`](Self::he_memory_budget).
    pub he_key_store_bytes: u64,
    /// How sessions are protected on the wire.
    pub security: ServerSecurity,
    /// Sessions served at once, which bounds the server's memory (default 128). A client takes
    /// a slot only once it has completed the handshake and sent its hello; further clients wait
    /// for one in the order they got there (see [`queue_timeout`](Self::queue_timeout)).
    pub max_sessions: usize,
    /// Longest a connection may take from being accepted to the client's hello: the secure
    /// handshake (one round trip) and the first protocol message. Default 5 s: an honest client
    /// needs a round trip and two X25519 operations, well under a second even across continents
    /// with a retransmission or two, while an idle or trickling connection holds a pending place
    /// for no longer than this.
    pub handshake_timeout: Duration,
    /// Connections that may be pending (accepted, hello not yet received) at once, from all
    /// addresses. Default 256: a pending connection holds a socket, a task and, once its first
    /// frame is in, its channel buffers (about 130 KiB), so the pending ones hold at most about
    /// 33 MiB and 256 descriptors, and the server's descriptors stay within the usual limit of
    /// 1024 together with the session slots and the queue. When full, a new connection closes
    /// the oldest idle pending one (see [Admission](self#admission)), or else the oldest.
    pub max_pending_handshakes: usize,
    /// Pending connections from one source address (an IPv4 address, or an IPv6 /64 prefix, the
    /// block one subscriber usually gets). Default 32, an eighth of
    /// [`max_pending_handshakes`](Self::max_pending_handshakes): a flood of idle connections
    /// from one address then closes its own connections, not other addresses'. When reached, a
    /// new connection closes the oldest pending connection of the same address that has been
    /// idle for [`IDLE_GRACE`]; connections that have sent their first frame are spared, so an
    /// honest burst from one address may go over the cap (the total still holds).
    pub max_pending_per_address: usize,
    /// Clients that may wait for a session slot at once, once all slots are taken. Default 256;
    /// a client beyond it is told at once that the server is busy. Waiting clients have
    /// completed the handshake (with an allow-list, they are known), but on an open server
    /// anyone can, so the queue is bounded like the pending connections.
    pub max_queued_sessions: usize,
    /// Longest a client waits for a session slot before it is told that the server is busy.
    /// Default 20 s: a client waits for the server's welcome under its read timeout (30 s by
    /// default), so a client that waits in vain still hears why instead of timing out, with
    /// room left for an HE session's wait for memory ([`he::ADMISSION_WAIT`]).
    pub queue_timeout: Duration,
    /// Serve GMW to every client. GMW is secure only against semi-honest clients (one that
    /// deviates can learn more of the model than its outputs), so by default (`false`) it is
    /// served only to the clients on the allow-list of [`ServerSecurity::Noise`], and refused
    /// to any other with a message saying why. Yao and HE are served to any client either way.
    pub trust_clients: bool,
    /// Most inputs one session may have classified (default
    /// [`budget::DEFAULT_QUERIES_PER_SESSION`]); the welcome tells the client.
    pub max_queries_per_session: u64,
    /// Most inputs one client may have classified per [`query_window`](Self::query_window)
    /// (default [`budget::DEFAULT_QUERIES_PER_WINDOW`]): a client is its identity on a server
    /// with an allow-list, else its source address ([`crate::budget`]).
    pub max_queries_per_window: u64,
    /// The window of [`max_queries_per_window`](Self::max_queries_per_window) (default an
    /// hour).
    pub query_window: Duration,
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
    /// fresh identity (see [`public_key`](Self::public_key)) for any client; GMW, though, only
    /// to trusted clients (see [`trust_clients`](Self::trust_clients)).
    pub fn new(model: impl Into<QuantGraph>) -> ServerConfig {
        ServerConfig {
            model: model.into(),
            protocols: Protocol::secure(),
            allow_logits: true,
            channel: ChannelConfig::default(),
            session_timeout: Duration::from_secs(600),
            max_key_bytes: he::key_limit(),
            he_memory_budget: he::DEFAULT_HE_MEMORY_BUDGET,
            he_key_store_bytes: he::DEFAULT_KEY_STORE_BYTES,
            security: ServerSecurity::Noise {
                identity: Arc::new(Identity::generate()),
                allowed_clients: None,
            },
            max_sessions: 128,
            handshake_timeout: Duration::from_secs(5),
            max_pending_handshakes: 256,
            max_pending_per_address: 32,
            max_queued_sessions: 256,
            queue_timeout: Duration::from_secs(20),
            trust_clients: false,
            max_queries_per_session: budget::DEFAULT_QUERIES_PER_SESSION,
            max_queries_per_window: budget::DEFAULT_QUERIES_PER_WINDOW,
            query_window: budget::DEFAULT_QUERY_WINDOW,
        }
    }

    /// No query budget: for a server whose only clients are the caller's own (a benchmark, a
    /// test), never for one that serves clients it does not know.
    #[must_use]
    pub fn without_query_budget(mut self) -> ServerConfig {
        self.max_queries_per_session = u64::MAX;
        self.max_queries_per_window = u64::MAX;
        self
    }

    /// Who a session's queries are counted under: the client's identity on a server with an
    /// allow-list, else its source address.
    fn budget_client(&self, ch: &Channel) -> String {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        if let (
            ServerSecurity::Noise {
                allowed_clients: Some(_),
                ..
            },
            Some(key),
        ) = (&self.security, ch.peer_key())
        {
            return format!("id:{}", hex(&key.as_bytes()[..16]));
        }
        match ch.peer_addr() {
            Some(addr) => match Source::of(addr.ip()) {
                Source::V4(a) => format!("ip:{a}"),
                Source::V6Prefix(p) => format!("ip6:{p:016x}::/64"),
            },
            None => "local".into(),
        }
    }

    /// Whether the client at the other end of `ch` is trusted with the semi-honest protocols:
    /// every client under [`trust_clients`](Self::trust_clients), otherwise a client that
    /// authenticated with a key on the allow-list.
    pub fn trusts(&self, ch: &Channel) -> bool {
        if self.trust_clients {
            return true;
        }
        match (&self.security, ch.peer_key()) {
            (
                ServerSecurity::Noise {
                    allowed_clients: Some(list),
                    ..
                },
                Some(key),
            ) => veil_net::secure::allowed(list, &key),
            _ => false,
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
    he_budget: he::HeBudget,
    he_keys: he::KeyStore,
    /// Whether HE can answer with the class alone (the model's encrypted argmax plans), or why
    /// not.
    he_argmax: Result<(), String>,
    /// Whether HE can answer with the logits as bootstrapped digits, or why not.
    he_digits: Result<(), String>,
    ledger: QueryLedger,
}

impl Served {
    /// Compiles the model's circuits.
    pub fn new(config: ServerConfig) -> Result<Served, SessionError> {
        let architecture = config.model.architecture.clone();
        let prep = |o: Outputs| -> Result<(CompiledModel, Vec<Vec<bool>>), SessionError> {
            let c = compile(&config.model, o)?;
            let inputs = c.server_inputs(&config.model)?;
            Ok((c, inputs))
        };
        Ok(Served {
            class_only: prep(Outputs::Class)?,
            with_logits: prep(Outputs::ClassAndLogits)?,
            he_budget: he::HeBudget::new(config.he_memory_budget),
            he_keys: he::KeyStore::new(config.he_key_store_bytes),
            he_argmax: veil_fhe::FhePlan::new(&config.model, veil_fhe::polynomial_size())
                .and_then(|p| veil_fhe::ArgmaxPlan::new(&p))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            he_digits: veil_fhe::FhePlan::new(&config.model, veil_fhe::polynomial_size())
                .and_then(|p| veil_fhe::DigitsPlan::new(&p))
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ledger: QueryLedger::new(config.max_queries_per_window, config.query_window),
            architecture,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// The compiled circuit and the server's inputs to it: revealing the logits, or the class
    /// only.
    pub(crate) fn compiled(&self, logits: bool) -> &(CompiledModel, Vec<Vec<bool>>) {
        if logits {
            &self.with_logits
        } else {
            &self.class_only
        }
    }

    /// The memory budget of HE sessions.
    pub(crate) fn he_budget(&self) -> &he::HeBudget {
        &self.he_budget
    }

    /// `Ok` when HE can answer this model with the class alone, else why not.
    pub(crate) fn he_argmax(&self) -> Result<(), &str> {
        self.he_argmax.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// `Ok` when HE can answer this model with its logits as bootstrapped digits, else why not.
    pub(crate) fn he_digits(&self) -> Result<(), &str> {
        self.he_digits.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// The evaluation keys kept across HE sessions.
    pub fn he_keys(&self) -> &he::KeyStore {
        &self.he_keys
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

/// Accepts clients forever, one task per connection; see [Admission](self#admission).
pub async fn serve(listener: TcpListener, served: Arc<Served>) -> std::io::Result<()> {
    let config = &served.config;
    let gates = Arc::new(Gates {
        pending: Mutex::new(Pending::new(
            config.max_pending_handshakes,
            config.max_pending_per_address,
        )),
        slots: Arc::new(Semaphore::new(
            config.max_sessions.clamp(1, Semaphore::MAX_PERMITS),
        )),
        queue: Arc::new(Semaphore::new(
            config.max_queued_sessions.min(Semaphore::MAX_PERMITS),
        )),
    });
    let mut next_id = 0u64;
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors, most likely: give the pending connections time to end.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        next_id += 1;
        let (ticket, evicted) = Ticket::new(&gates, next_id, Source::of(peer.ip()));
        tokio::spawn(connection(
            sock,
            peer,
            ticket,
            evicted,
            served.clone(),
            gates.clone(),
        ));
    }
}

/// What every connection of one [`serve`] shares: the pending connections and the session
/// slots.
struct Gates {
    pending: Mutex<Pending>,
    slots: Arc<Semaphore>,
    queue: Arc<Semaphore>,
}

/// How long a pending connection must have been idle (its task waiting for the first frame,
/// none of which has arrived in full) before its address's cap may close it. An honest client
/// sends its first frame as soon as it connects, so it is idle for half a round trip, plus any
/// delay in its own scheduling (a client process busy with other sessions); a second covers
/// both, and keeps a burst of honest connections from one address (a load test, clients
/// behind one NAT) from evicting each other.
pub const IDLE_GRACE: Duration = Duration::from_secs(1);

/// Largest first frame [`first_frame`] waits for in full: the handshake's first message, or a
/// plaintext client's hello (a few bytes).
const FIRST_FRAME_MAX: usize = 128;

/// The source a pending connection is counted under: an IPv4 address (also when it comes
/// IPv4-mapped on an IPv6 socket), or the /64 prefix of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    V4(Ipv4Addr),
    V6Prefix(u64),
}

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V4(a) => Source::V4(a),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => Source::V4(v4),
                None => Source::V6Prefix((u128::from(a) >> 64) as u64),
            },
        }
    }
}

/// Why a pending connection was closed to make room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Eviction {
    /// Its address had `max_pending_per_address` connections pending.
    PerAddress,
    /// The server had `max_pending_handshakes` connections pending.
    Total,
}

/// One pending connection.
struct Entry {
    source: Source,
    /// Since when its task has waited for a first frame that has not arrived in full; `None`
    /// before the task runs and once the frame is in.
    idle_since: Option<Instant>,
    /// Closes it.
    evict: oneshot::Sender<Eviction>,
}

/// The pending connections (accepted, hello not yet received), oldest first.
///
/// When a new connection's address has `max_per_source` pending, the oldest of them that has
/// been idle for [`IDLE_GRACE`] is closed; if none has, the address goes over its cap for now.
/// Then, when `max_total` are pending, the oldest one idle for [`IDLE_GRACE`] is closed, or,
/// if none is, the oldest of all: the total is a hard bound.
struct Pending {
    max_total: usize,
    max_per_source: usize,
    /// Each pending connection by arrival number.
    by_age: BTreeMap<u64, Entry>,
    /// The arrival numbers of each source's pending connections, oldest first.
    by_source: HashMap<Source, VecDeque<u64>>,
}

impl Pending {
    fn new(max_total: usize, max_per_source: usize) -> Pending {
        Pending {
            max_total: max_total.max(1),
            max_per_source: max_per_source.max(1),
            by_age: BTreeMap::new(),
            by_source: HashMap::new(),
        }
    }

    fn stale(&self, id: u64, now: Instant) -> bool {
        self.by_age
            .get(&id)
            .and_then(|e| e.idle_since)
            .is_some_and(|t| now.saturating_duration_since(t) >= IDLE_GRACE)
    }

    /// Registers connection `id` from `source` at `now`, first making room as the caps say.
    fn admit(&mut self, id: u64, source: Source, now: Instant) -> oneshot::Receiver<Eviction> {
        let crowded = self
            .by_source
            .get(&source)
            .filter(|q| q.len() >= self.max_per_source);
        if let Some(&victim) = crowded.and_then(|q| q.iter().find(|&&v| self.stale(v, now))) {
            self.evict(victim, Eviction::PerAddress);
        }
        if self.by_age.len() >= self.max_total {
            let victim = self
                .by_age
                .keys()
                .find(|&&v| self.stale(v, now))
                .or_else(|| self.by_age.keys().next())
                .copied();
            if let Some(victim) = victim {
                self.evict(victim, Eviction::Total);
            }
        }
        let (evict, rx) = oneshot::channel();
        self.by_age.insert(
            id,
            Entry {
                source,
                idle_since: None,
                evict,
            },
        );
        self.by_source.entry(source).or_default().push_back(id);
        rx
    }

    fn evict(&mut self, id: u64, why: Eviction) {
        if let Some(e) = self.remove(id) {
            // The evicted connection's task may have ended already: nothing to tell it then.
            let _ = e.evict.send(why);
        }
    }

    /// Marks connection `id` as waiting for its first frame since `since`, or (`None`) as
    /// having it.
    fn set_idle(&mut self, id: u64, since: Option<Instant>) {
        if let Some(e) = self.by_age.get_mut(&id) {
            e.idle_since = since;
        }
    }

    /// Forgets connection `id` (no longer pending); returns its entry if it was.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.by_age.remove(&id)?;
        if let Some(q) = self.by_source.get_mut(&entry.source) {
            q.retain(|&x| x != id);
            if q.is_empty() {
                self.by_source.remove(&entry.source);
            }
        }
        Some(entry)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        debug_assert_eq!(
            self.by_age.len(),
            self.by_source.values().map(VecDeque::len).sum::<usize>()
        );
        self.by_age.len()
    }
}

/// A connection's place among the pending ones, given up on drop.
struct Ticket {
    gates: Arc<Gates>,
    id: u64,
}

impl Ticket {
    /// Registers connection `id`; the receiver fires if it is evicted.
    fn new(gates: &Arc<Gates>, id: u64, source: Source) -> (Ticket, oneshot::Receiver<Eviction>) {
        let evicted = gates.pending().admit(id, source, Instant::now());
        let ticket = Ticket {
            gates: gates.clone(),
            id,
        };
        (ticket, evicted)
    }

    fn set_idle(&self, since: Option<Instant>) {
        self.gates.pending().set_idle(self.id, since);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.gates.pending().remove(self.id);
    }
}

impl Gates {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Waits, reading nothing, until the connection's first frame has arrived in full (header and
/// a payload of at most `max` bytes), announces a longer payload (which the handshake then
/// refuses at once), or the stream ends or fails.
async fn first_frame(sock: &TcpStream, max: usize) {
    let mut buf = [0u8; FRAME_HEADER_LEN + FIRST_FRAME_MAX];
    let want = FRAME_HEADER_LEN + max.min(FIRST_FRAME_MAX);
    let mut pause = Duration::from_millis(2);
    loop {
        // Waits for the first byte; afterwards returns at once with what is there.
        let n = match sock.peek(&mut buf[..want]).await {
            Ok(n) => n,
            Err(_) => return,
        };
        if n == 0 || n == want {
            return;
        }
        if n >= FRAME_HEADER_LEN {
            let header = [buf[0], buf[1], buf[2], buf[3]];
            let len = u32::from_le_bytes(header) as usize;
            if len > max || n >= FRAME_HEADER_LEN + len {
                return;
            }
        }
        // Part of it: look again a little later (a peek consumes nothing, so waiting for the
        // socket to be readable would return at once).
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// One connection under [`serve`]: admission (first frame, handshake and hello, evictable,
/// under the handshake timeout), a session slot, then the session under the session timeout.
async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    ticket: Ticket,
    mut evicted: oneshot::Receiver<Eviction>,
    served: Arc<Served>,
    gates: Arc<Gates>,
) {
    let config = &served.config;
    let id = ticket.id;
    let t0 = Instant::now();
    let ms = || t0.elapsed().as_millis() as u64;
    let first_max = match config.security {
        ServerSecurity::Noise { .. } => veil_net::secure::FIRST_MESSAGE_LEN,
        ServerSecurity::InsecurePlaintext => FIRST_FRAME_MAX,
    };
    let admission = async {
        ticket.set_idle(Some(Instant::now()));
        first_frame(&sock, first_max).await;
        ticket.set_idle(None);
        let mut ch = Channel::from_tcp(sock, config.channel);
        let hello = admit(&mut ch, &served).await;
        (ch, hello)
    };
    let admitted = tokio::select! {
        r = tokio::time::timeout(config.handshake_timeout, admission) => r,
        Ok(why) = &mut evicted => {
            let (cap, of) = match why {
                Eviction::PerAddress => (config.max_pending_per_address, "its address"),
                Eviction::Total => (config.max_pending_handshakes, "all addresses"),
            };
            warn!(
                session = id, %peer, ms = ms(), cap, of,
                "pending connection closed to make room for a newer one: the cap on \
                 connections in the handshake was reached"
            );
            return;
        }
    };
    drop(ticket);
    let (mut ch, hello) = match admitted {
        Ok((ch, Ok(hello))) => (ch, hello),
        Ok((_, Err(e @ SessionError::Refused(_)))) => {
            warn!(session = id, %peer, ms = ms(), error = %e, "session refused");
            return;
        }
        Ok((_, Err(e))) => {
            warn!(session = id, %peer, ms = ms(), error = %e, "session failed");
            return;
        }
        Err(_) => {
            warn!(
                session = id, %peer, ms = ms(), after = ?config.handshake_timeout,
                "handshake timed out"
            );
            return;
        }
    };
    let _slot = match slot(&gates, config.queue_timeout).await {
        Ok(slot) => slot,
        Err(busy) => {
            let slots = config.max_sessions.max(1);
            let why = match busy {
                Busy::QueueFull => format!(
                    "the server is busy: all {slots} session slots are taken and {} clients \
                     are already waiting; try again later",
                    config.max_queued_sessions
                ),
                Busy::Timeout => format!(
                    "the server is busy: all {slots} session slots are taken and none came \
                     free within {:?}; try again later",
                    config.queue_timeout
                ),
            };
            let _ = refuse(&mut ch, why).await;
            warn!(session = id, %peer, ms = ms(), ?busy, "session refused: no session slot");
            return;
        }
    };
    let r = tokio::time::timeout(config.session_timeout, run(&mut ch, &served, hello)).await;
    let stats = ch.stats();
    match r {
        Ok(Ok(s)) => info!(
            session = id, %peer, protocol = ?s.protocol, inputs = s.inputs, ms = ms(),
            bytes_in = stats.bytes_received, bytes_out = stats.bytes_sent, "session done"
        ),
        Ok(Err(e)) => warn!(session = id, %peer, ms = ms(), error = %e, "session failed"),
        Err(_) => warn!(session = id, %peer, ms = ms(), "session timed out"),
    }
}

/// Why a client gets no session slot.
#[derive(Clone, Copy, Debug)]
enum Busy {
    /// `max_queued_sessions` clients are waiting already.
    QueueFull,
    /// No slot came free within `queue_timeout`.
    Timeout,
}

/// A session slot: at once if one is free, else after the clients already waiting, within
/// `patience`.
async fn slot(gates: &Gates, patience: Duration) -> Result<OwnedSemaphorePermit, Busy> {
    // Free slots go to waiting clients first (the semaphore is fair), so this never jumps the
    // queue.
    if let Ok(slot) = gates.slots.clone().try_acquire_owned() {
        return Ok(slot);
    }
    let _place = gates
        .queue
        .clone()
        .try_acquire_owned()
        .map_err(|_| Busy::QueueFull)?;
    match tokio::time::timeout(patience, gates.slots.clone().acquire_owned()).await {
        Ok(Ok(slot)) => Ok(slot),
        // The semaphore is never closed, so acquiring only waits.
        Ok(Err(_)) | Err(_) => Err(Busy::Timeout),
    }
}

/// Admission: the secure handshake the configuration asks for, then the client's hello, which
/// must ask for something the server serves this client.
async fn admit(ch: &mut Channel, served: &Served) -> Result<Hello, SessionError> {
    handshake(ch, served).await?;
    let hello: Hello = ch.recv().await?;
    screen(ch, served, &hello).await?;
    Ok(hello)
}

/// The secure handshake the configuration asks for (none for a plaintext server).
async fn handshake(ch: &mut Channel, served: &Served) -> Result<(), SessionError> {
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
    Ok(())
}

/// Runs one session on an accepted channel: the secure handshake the configuration asks for,
/// then [`session`]. Unlike [`serve`], it applies no admission limits or timeouts of its own.
pub async fn accept(ch: &mut Channel, served: &Served) -> Result<SessionSummary, SessionError> {
    handshake(ch, served).await?;
    session(ch, served).await
}

/// Runs one session on an accepted channel that is already secured (or plaintext on purpose).
pub async fn session(ch: &mut Channel, served: &Served) -> Result<SessionSummary, SessionError> {
    let hello: Hello = ch.recv().await?;
    screen(ch, served, &hello).await?;
    run(ch, served, hello).await
}

/// Tells the client why it is refused, and closes.
pub(crate) async fn refuse(ch: &mut Channel, why: String) -> Result<(), SessionError> {
    ch.send(&Welcome::Refused(why)).await?;
    ch.flush().await?;
    Ok(())
}

/// Refuses a hello the server does not serve: another wire version, a protocol not offered, or
/// a semi-honest protocol for a client the server does not trust.
async fn screen(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<(), SessionError> {
    let config = &served.config;
    let verdict = if hello.version != WIRE_VERSION {
        Some(format!(
            "wire version {} (this server speaks {WIRE_VERSION})",
            hello.version
        ))
    } else if !config.protocols.contains(&hello.protocol) {
        Some(format!("protocol {} is not offered", hello.protocol))
    } else if hello.protocol.requires_trust() && !config.trusts(ch) {
        Some(format!(
            "{p} is secure only against a semi-honest client, so this server serves it only to \
             clients it trusts, and it does not trust this one (its operator trusts a client by \
             listing its key with `veil serve --allow-client KEY`, or every client with \
             `--trust-clients`); yao and he are served to any client",
            p = hello.protocol
        ))
    } else {
        None
    };
    match verdict {
        Some(why) => {
            refuse(ch, why.clone()).await?;
            Err(SessionError::Refused(why))
        }
        None => Ok(()),
    }
}

/// Runs an admitted session through its protocol's registry entry: the welcome, the
/// protocol's setup, and the queries.
async fn run(
    ch: &mut Channel,
    served: &Served,
    hello: Hello,
) -> Result<SessionSummary, SessionError> {
    let inputs = crate::registry::get(hello.protocol)
        .serve(ch, served, &hello)
        .await?;
    Ok(SessionSummary {
        protocol: Some(hello.protocol),
        inputs,
        stats: ch.stats(),
    })
}

/// Welcomes a client: the model's public architecture, whether the logits are revealed, and
/// the session's query budget, which the returned [`SessionBudget`] enforces.
pub(crate) async fn welcome<'a>(
    ch: &mut Channel,
    served: &'a Served,
    logits: bool,
) -> Result<SessionBudget<'a>, SessionError> {
    let budget = SessionBudget::open(
        &served.ledger,
        served.config.budget_client(ch),
        served.config.max_queries_per_session,
    );
    ch.send(&Welcome::Accepted {
        architecture: served.architecture.clone(),
        logits,
        queries: budget.left(),
    })
    .await?;
    ch.flush().await?;
    Ok(budget)
}

/// The next query's input count, or `None` once the client says goodbye.
pub(crate) async fn next_query(
    ch: &mut Channel,
    budget: &mut SessionBudget<'_>,
) -> Result<Option<u32>, SessionError> {
    loop {
        match next_request(ch, budget).await? {
            None => return Ok(None),
            Some(Next::Query(n)) => return Ok(Some(n)),
            // Nothing to prepare for a protocol that reads its requests here.
            Some(Next::Prepare(_)) => {}
        }
    }
}

/// A client's request once the session is set up (`None`: goodbye).
pub(crate) enum Next {
    /// Classify this many inputs.
    Query(u32),
    /// Run the offline phase of this many inputs.
    Prepare(u32),
}

/// Reads the client's next request, its count checked (1 to [`MAX_QUERY`]) and a query's
/// inputs spent from the session's budget.
pub(crate) async fn next_request(
    ch: &mut Channel,
    budget: &mut SessionBudget<'_>,
) -> Result<Option<Next>, SessionError> {
    match ch.recv::<Request>().await? {
        Request::Bye => Ok(None),
        Request::Query { count } if (1..=MAX_QUERY).contains(&count) => {
            budget.spend(count)?;
            Ok(Some(Next::Query(count)))
        }
        Request::Query { count } => Err(SessionError::Protocol(format!("query of {count} inputs"))),
        Request::Prepare { count } if (1..=MAX_QUERY).contains(&count) => {
            Ok(Some(Next::Prepare(count)))
        }
        Request::Prepare { count } => Err(SessionError::Protocol(format!(
            "preparation of {count} inputs"
        ))),
    }
}

/// Refuses a preparation of `n` more inputs with `held` prepared already, beyond `max`: each
/// costs the server work and memory, and a client that asks for more than the bound it knows
/// deviates.
pub(crate) fn check_prepare(held: usize, n: u32, max: usize) -> Result<(), SessionError> {
    if held.saturating_add(n as usize) > max {
        return Err(SessionError::Protocol(format!(
            "{n} more inputs prepared with {held} held (at most {max})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preparations_beyond_the_bound_are_refused() {
        assert!(check_prepare(0, 16, 16).is_ok());
        assert!(check_prepare(15, 1, 16).is_ok());
        assert!(matches!(
            check_prepare(15, 2, 16),
            Err(SessionError::Protocol(_))
        ));
        assert!(check_prepare(usize::MAX, u32::MAX, 16).is_err());
    }

    fn v4(last: u8) -> Source {
        Source::of(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)))
    }

    #[test]
    fn sources_group_ipv6_by_prefix_and_unmap_ipv4() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Source::of(a), Source::of(b));
        assert_ne!(Source::of(a), Source::of(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(Source::of(mapped), v4(7));
    }

    /// `n` connections from `source`, numbered from `first`, idle since `since`.
    fn fill(
        p: &mut Pending,
        first: u64,
        n: u64,
        source: Source,
        now: Instant,
        since: Option<Instant>,
    ) -> Vec<oneshot::Receiver<Eviction>> {
        (first..first + n)
            .map(|i| {
                let rx = p.admit(i, source, now);
                p.set_idle(i, since);
                rx
            })
            .collect()
    }

    #[test]
    fn the_per_address_cap_evicts_that_address_oldest_idle_connection() {
        let t0 = Instant::now();
        let later = t0 + IDLE_GRACE;
        let mut p = Pending::new(8, 3);
        // 0 has its first frame; 1 and 2 are idle.
        let mut rx = fill(&mut p, 0, 3, v4(1), t0, Some(t0));
        p.set_idle(0, None);
        let mut other = fill(&mut p, 3, 1, v4(2), t0, Some(t0));
        assert_eq!(p.len(), 4);
        // Within the grace, a fourth from 10.0.0.1 evicts nobody: the address goes over.
        rx.extend(fill(&mut p, 4, 1, v4(1), t0, Some(t0)));
        assert_eq!(p.len(), 5);
        // After it, a fifth pushes out the address's oldest idle one, 1 (not 0, which is
        // working, nor the newest, nor 10.0.0.2's).
        rx.extend(fill(&mut p, 5, 1, v4(1), later, None));
        assert_eq!(rx[1].try_recv(), Ok(Eviction::PerAddress));
        for i in [0, 2, 3, 4] {
            assert!(rx[i].try_recv().is_err(), "{i}");
        }
        assert!(other[0].try_recv().is_err());
        assert_eq!(p.len(), 5);
        // Leaving makes room without evicting anyone.
        p.remove(2);
        p.remove(4);
        rx.extend(fill(&mut p, 6, 1, v4(1), later, None));
        assert!(rx[0].try_recv().is_err());
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn the_total_cap_evicts_the_oldest_idle_connection_or_else_the_oldest() {
        let t0 = Instant::now();
        let later = t0 + IDLE_GRACE;
        let mut p = Pending::new(4, 3);
        let mut rx: Vec<_> = (0..4)
            .flat_map(|i| fill(&mut p, i, 1, v4(i as u8), t0, None))
            .collect();
        p.set_idle(2, Some(t0));
        // Full: the one idle for the grace goes first.
        rx.extend(fill(&mut p, 4, 1, v4(9), later, None));
        assert_eq!(rx[2].try_recv(), Ok(Eviction::Total));
        assert!(rx[0].try_recv().is_err());
        // Then, with none idle, the oldest of all.
        rx.extend(fill(&mut p, 5, 1, v4(9), later, None));
        assert_eq!(rx[0].try_recv(), Ok(Eviction::Total));
        assert!(rx[1].try_recv().is_err());
        assert_eq!(p.len(), 4);
        // Removing twice, or an evicted one, is harmless.
        assert!(p.remove(0).is_none());
        assert!(p.remove(3).is_some());
        assert!(p.remove(3).is_none());
        assert_eq!(p.len(), 3);
        // Caps of zero act as one.
        let mut p = Pending::new(0, 0);
        let mut a = p.admit(0, v4(1), t0);
        let _b = p.admit(1, v4(1), t0);
        assert_eq!(a.try_recv(), Ok(Eviction::Total));
        assert_eq!(p.len(), 1);
    }
}
