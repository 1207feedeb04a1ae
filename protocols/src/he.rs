//! The HE session: the client's evaluation key once, then encrypted inputs and encrypted
//! answers: the class alone, computed under encryption (the default), or the logits where the
//! server reveals them. See `he/SPEC.md`.
//!
//! # What a hostile client cannot make the server do
//!
//! - **Allocate for a large key**: the announced key size is checked against the size of an
//!   honest key ([`key_limit`], about 30 MB) before any key byte is read.
//! - **Expand a key of other dimensions**: the decoded key is checked by tfhe's conformance
//!   check against veil-fhe's parameter set ([`veil_fhe::check_compressed_key`]) before it is
//!   expanded, so a key as compact on the wire as an honest one but larger once expanded (for
//!   instance a bootstrapping key of GLWE size 32 and polynomial size 128, sixteen times larger
//!   expanded) is refused while it still takes its wire size.
//! - **Hold more keys than the server can afford**: every HE session holds a share of the
//!   server's [`HeBudget`] from before its welcome until its key is freed.
//! - **Reach a tfhe assertion with its ciphertexts**: every input ciphertext is checked for
//!   conformance (count, LWE size, modulus, moduli, degree, noise level, atomic pattern) before
//!   any arithmetic ([`veil_fhe::FheServer::check`]), and a query is refused above the size of
//!   an honest one ([`query_limit`]).
//! - **Fill the server's memory with stored keys**: the keys kept across sessions
//!   ([`KeyStore`]) are bounded in number by [`ServerConfig::he_key_store_bytes`], the least
//!   recently used going first; a key is stored only after its upload passed every check, under
//!   the identity the secure channel authenticated and the SHA-256 of its bytes, which the
//!   server recomputes (a client cannot claim a hash its upload does not have, nor use another
//!   identity's key).
//! - **Keep the CPU busy after its session ended**: the blocking evaluation of a session that
//!   is dropped (its timeout, a closed channel) is cancelled, and stops within about one
//!   bootstrap.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};
use tfhe::shortint::CompressedServerKey;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use veil_fhe::{
    EncryptedClass, EncryptedDigits, EncryptedInput, FheClient, FheError, FheServer, PublicShape,
};
use veil_net::Channel;
use veil_nn::compile::Prediction;
use veil_nn::graph::{Architecture, Op, QuantGraph};
use veil_nn::quant::argmax_i64;

use crate::client::ClientOptions;
use crate::registry::{BoxFuture, ClientSession, InferenceProtocol};
use crate::server::{next_query, refuse, welcome, Served, ServerConfig};
use crate::wire::{Hello, Protocol};
use crate::SessionError;

/// Bytes of key per frame.
pub const KEY_CHUNK: usize = 16 << 20;
/// Largest serialized ciphertext message accepted by a client (a query is about 1.2 MB, an
/// answer about 200 KB). The server refuses a query above [`query_limit`], far smaller.
pub const MAX_CIPHERTEXT_BYTES: usize = 64 << 20;
/// Bytes an honest serialized key takes beyond its 64-bit words (field tags, dimensions,
/// seeds: a few hundred), with room to spare.
pub const KEY_OVERHEAD: u64 = 4096;
/// Default memory budget of all HE sessions of one server together ([`HeBudget`]): 2 GiB,
/// seven sessions at once with veil-fhe's parameters.
pub const DEFAULT_HE_MEMORY_BUDGET: u64 = 2 << 30;
/// Longest an HE session waits for its share of the [`HeBudget`] before it is refused.
pub const ADMISSION_WAIT: Duration = Duration::from_secs(5);

/// Default bytes of the store of evaluation keys kept across sessions
/// ([`ServerConfig::he_key_store_bytes`]): 4 GiB, fifteen keys.
pub const DEFAULT_KEY_STORE_BYTES: u64 = 4 << 30;

/// The client's first message after the welcome: the SHA-256 of the evaluation key it would
/// upload.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct KeyOffer {
    /// SHA-256 of the serialized compressed key ([`encode_key`]).
    pub hash: [u8; 32],
}

