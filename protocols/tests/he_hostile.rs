//! A hostile HE client must not exhaust the server (issue 14): evaluation keys of other
//! dimensions and oversized uploads are refused before expansion, with the server's memory
//! measured in a separate server process; the HE memory budget admits what it holds; input
//! ciphertexts that do not conform are refused, not a panic; a session that is dropped stops
//! its evaluation; and an honest session still gets the plaintext model's answer.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tfhe::core_crypto::prelude::{
    CiphertextModulus, DecompositionLevelCount, GlweDimension, LweCiphertextOwned, LweSize,
    PolynomialSize,
};
use tfhe::shortint::ciphertext::Degree;
use tfhe::shortint::{ClientKey, CompressedServerKey};
use veil_fhe::{EncryptedInput, FheClient, PublicShape};
use veil_net::{Channel, ChannelConfig};
use veil_nn::data::digits_split;
use veil_nn::graph::QuantGraph;
use veil_nn::quant::{QLayer, QuantModel, Requant};
use veil_protocols::he::{self, HeBudget, HeServer, KeyHeader};
use veil_protocols::wire::Request;
use veil_protocols::{
    Client, ClientOptions, Protocol, Served, ServerConfig, ServerSecurity, SessionError,
};

mod common;

/// The environment variable that turns [`server_process`] into a server.
const CHILD: &str = "VEIL_HE_HOSTILE_SERVER";

fn model() -> veil_nn::graph::QuantGraph {
    veil_nn::bundled_model().unwrap().quantized
}

fn shape(m: &QuantGraph) -> PublicShape {
    PublicShape::of(&m.architecture).unwrap()
}

/// An honest client and its serialized compressed evaluation key, made once per test binary.
fn honest() -> &'static (FheClient, Vec<u8>) {
    static HONEST: OnceLock<(FheClient, Vec<u8>)> = OnceLock::new();
    HONEST.get_or_init(|| {
        let client = FheClient::new(shape(&model()));
        let bytes = he::encode_key(&client.compressed_evaluation_key()).unwrap();
        (client, bytes)
    })
}

/// A real compressed evaluation key whose bootstrapping key has GLWE size 32 and polynomial
/// size 128 (GLWE dimension 31): as many words on the wire as an honest key's (918·32·128 =
/// 918·2·2048), sixteen times as many once expanded (about 2 GB of standard and Fourier
/// bootstrapping key). Its keyswitching key has 2 levels instead of 4, so that the whole key
/// stays within the size limit and only the conformance check can refuse it. Not secure, and
/// it need not be.
fn inflating_key() -> &'static Vec<u8> {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut p = veil_fhe::parameters();
        p.glwe_dimension = GlweDimension(31);
        p.polynomial_size = PolynomialSize(128);
        p.ks_level = DecompositionLevelCount(2);
        let key = CompressedServerKey::new(&ClientKey::new(p));
        he::encode_key(&key).unwrap()
    })
}

/// Reads a process's peak resident memory (`VmHWM`), in bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM in /proc/PID/status");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

fn mb(b: u64) -> f64 {
    b as f64 / 1e6
}

/// Opens an HE session by hand, up to the welcome.
async fn he_session(addr: &str) -> Channel {
    common::raw_session(addr, None, Protocol::He).await
}

/// Announces `announced` bytes of key, sends `key` in chunks (stopping when the server has hung
/// up), and waits for the server to end the session.
async fn upload(addr: &str, announced: u64, key: &[u8]) {
    let mut ch = he_session(addr).await;
    // The offer of the key's hash first: this server holds no key, so the upload follows.
    use sha2::Digest;
    let hash: [u8; 32] = sha2::Sha256::digest(key).into();
    ch.send(&he::KeyOffer { hash }).await.unwrap();
    ch.flush().await.unwrap();
    let answer: he::KeyAnswer = ch.recv().await.unwrap();
    assert!(!answer.stored);
    ch.send(&KeyHeader { bytes: announced }).await.unwrap();
    for chunk in key.chunks(he::KEY_CHUNK) {
        if ch.send_bytes(chunk).await.is_err() {
            break;
        }
    }
    let _ = ch.flush().await;
    let _ = ch.send(&Request::Query { count: 1 }).await;
    let _ = ch.flush().await;
    assert!(
        ch.recv_bytes().await.is_err(),
        "the server answered after a hostile key"
    );
}