/// The server's answer to a [`KeyOffer`].
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct KeyAnswer {
    /// The server holds this key for this client's identity: no upload follows.
    pub stored: bool,
}

/// A client's HE keys, made once: the secret key, and its compressed evaluation key serialized
/// and hashed, the same bytes for every session that uses them (a server that stored them for
/// this client's identity needs no second upload). The keys depend on veil-fhe's parameter set
/// only, not on a model: one set serves every model and server.
pub struct HeKeys {
    key: tfhe::shortint::ClientKey,
    bytes: Vec<u8>,
    hash: [u8; 32],
}

impl std::fmt::Debug for HeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeKeys")
            .field("hash", &hex(&self.hash[..8]))
            .finish_non_exhaustive()
    }
}

/// What [`HeKeys::save`] writes: a tag, the secret key, the evaluation key's upload.
#[derive(Serialize, Deserialize)]
struct KeysFile {
    format: String,
    key: tfhe::shortint::ClientKey,
    evaluation_key: Vec<u8>,
}

/// The tag of a keys file.
const KEYS_FORMAT: &str = "veil-he-keys-1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl HeKeys {
    /// Fresh keys (a second or two of key generation).
    ///
    /// # Errors
    ///
    /// The evaluation key cannot be serialized.
    pub fn generate() -> Result<HeKeys, SessionError> {
        let key = tfhe::shortint::ClientKey::new(veil_fhe::parameters());
        let bytes = encode_key(&tfhe::shortint::CompressedServerKey::new(&key))?;
        let hash = Sha256::digest(&bytes).into();
        Ok(HeKeys { key, bytes, hash })
    }

    /// Writes the keys to `path`, readable by its owner only (mode 0600 on Unix): the file
    /// holds the secret key.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn save(&self, path: &std::path::Path) -> Result<(), SessionError> {
        let file = KeysFile {
            format: KEYS_FORMAT.into(),
            key: self.key.clone(),
            evaluation_key: self.bytes.clone(),
        };
        let bytes = bincode::serde::encode_to_vec(&file, bincode::config::standard())
            .map_err(|e| SessionError::Invalid(format!("encoding the keys: {e}")))?;
        let io = |e: std::io::Error| SessionError::Invalid(format!("{}: {e}", path.display()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        use std::io::Write;
        let mut f = options.open(path).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads keys that [`HeKeys::save`] wrote, checked: the tag, the secret key's parameter
    /// set, and the evaluation key's conformance.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is larger than a keys file can be, or does not hold keys of
    /// veil-fhe's parameter set.
    pub fn load(path: &std::path::Path) -> Result<HeKeys, SessionError> {
        let bad = |why: String| SessionError::Invalid(format!("{}: {why}", path.display()));
        let size = std::fs::metadata(path)
            .map_err(|e| bad(e.to_string()))?
            .len();
        if size > key_limit() + (1 << 20) {
            return Err(bad(format!("{size} bytes: not a keys file")));
        }
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let cfg = bincode::config::standard().with_limit::<{ 64 << 20 }>();
        let file: KeysFile = match bincode::serde::decode_from_slice(&bytes, cfg) {
            Ok((f, used)) if used == bytes.len() => f,
            _ => return Err(bad("not a keys file".into())),
        };
        if file.format != KEYS_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {KEYS_FORMAT}",
                file.format
            )));
        }
        // The secret key's parameters, and the evaluation key's conformance.
        veil_fhe::check_client_key(&file.key).map_err(|e| bad(e.to_string()))?;
        decode_key(&file.evaluation_key).map_err(|e| bad(e.to_string()))?;
        let hash = Sha256::digest(&file.evaluation_key).into();
        Ok(HeKeys {
            key: file.key,
            bytes: file.evaluation_key,
            hash,
        })
    }

    /// The SHA-256 of the evaluation key's upload.
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// Bytes of the evaluation key's upload.
    pub fn upload_bytes(&self) -> u64 {
        self.bytes.len() as u64
    }
}

/// Evaluation keys kept across sessions, by client identity and key hash, at most `capacity`
/// of them, the least recently used evicted first.
pub struct KeyStore {
    capacity: usize,
    inner: Mutex<StoreInner>,
}