/// The server process of [`server_memory_stays_low_while_refusing_hostile_keys`]: does nothing
/// unless [`CHILD`] is set; then serves the bundled model in plaintext on a loopback port,
/// prints `LISTENING <addr>`, logs to stderr, and exits when its standard input closes.
#[test]
fn server_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut config = ServerConfig::new(model());
        config.security = ServerSecurity::InsecurePlaintext;
        let served = Arc::new(Served::new(config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut out = std::io::stdout();
        writeln!(out, "LISTENING {}", listener.local_addr().unwrap()).unwrap();
        out.flush().unwrap();
        veil_protocols::serve(listener, served).await.unwrap();
    });
}

/// Kills the server process when the test ends, however it ends.
struct Server {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    addr: String,
}

impl Server {
    fn spawn() -> Server {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "server_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let err = BufReader::new(child.stderr.take().unwrap());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in err.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        // libtest may print "test server_process ... " on the same line before the address.
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                if let Some((_, a)) = line.split_once("LISTENING ") {
                    let _ = tx.send(a.trim().to_string());
                }
            }
        });
        let mut server = Server {
            child,
            log,
            addr: String::new(),
        };
        server.addr = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the server process did not start listening");
        server
    }

    fn hwm(&self) -> u64 {
        vm_hwm(self.child.id())
    }

    /// Waits for a "session failed" log line that contains `what`; returns it.
    fn failure(&self, what: &str) -> String {
        let t0 = Instant::now();
        loop {
            if let Some(l) = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains("session failed") && l.contains(what))
            {
                return l.clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "no failure with {what:?} in the server's log: {:#?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Issue 14: a key whose bootstrapping key has (GLWE size, N) = (32, 128) made a server peak at
/// 2.05 GB, against 291 MB for an honest one. Now it, and an upload announced above the honest
/// size, are refused before expansion, and the server process's peak memory grows by far less
/// than 500 MB; an honest session afterwards still gets the plaintext model's class.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_memory_stays_low_while_refusing_hostile_keys() {
    let t0 = Instant::now();
    let inflating = tokio::task::spawn_blocking(inflating_key).await.unwrap();
    assert!(inflating.len() as u64 <= he::key_limit());
    let server = Server::spawn();
    let base = server.hwm();

    // (a) The inflating key: within the size limit, refused by the conformance check.
    upload(&server.addr, inflating.len() as u64, inflating).await;
    let why = server.failure("not conformant");
    assert!(why.contains("GLWE size 32, polynomial size 128"), "{why}");
    let after_a = server.hwm();

    // (b) An upload announced one byte above the limit: refused before any key byte is read.
    upload(&server.addr, he::key_limit() + 1, &[]).await;
    server.failure(&format!(
        "evaluation key of {} bytes refused",
        he::key_limit() + 1
    ));
    // And one announced at 1 GiB, the old limit.
    upload(&server.addr, 1 << 30, &[0; 1 << 16]).await;
    server.failure(&format!("evaluation key of {} bytes refused", 1u64 << 30));
    let after_b = server.hwm();

    eprintln!(
        "server VmHWM: {:.1} MB at start, {:.1} MB after the inflating key ({} bytes), {:.1} MB after the oversized announcements",
        mb(base),
        mb(after_a),
        inflating.len(),
        mb(after_b)
    );
    assert!(
        after_b - base < 200_000_000,
        "refusals grew the server's peak memory by {:.1} MB",
        mb(after_b - base)
    );

    // (d) An honest session on the same server.
    classifies_correctly(&server.addr, Protocol::He, 7).await;
    let honest = server.hwm();
    eprintln!(
        "server VmHWM after one honest HE session: {:.1} MB (+{:.1} MB); test took {:?}",
        mb(honest),
        mb(honest - base),
        t0.elapsed()
    );
    assert!(honest - base < 500_000_000, "{:.1} MB", mb(honest - base));
}

/// Sends `key` after announcing `announced` bytes, to a server task running
/// [`he::receive_key`]; returns the server's error.
async fn refusal(budget: &HeBudget, m: &QuantGraph, announced: u64, key: Vec<u8>) -> SessionError {
    let (mut client, mut server) = Channel::memory_pair(ChannelConfig::default());
    let permit = budget.admit(Duration::from_secs(5)).await.unwrap();
    let sender = tokio::spawn(async move {
        client.send(&KeyHeader { bytes: announced }).await?;
        for chunk in key.chunks(he::KEY_CHUNK) {
            client.send_bytes(chunk).await?;
        }
        client.flush().await
    });
    let r = he::receive_key(&mut server, m, u64::MAX, permit).await;
    drop(server);
    let _ = sender.await;
    r.err().expect("a hostile key was accepted")
}

/// The same refusals in process, on the errors themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_keys_are_refused_before_expansion_with_a_clear_error() {
    let m = model();
    let budget = HeBudget::new(he::DEFAULT_HE_MEMORY_BUDGET);
    let inflating = tokio::task::spawn_blocking(inflating_key).await.unwrap();
    let e = refusal(&budget, &m, inflating.len() as u64, inflating.clone()).await;
    assert!(
        matches!(&e, SessionError::Protocol(w) if w.contains("not conformant")),
        "{e}"
    );
    let e = refusal(&budget, &m, he::key_limit() + 1, Vec::new()).await;
    assert!(
        matches!(&e, SessionError::Protocol(w) if w.contains("refused")),
        "{e}"
    );
    // The honest key with one word too many: announced within the limit, but the decoded key
    // has trailing bytes.
    let mut padded = honest().1.clone();
    padded.extend_from_slice(&[0; 8]);
    let e = refusal(&budget, &m, padded.len() as u64, padded).await;
    assert!(
        matches!(&e, SessionError::Protocol(w) if w.contains("trailing")),
        "{e}"
    );
    // Operators may lower the limit below an honest key (and so refuse HE).
    let (mut client, mut server) = Channel::memory_pair(ChannelConfig::default());
    client.send(&KeyHeader { bytes: 1000 }).await.unwrap();
    client.flush().await.unwrap();
    let permit = budget.admit(Duration::from_secs(1)).await.unwrap();
    let e = he::receive_key(&mut server, &m, 999, permit)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, SessionError::Protocol(w) if w.contains("limit is 999")),
        "{e}"
    );
    // Every refused session gave its share back.
    assert_eq!(budget.in_use(), 0);
}