/// A stored key's address: the client's identity and the key's SHA-256.
type KeyAddress = ([u8; 32], [u8; 32]);

#[derive(Default)]
struct StoreInner {
    tick: u64,
    /// Each key with the tick of its last use.
    keys: HashMap<KeyAddress, (Arc<FheServer>, u64)>,
}

impl KeyStore {
    /// A store of `bytes`, in shares of [`veil_fhe::key_memory_bytes`].
    pub fn new(bytes: u64) -> KeyStore {
        KeyStore {
            capacity: (bytes / veil_fhe::key_memory_bytes().max(1)) as usize,
            inner: Mutex::new(StoreInner::default()),
        }
    }

    /// Keys the store holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().keys.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, StoreInner> {
        // A panic while holding the lock leaves a map that is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The key of `identity` with `hash`, marked as just used.
    fn get(&self, identity: [u8; 32], hash: [u8; 32]) -> Option<Arc<FheServer>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.keys.get_mut(&(identity, hash)).map(|(k, used)| {
            *used = tick;
            k.clone()
        })
    }

    /// Stores a key, evicting the least recently used ones beyond the capacity.
    fn insert(&self, identity: [u8; 32], hash: [u8; 32], key: Arc<FheServer>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.keys.insert((identity, hash), (key, tick));
        while inner.keys.len() > self.capacity {
            let oldest = inner
                .keys
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    inner.keys.remove(&k);
                }
                None => break,
            }
        }
    }
}

/// Announces the key upload.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct KeyHeader {
    /// Total bytes of the serialized compressed evaluation key.
    pub bytes: u64,
}

/// The largest key upload the server reads: the size of an honest compressed key of
/// veil-fhe's parameter set (8 bytes per word in the key's fixed-width encoding, see
/// [`veil_fhe::compressed_key_words`]) plus [`KEY_OVERHEAD`]. About 30.15 MB. A key of these
/// parameters is never larger, and a conformant key never much smaller.
pub fn key_limit() -> u64 {
    veil_fhe::compressed_key_words() * 8 + KEY_OVERHEAD
}

/// The largest query the server reads for a model of `inputs` input codes: each honest
/// ciphertext takes at most 9 bytes per coefficient in bincode's variable-width encoding, plus
/// its header (under 64 bytes). About 1.2 MB for 64 inputs. Since a decoded coefficient takes
/// 8 bytes, and an encoded one at least 1, a query at this limit decodes to at most 8 times its
/// size.
pub fn query_limit(inputs: usize) -> usize {
    let p = veil_fhe::parameters();
    let lwe_size = p.glwe_dimension.0 * p.polynomial_size.0 + 1;
    inputs.saturating_mul(9 * lwe_size + 64).saturating_add(16)
}

/// The memory all HE sessions of one server may hold at once, counted in evaluation keys of
/// [`veil_fhe::key_memory_bytes`] each (about 274 MB: the compressed key and its expansion at
/// their peak, the tables and the queries). Each HE session takes one share before its welcome
/// and keeps it until its key is freed; a session that finds every share taken waits for one,
/// in arrival order, for at most its admission wait, and is then refused with a message saying
/// why.
#[derive(Debug)]
pub struct HeBudget {
    bytes: u64,
    keys: usize,
    shares: Arc<Semaphore>,
}

/// One HE session's share of the [`HeBudget`], given back when dropped.
#[derive(Debug)]
pub struct HePermit {
    _share: OwnedSemaphorePermit,
}

impl HeBudget {
    /// A budget of `bytes` (keys of [`veil_fhe::key_memory_bytes`] each, rounded down; a budget
    /// below one key admits no HE session).
    pub fn new(bytes: u64) -> HeBudget {
        let keys = (bytes / veil_fhe::key_memory_bytes()).min(Semaphore::MAX_PERMITS as u64);
        HeBudget {
            bytes,
            keys: keys as usize,
            shares: Arc::new(Semaphore::new(keys as usize)),
        }
    }

    /// HE sessions the budget admits at once.
    pub fn keys(&self) -> usize {
        self.keys
    }