/// An honest key received over an in-memory channel (decoded, checked and expanded as a
/// server does), with `model` prepared under it.
async fn keyed(model: &QuantGraph, budget: &HeBudget) -> Arc<HeServer> {
    let (mut client, mut server) = Channel::memory_pair(ChannelConfig::default());
    let bytes = tokio::task::spawn_blocking(|| honest().1.clone())
        .await
        .unwrap();
    let sender = tokio::spawn(async move {
        client
            .send(&KeyHeader {
                bytes: bytes.len() as u64,
            })
            .await
            .unwrap();
        for chunk in bytes.chunks(he::KEY_CHUNK) {
            client.send_bytes(chunk).await.unwrap();
        }
        client.flush().await.unwrap();
        client
    });
    let permit = budget.admit(Duration::from_secs(1)).await.unwrap();
    let s = he::receive_key(&mut server, model, he::key_limit(), permit)
        .await
        .unwrap();
    sender.await.unwrap();
    Arc::new(s)
}

/// (e) Ciphertexts of another degree, modulus, noise level or size are refused with an error
/// of the session, before any evaluation; an honest query on the same key is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_conformant_ciphertexts_are_refused_not_a_panic() {
    let m = model();
    let budget = HeBudget::new(he::DEFAULT_HE_MEMORY_BUDGET);
    let server = keyed(&m, &budget).await;
    let client = &honest().0;
    let digit = &digits_split().test.samples[3];
    let codes = m.quantize_input(&digit.pixels);
    let good = client.encrypt(&codes).unwrap();
    let lwe = good.cts[0].ct.lwe_size();
    let mut variants: Vec<(&str, EncryptedInput)> = Vec::new();
    let mut q = good.clone();
    q.cts[5].degree = Degree::new(3);
    variants.push(("degree 3", q));
    let mut q = good.clone();
    q.cts[0].degree = Degree::new(u64::MAX);
    variants.push(("degree 18446744073709551615", q));
    let mut q = good.clone();
    q.cts[9].ct = LweCiphertextOwned::new(1u64, lwe, CiphertextModulus::new(1 << 63));
    variants.push(("modulus", q));
    let mut q = good.clone();
    q.cts[1].ct =
        LweCiphertextOwned::new(1u64, LweSize(lwe.0 - 1), q.cts[1].ct.ciphertext_modulus());
    variants.push(("LWE size 2048", q));
    let mut q = good.clone();
    q.cts[2].ct = LweCiphertextOwned::new(1u64, LweSize(1), q.cts[2].ct.ciphertext_modulus());
    variants.push(("LWE size 1", q));
    let mut q = good.clone();
    q.cts[63].message_modulus = tfhe::shortint::MessageModulus(1 << 40);
    variants.push(("message and carry moduli", q));
    let mut q = good.clone();
    q.cts[4].set_noise_level(
        tfhe::shortint::ciphertext::NoiseLevel::NOMINAL * 3,
        tfhe::shortint::parameters::MaxNoiseLevel::new(5),
    );
    variants.push(("noise level 3", q));
    let (mut c, mut s) = Channel::memory_pair(ChannelConfig::default());
    for (what, q) in variants {
        let bytes = bincode::serde::encode_to_vec(&q, bincode::config::standard()).unwrap();
        c.send_bytes(&bytes).await.unwrap();
        c.flush().await.unwrap();
        let e = he::serve_one(&mut s, &server, he::Answer::Class)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, SessionError::Protocol(w) if w.contains("does not conform") && w.contains(what)),
            "{what}: {e}"
        );
    }
    // A query above the limit is refused unread.
    c.send_bytes(&vec![0; he::query_limit(64) + 1])
        .await
        .unwrap();
    c.flush().await.unwrap();
    let e = he::serve_one(&mut s, &server, he::Answer::Class)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, SessionError::Protocol(w) if w.contains("limit")),
        "{e}"
    );
    // The honest query is answered, and the answer is the plaintext model's.
    let bytes = bincode::serde::encode_to_vec(&good, bincode::config::standard()).unwrap();
    assert!(bytes.len() <= he::query_limit(64));
    c.send_bytes(&bytes).await.unwrap();
    c.flush().await.unwrap();
    he::serve_one(&mut s, &server, he::Answer::Logits)
        .await
        .unwrap();
    let frame = c.recv_bytes().await.unwrap();
    let (out, _): (veil_fhe::EncryptedDigits, usize) =
        bincode::serde::decode_from_slice(&frame, bincode::config::standard()).unwrap();
    let logits = client.decrypt_digits(&out).unwrap();
    assert_eq!(
        veil_nn::quant::argmax_i64(&logits),
        m.predict(&digit.pixels)
    );
}