    /// HE sessions holding a share now.
    pub fn in_use(&self) -> usize {
        self.keys - self.shares.available_permits()
    }

    /// Takes a share, waiting (behind the sessions already waiting) for at most `wait`; on
    /// failure, the message to give the client.
    pub async fn admit(&self, wait: Duration) -> Result<HePermit, String> {
        if self.keys == 0 {
            return Err(format!(
                "this server's HE memory budget ({} bytes) is below one evaluation key's need \
                 ({} bytes): HE is not available",
                self.bytes,
                veil_fhe::key_memory_bytes()
            ));
        }
        match tokio::time::timeout(wait, self.shares.clone().acquire_owned()).await {
            Ok(Ok(share)) => Ok(HePermit { _share: share }),
            // The semaphore is never closed: only the wait can fail.
            _ => Err(format!(
                "the server is busy: its HE memory budget holds {} evaluation keys, all in use, \
                 and none came free within {wait:?}; try again later",
                self.keys
            )),
        }
    }
}

/// A client's evaluation key, expanded, and the model prepared under it; holds its session's
/// share of the [`HeBudget`] until the last reference (a cancelled evaluation still winding
/// down holds one) is dropped.
pub struct HeServer {
    fhe: Arc<FheServer>,
    _permit: HePermit,
}

impl HeServer {
    /// The evaluator.
    pub fn fhe(&self) -> &FheServer {
        &self.fhe
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, SessionError> {
    let cfg = bincode::config::standard().with_limit::<{ 1 << 30 }>();
    match bincode::serde::decode_from_slice(bytes, cfg) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok(_) => Err(SessionError::Protocol(format!("{what}: trailing bytes"))),
        Err(e) => Err(SessionError::Protocol(format!("{what}: {e}"))),
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, SessionError> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| SessionError::Invalid(format!("encoding: {e}")))
}

/// The key's encoding: bincode with fixed-width integers, so that every 64-bit word takes 8
/// bytes on the wire (a random word takes 9 in the variable-width encoding, and a zero 1: a
/// key of zeros would decode to 8 times its size).
fn key_config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_fixed_int_encoding()
        .with_limit::<{ 1 << 30 }>()
}

/// Serializes a compressed evaluation key as [`send_key`] sends it.
pub fn encode_key(key: &CompressedServerKey) -> Result<Vec<u8>, SessionError> {
    bincode::serde::encode_to_vec(key, key_config())
        .map_err(|e| SessionError::Invalid(format!("encoding the evaluation key: {e}")))
}

/// Reads a key as [`receive_key`] does: decodes it (the fixed-width encoding, no trailing
/// bytes) and checks its conformance to veil-fhe's parameter set, without expanding it.
pub fn decode_key(bytes: &[u8]) -> Result<CompressedServerKey, SessionError> {
    let key: CompressedServerKey = match bincode::serde::decode_from_slice(bytes, key_config()) {
        Ok((k, used)) if used == bytes.len() => k,
        Ok(_) => {
            return Err(SessionError::Protocol(
                "evaluation key: trailing bytes".into(),
            ))
        }
        Err(e) => return Err(SessionError::Protocol(format!("evaluation key: {e}"))),
    };
    veil_fhe::check_compressed_key(&key).map_err(|e| SessionError::Protocol(e.to_string()))?;
    Ok(key)
}

/// Sets a flag when dropped: the async side of a blocking job tells the job it is no longer
/// awaited.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs blocking, CPU-heavy work off the async threads; a panic inside becomes an error of this
/// session only. The flag `f` receives is set as soon as this future is dropped (the session
/// timed out or ended) or completes, so that `f` can stop early.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce(&AtomicBool) -> T + Send + 'static,
) -> Result<T, SessionError> {
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(cancel.clone());
    tokio::task::spawn_blocking(move || f(&cancel))
        .await
        .map_err(|e| SessionError::Protocol(format!("evaluation aborted: {e}")))
}

/// Client: sends the compressed evaluation key of `client`.
pub async fn send_key(ch: &mut Channel, client: &FheClient) -> Result<u64, SessionError> {
    let bytes = encode_key(&client.compressed_evaluation_key())?;
    send_key_bytes(ch, &bytes).await
}

/// Client: sends a serialized compressed evaluation key ([`encode_key`]).
async fn send_key_bytes(ch: &mut Channel, bytes: &[u8]) -> Result<u64, SessionError> {
    ch.send(&KeyHeader {
        bytes: bytes.len() as u64,
    })
    .await?;
    for chunk in bytes.chunks(KEY_CHUNK) {
        ch.send_bytes(chunk).await?;
    }
    ch.flush().await?;
    Ok(bytes.len() as u64)
}

/// Server: receives a client's key (at most `max_bytes`, and never more than [`key_limit`]),
/// checks its conformance before expanding it, and prepares `model` under it. `permit` is the
/// session's share of the [`HeBudget`]; the returned server keeps it.
pub async fn receive_key(
    ch: &mut Channel,
    model: &QuantGraph,
    max_bytes: u64,
    permit: HePermit,
) -> Result<HeServer, SessionError> {
    receive_key_hashed(ch, model, max_bytes, permit, None).await
}

/// [`receive_key`], and when `hash` is given, the upload's SHA-256 must equal it.
async fn receive_key_hashed(
    ch: &mut Channel,
    model: &QuantGraph,
    max_bytes: u64,
    permit: HePermit,
    hash: Option<[u8; 32]>,
) -> Result<HeServer, SessionError> {
    let header: KeyHeader = ch.recv().await?;
    let limit = max_bytes.min(key_limit());
    if header.bytes == 0 || header.bytes > limit {
        return Err(SessionError::Protocol(format!(
            "evaluation key of {} bytes refused: the limit is {limit} bytes (an honest key of \
             this server's parameter set takes at most {})",
            header.bytes,
            key_limit()
        )));
    }
    let mut bytes = Vec::with_capacity(header.bytes as usize);
    while (bytes.len() as u64) < header.bytes {
        let chunk = ch.recv_bytes().await?;
        if chunk.is_empty() || bytes.len() as u64 + chunk.len() as u64 > header.bytes {
            return Err(SessionError::Protocol(
                "evaluation key chunks exceed the announced size".into(),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let model = model.clone();
    blocking(move |_| -> Result<HeServer, SessionError> {
        if let Some(want) = hash {
            let got: [u8; 32] = Sha256::digest(&bytes).into();
            if got != want {
                return Err(SessionError::Protocol(
                    "the evaluation key does not match the hash offered for it".into(),
                ));
            }
        }
        let compressed = decode_key(&bytes)?;
        drop(bytes);
        let key = compressed.decompress();
        drop(compressed);
        Ok(HeServer {
            fhe: Arc::new(FheServer::new(&model, key)?),
            _permit: permit,
        })
    })
    .await?
}

/// Server: answers one encrypted query, with the class alone ([`Answer::Class`], the encrypted
/// argmax) or with the logits. A query above [`query_limit`], or one whose ciphertexts do not
/// conform to the parameter set, is a protocol violation; a query whose session ends during
/// its evaluation stops within about one bootstrap.
pub async fn serve_one(
    ch: &mut Channel,
    server: &Arc<HeServer>,
    answer: Answer,
) -> Result<(), SessionError> {
    let bytes = ch.recv_bytes().await?;
    let limit = query_limit(server.fhe.plan().inputs);
    if bytes.len() > limit {
        return Err(SessionError::Protocol(format!(
            "encrypted input of {} bytes (limit {limit})",
            bytes.len()
        )));
    }
    let server = server.clone();
    let answer = blocking(move |cancel| -> Result<Vec<u8>, SessionError> {
        let input: EncryptedInput = decode(&bytes, "encrypted input")?;
        drop(bytes);
        let refused = |e| match e {
            FheError::Shape(why) => SessionError::Protocol(format!("encrypted input: {why}")),
            e => SessionError::He(e),
        };
        match answer {
            Answer::Class => encode(
                &server
                    .fhe
                    .eval_class_cancellable(&input, cancel)
                    .map_err(refused)?,
            ),
            Answer::Logits => encode(
                &server
                    .fhe
                    .eval_digits_cancellable(&input, cancel)
                    .map_err(refused)?,
            ),
        }
    })
    .await??;
    ch.send_bytes(&answer).await?;
    ch.flush().await?;
    Ok(())
}

/// Time a client allows the server per bootstrap of one answer, beyond the channel's read
/// timeout: about five times what a bootstrap costs a 2-core server (18 to 23 ms of wall time
/// each, two at a time), so that a model with a thousand activations on a busy server is not
/// taken for a silent peer.
pub const PATIENCE_PER_BOOTSTRAP: Duration = Duration::from_millis(100);

/// How long a client waits for one encrypted answer of a model with `bootstraps` hidden
/// activations: the channel's read timeout plus [`PATIENCE_PER_BOOTSTRAP`] for each.
pub fn answer_timeout(read_timeout: Duration, bootstraps: usize) -> Duration {
    let per = PATIENCE_PER_BOOTSTRAP.saturating_mul(u32::try_from(bootstraps).unwrap_or(u32::MAX));
    read_timeout.saturating_add(per)
}

/// What an HE answer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The class alone: the argmax computed under encryption, one ciphertext out of a
    /// bootstrap (the default, and the only answer of a server that reveals classes only).
    Class,
    /// The logits, each as its digits, every digit the output of a bootstrap (only where the
    /// server allows logits).
    Logits,
}

/// Bootstraps a class-only answer may take at most, from the public architecture: the hidden
/// activations, the last hidden stage at up to 6 levels of 4 digits, and 8 bootstraps per pair
/// of classes (the server's plan, `veil_fhe::ArgmaxPlan`, depends on its weights; these are
/// the bounds of its search).
pub fn class_bootstraps_bound(architecture: &Architecture) -> usize {
    let shape = PublicShape::of(architecture).ok();
    let classes = shape.map_or(0, |s| s.outputs);
    architecture.activations()
        + last_hidden(architecture) * 24
        + classes * classes.saturating_sub(1) / 2 * 8
        + classes
}

/// Bootstraps a logits answer may take at most, from the public architecture: the hidden
/// activations, the last hidden stage at up to 40 steps (one-bit digits of 40-bit logits), and
/// per logit the bootstraps of 40 one-bit digits.
pub fn digits_bootstraps_bound(architecture: &Architecture) -> usize {
    let shape = PublicShape::of(architecture).ok();
    let (classes, bits) = shape.map_or((0, 0), |s| (s.outputs, s.output_bits as usize));
    let k = bits.max(1);
    architecture.activations()
        + last_hidden(architecture) * k
        + classes * ((k - 1) + k + k * (k - 1) / 2)
}

/// Values of the last hidden stage (0 without one).
fn last_hidden(architecture: &Architecture) -> usize {
    let last = architecture.shapes().ok().and_then(|shapes| {
        (architecture.ops.iter().enumerate())
            .rfind(|(_, o)| matches!(o, Op::Relu { .. }))
            .and_then(|(k, _)| shapes.get(k + 1).map(|s| s.len()))
    });
    last.unwrap_or(0)
}

/// Client: one encrypted query; the answer is awaited for `patience` ([`answer_timeout`]).
pub async fn query_one(
    ch: &mut Channel,
    client: &FheClient,
    codes: &[u8],
    patience: Duration,
    answer: Answer,
) -> Result<Prediction, SessionError> {
    let input = client.encrypt(codes)?;
    ch.send_bytes(&encode(&input)?).await?;
    ch.flush().await?;
    let usual = ch.config().read_timeout;
    ch.set_read_timeout(patience.max(usual));
    let bytes = ch.recv_bytes().await;
    ch.set_read_timeout(usual);
    let bytes = bytes?;
    match answer {
        Answer::Class => {
            let out: EncryptedClass = decode(&bytes, "encrypted class")?;
            Ok(Prediction {
                class: Some(client.decrypt_class(&out)?),
                logits: None,
            })
        }
        Answer::Logits => {
            let out: EncryptedDigits = decode(&bytes, "encrypted logits")?;
            let logits = client.decrypt_digits(&out)?;
            Ok(Prediction {
                class: Some(argmax_i64(&logits)),
                logits: Some(logits),
            })
        }
    }
}

/// The registry's entry for HE.
pub struct He;

struct HeClient {
    client: FheClient,
    patience: Duration,
    answer: Answer,
}

impl ClientSession for HeClient {
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(inputs.len());
            for codes in inputs {
                out.push(query_one(ch, &self.client, codes, self.patience, self.answer).await?);
            }
            Ok(out)
        })
    }
}