/// A one-hidden-layer model with `hidden` neurons (sparse weights, so that each accumulator
/// fits one bootstrap): `hidden` bootstraps per query.
fn wide_model(hidden: usize) -> QuantModel {
    let (w1, w2) = common::sparse_weights(hidden);
    QuantModel {
        input_bits: 4,
        layers: vec![
            QLayer {
                inputs: 64,
                outputs: hidden,
                weight_bits: 3,
                weights: w1,
                bias: vec![1; hidden],
                requant: Some(Requant {
                    shift: 3,
                    out_bits: 4,
                }),
            },
            QLayer {
                inputs: hidden,
                outputs: 10,
                weight_bits: 4,
                weights: w2,
                bias: vec![0; 10],
                requant: None,
            },
        ],
    }
}

/// Item 5 of issue 14: a session dropped (here by its timeout) while its query is evaluated
/// stops the evaluation within about one bootstrap, and its budget share comes back then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_session_stops_its_evaluation() {
    let hidden = 384;
    let wide = wide_model(hidden);
    let budget = HeBudget::new(he::DEFAULT_HE_MEMORY_BUDGET);
    let server = keyed(&wide.to_graph(), &budget).await;
    assert_eq!(server.fhe().bootstraps_per_query(), hidden);
    let client = &honest().0;
    let q = client.encrypt(&[3; 64]).unwrap();
    // One bootstrap, measured on this machine.
    let t = Instant::now();
    let ct = q.cts[0].clone();
    let s2 = server.clone();
    let _ = tokio::task::spawn_blocking(move || s2.fhe().bare_bootstrap(&ct))
        .await
        .unwrap();
    let one = t.elapsed();

    let (mut c, mut s) = Channel::memory_pair(ChannelConfig::default());
    let bytes = bincode::serde::encode_to_vec(&q, bincode::config::standard()).unwrap();
    c.send_bytes(&bytes).await.unwrap();
    c.flush().await.unwrap();
    let deadline = Duration::from_millis(300);
    let r =
        tokio::time::timeout(deadline, he::serve_one(&mut s, &server, he::Answer::Logits)).await;
    assert!(r.is_err(), "the query finished within {deadline:?}");
    let dropped = Instant::now();
    // The evaluation holds a reference to the server until it returns.
    while Arc::strong_count(&server) > 1 {
        assert!(
            dropped.elapsed() < Duration::from_secs(20),
            "the evaluation is still running"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stop = dropped.elapsed();
    eprintln!(
        "one bootstrap {one:?}; a query of {hidden} bootstraps (≈{:?} on 2 threads) stopped \
         {stop:?} after its session was dropped",
        one * hidden as u32 / 2
    );
    // Uncancelled, it would run for ~hidden/2 bootstraps more.
    assert!(
        stop < one * 8 + Duration::from_millis(200),
        "stopped after {stop:?} (one bootstrap: {one:?})"
    );
    assert_eq!(budget.in_use(), 1);
    drop(server);
    assert_eq!(budget.in_use(), 0);
}

/// A server whose HE memory budget is full (here: below one key) tells an HE client why, in
/// its welcome; Yao is still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_he_budget_is_a_clear_refusal() {
    let mut config = ServerConfig::new(model());
    config.security = ServerSecurity::InsecurePlaintext;
    config.he_memory_budget = veil_fhe::key_memory_bytes() - 1;
    let served = Arc::new(Served::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(veil_protocols::serve(listener, served));
    let e = Client::connect(&addr, ClientOptions::insecure_plaintext(Protocol::He))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, SessionError::Refused(w) if w.contains("HE memory budget")),
        "{e}"
    );
    classifies_correctly(&addr, Protocol::Yao, 1).await;
}

/// One plaintext session of `protocol` classifies test digit `sample` as the integer model
/// does.
async fn classifies_correctly(addr: &str, protocol: Protocol, sample: usize) {
    let m = model();
    let digit = &digits_split().test.samples[sample];
    let mut c = Client::connect(addr, ClientOptions::insecure_plaintext(protocol))
        .await
        .unwrap();
    let p = c
        .classify(&[m.quantize_input(&digit.pixels)])
        .await
        .unwrap();
    assert_eq!(p[0].class, Some(m.predict(&digit.pixels)));
    c.close().await.unwrap();
}

/// The honest key fits the limit it sets, and is conformant.
#[test]
fn an_honest_key_fits_the_limit_and_conforms() {
    let (_, bytes) = honest();
    let words = veil_fhe::compressed_key_words() * 8;
    eprintln!(
        "honest key: {} bytes ({} of words + {} of overhead); limit {}",
        bytes.len(),
        words,
        bytes.len() as u64 - words,
        he::key_limit()
    );
    assert!((words..=he::key_limit()).contains(&(bytes.len() as u64)));
    he::decode_key(bytes).unwrap();
}