/// The session's evaluation key: the stored one when the client's identity and the hash it
/// offers match one, else its upload, then stored (a client without an authenticated identity,
/// on a plaintext channel, gets nothing stored).
async fn key_for_session(
    ch: &mut Channel,
    served: &Served,
    config: &ServerConfig,
    permit: HePermit,
) -> Result<HeServer, SessionError> {
    let offer: KeyOffer = ch.recv().await?;
    let identity = ch.peer_key().map(|k| *k.as_bytes());
    let stored = identity.and_then(|id| served.he_keys().get(id, offer.hash));
    ch.send(&KeyAnswer {
        stored: stored.is_some(),
    })
    .await?;
    ch.flush().await?;
    if let Some(fhe) = stored {
        tracing::debug!("evaluation key found in the store");
        return Ok(HeServer {
            fhe,
            _permit: permit,
        });
    }
    let server = receive_key_hashed(
        ch,
        &config.model,
        config.max_key_bytes,
        permit,
        Some(offer.hash),
    )
    .await?;
    if let Some(id) = identity {
        served.he_keys().insert(id, offer.hash, server.fhe.clone());
    }
    Ok(server)
}

/// An HE session holds an evaluation key: it is welcomed only within the HE memory budget,
/// and keeps its share until its key is freed.
async fn serve(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<u64, SessionError> {
    // A client that asks for the logits gets them only where the server reveals them; any
    // other is answered with the class alone, computed under encryption.
    let answer = if hello.want_logits {
        if !served.config().allow_logits {
            let why = "this server reveals classes only: an HE client that asks for the logits \
                       is refused (ask for the class alone, the default)"
                .to_string();
            refuse(ch, why.clone()).await?;
            return Err(SessionError::Refused(why));
        }
        if let Err(e) = served.he_digits() {
            let why = format!(
                "this model's logits cannot be sent as bootstrapped digits, so HE cannot \
                 answer with them: {e}"
            );
            refuse(ch, why.clone()).await?;
            return Err(SessionError::Refused(why));
        }
        Answer::Logits
    } else {
        if let Err(e) = served.he_argmax() {
            let why = format!(
                "this model has no encrypted argmax, so HE cannot answer with the \
                               class alone: {e}"
            );
            refuse(ch, why.clone()).await?;
            return Err(SessionError::Refused(why));
        }
        Answer::Class
    };
    let wait = ADMISSION_WAIT.min(served.config().channel.read_timeout / 2);
    let permit = match served.he_budget().admit(wait).await {
        Ok(p) => p,
        Err(why) => {
            refuse(ch, why.clone()).await?;
            return Err(SessionError::Refused(why));
        }
    };
    let mut budget = welcome(ch, served, answer == Answer::Logits).await?;
    let config = served.config();
    let server = Arc::new(key_for_session(ch, served, config, permit).await?);
    let mut inputs = 0;
    while let Some(n) = next_query(ch, &mut budget).await? {
        for _ in 0..n {
            serve_one(ch, &server, answer).await?;
        }
        inputs += u64::from(n);
    }
    Ok(inputs)
}

impl InferenceProtocol for He {
    fn protocol(&self) -> Protocol {
        Protocol::He
    }

    fn summary(&self) -> &'static str {
        "TFHE: the client encrypts, the server computes on ciphertexts; any client"
    }

    fn bench_inputs(&self, n: usize) -> usize {
        (n / 20).max(3).min(n)
    }

    fn serve<'a>(
        &'a self,
        ch: &'a mut Channel,
        served: &'a Served,
        hello: &'a Hello,
    ) -> BoxFuture<'a, Result<u64, SessionError>> {
        Box::pin(serve(ch, served, hello))
    }

    fn connect<'a>(
        &'a self,
        ch: &'a mut Channel,
        architecture: &'a Architecture,
        logits: bool,
        options: &'a ClientOptions,
    ) -> BoxFuture<'a, Result<Box<dyn ClientSession>, SessionError>> {
        Box::pin(async move {
            // The client plans its side from the public architecture alone: the input width,
            // the number of logits and their width (the server plans with the same).
            let shape = PublicShape::of(architecture).map_err(FheError::from)?;
            let keys = match &options.he_keys {
                Some(k) => k.clone(),
                None => {
                    let fresh = tokio::task::spawn_blocking(HeKeys::generate)
                        .await
                        .map_err(|e| SessionError::Invalid(format!("key generation: {e}")))??;
                    Arc::new(fresh)
                }
            };
            let client = FheClient::from_key(keys.key.clone(), shape)?;
            ch.send(&KeyOffer { hash: keys.hash }).await?;
            ch.flush().await?;
            let answer: KeyAnswer = ch.recv().await?;
            if !answer.stored {
                send_key_bytes(ch, &keys.bytes).await?;
            }
            let (answer, bootstraps) = if logits {
                (Answer::Logits, digits_bootstraps_bound(architecture))
            } else {
                (Answer::Class, class_bootstraps_bound(architecture))
            };
            let patience = answer_timeout(options.channel.read_timeout, bootstraps);
            Ok(Box::new(HeClient {
                client,
                patience,
                answer,
            }) as Box<dyn ClientSession>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_admits_as_many_keys_as_it_holds_then_waits_then_refuses() {
        let budget = HeBudget::new(2 * veil_fhe::key_memory_bytes() + 1);
        assert_eq!(budget.keys(), 2);
        let a = budget.admit(Duration::from_millis(10)).await.unwrap();
        let _b = budget.admit(Duration::from_millis(10)).await.unwrap();
        assert_eq!(budget.in_use(), 2);
        let why = budget.admit(Duration::from_millis(50)).await.unwrap_err();
        assert!(
            why.contains("busy") && why.contains("2 evaluation keys"),
            "{why}"
        );
        // A share given back admits the next session, also one already waiting.
        let waiting = budget.admit(Duration::from_secs(5));
        drop(a);
        let _c = waiting.await.unwrap();
        assert_eq!(budget.in_use(), 2);
    }

    #[tokio::test]
    async fn a_budget_below_one_key_refuses_every_session() {
        let budget = HeBudget::new(veil_fhe::key_memory_bytes() - 1);
        assert_eq!(budget.keys(), 0);
        let why = budget.admit(Duration::from_secs(1)).await.unwrap_err();
        assert!(why.contains("below one evaluation key"), "{why}");
    }

    #[test]
    fn the_client_waits_for_an_answer_in_proportion_to_the_bootstraps() {
        let read = Duration::from_secs(30);
        assert_eq!(answer_timeout(read, 0), read);
        // The Fashion-MNIST CNN: 1 328 bootstraps, about 30 s of server time on 2 cores.
        assert_eq!(
            answer_timeout(read, 1328),
            read + Duration::from_millis(132_800)
        );
        // No overflow on an absurd count.
        assert!(answer_timeout(read, usize::MAX) > Duration::from_secs(1 << 28));
    }

    #[test]
    fn the_limits_follow_the_parameter_set() {
        // 918·1·2·2048 + 2048·4 words of 8 bytes, and 64 inputs of 2049 coefficients.
        assert_eq!(veil_fhe::compressed_key_words(), 3_768_320);
        assert_eq!(key_limit(), 3_768_320 * 8 + KEY_OVERHEAD);
        assert_eq!(query_limit(64), 64 * (9 * 2049 + 64) + 16);
        // A key's share of the budget: well above what one expanded key keeps.
        let share = veil_fhe::key_memory_bytes();
        assert!((250 << 20..300 << 20).contains(&share), "{share}");
        assert_eq!(HeBudget::new(DEFAULT_HE_MEMORY_BUDGET).keys(), 7);
    }
}
