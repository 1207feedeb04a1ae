//! A client that tampers with its OT messages does not learn the garbler's offset.
//!
//! The attack (Keller, Orsini and Scholl 2015, section 1): flipping bit `row` of column `col`
//! of IKNP's matrix `u` turns the evaluator's label into a valid one exactly when bit `col` of
//! the OT correlation is 0 (with SoftSpokenOT, flipping a bit of one group's correction does
//! the same for the group's four bits); when that correlation is the garbling offset `Δ` and
//! `Δ` serves every query, whether answers decode reveals `Δ` a few bits per query, and with
//! it the model.
//!
//! A frame-aware proxy between an honest client and a plaintext server (what a client that
//! deviates would send) flips one bit of the extension frame that fills the session's pool of
//! random OTs, for every group of columns.
//! Every tampered session must end in an error at the server, with a log line naming the
//! failed consistency check, before any garbled table of that query is sent; the client gets
//! an error, never an answer; so nothing it sees depends on `Δ`. Untampered sessions through
//! the same proxy are answered correctly, and the server keeps serving.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use veil_net::ChannelConfig;
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig, ServerSecurity};

mod common;
use common::{proxy_legs, read_frame, small_model, Logs};

/// The units of the pool's extension frames: SoftSpokenOT at `k = 4` with random choice bits
/// sends one block per 128 rows for each of its groups but the first.
const UNITS: usize = 128 / 4 - 1;

/// Bytes of one 128-row block of every unit: an extension frame is a multiple of this.
const UNIT_BLOCK_BYTES: usize = UNITS * 16;

/// Which bit to flip: of extension frame `query` of the session (0-based), bit `row` of
/// unit `unit` (the corrections of one group of four columns).
#[derive(Clone, Copy, Debug)]
struct Flip {
    query: usize,
    unit: usize,
    row: usize,
}

/// What the proxy saw.
#[derive(Default)]
struct Seen {
    /// Whether the flip was applied.
    flipped: bool,
    /// Lengths of the server's frames after the flipped frame.
    after: Vec<usize>,
}

/// Client to server: flips the chosen bit of the chosen extension frame.
async fn upstream(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    flip: Option<Flip>,
    seen: Arc<Mutex<Seen>>,
) {
    let mut extensions = 0;
    while let Some((header, mut payload)) = read_frame(&mut from).await {
        let len = payload.len();
        if len > 0 && len % UNIT_BLOCK_BYTES == 0 {
            if let Some(f) = flip.filter(|f| f.query == extensions) {
                // The frame holds sub-chunks of up to `SUB_BLOCKS` blocks per unit, each
                // unit after unit (`veil_ot::extension::frame_index`).
                let nb = len / UNIT_BLOCK_BYTES;
                let byte = veil_ot::extension::frame_index(UNITS, nb, f.unit, f.row / 128) * 16
                    + (f.row % 128) / 8;
                payload[byte] ^= 1 << (f.row % 8);
                seen.lock().unwrap().flipped = true;
            }
            extensions += 1;
        }
        if to.write_all(&header).await.is_err() || to.write_all(&payload).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Server to client: records what follows the flip.
async fn downstream(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, seen: Arc<Mutex<Seen>>) {
    while let Some((header, payload)) = read_frame(&mut from).await {
        {
            let mut s = seen.lock().unwrap();
            if s.flipped {
                s.after.push(payload.len());
            }
        }
        if to.write_all(&header).await.is_err() || to.write_all(&payload).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// A one-connection proxy to `server`.
async fn proxy(server: SocketAddr, flip: Option<Flip>) -> (SocketAddr, Arc<Mutex<Seen>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let s = seen.clone();
    tokio::spawn(async move {
        let Some((ir, iw, or, ow)) = proxy_legs(listener, server).await else {
            return;
        };
        tokio::join!(upstream(ir, ow, flip, s.clone()), downstream(or, iw, s));
    });
    (addr, seen)
}

/// Classifies `inputs` in one session through a proxy.
async fn classify(addr: SocketAddr, inputs: Vec<Vec<u8>>) -> Result<Vec<usize>, String> {
    let mut options = ClientOptions::insecure_plaintext(Protocol::Yao);
    options.channel = ChannelConfig::default().with_timeouts(Duration::from_secs(5));
    let run = async {
        let mut c = Client::connect(&addr.to_string(), options)
            .await
            .map_err(|e| e.to_string())?;
        let p = c.classify(&inputs).await.map_err(|e| e.to_string())?;
        c.close().await.map_err(|e| e.to_string())?;
        p.iter()
            .map(|p| p.class.ok_or_else(|| "no class".to_string()))
            .collect()
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| Err("HUNG".into()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_extension_bit_aborts_the_query_before_any_table() {
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .init();

    let model = small_model();
    let mut config = ServerConfig::new(model.clone());
    config.protocols = vec![Protocol::Yao];
    config.security = ServerSecurity::InsecurePlaintext;
    config.channel = ChannelConfig::default().with_timeouts(Duration::from_secs(5));
    let served = Arc::new(Served::new(config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap();
    tokio::spawn(veil_protocols::serve(listener, served));

    let digits = &veil_nn::data::digits_split().test.samples;
    let inputs: Vec<Vec<u8>> = digits[..2]
        .iter()
        .map(|d| model.quantize_input(&d.pixels))
        .collect();
    let want: Vec<usize> = digits[..2]
        .iter()
        .map(|d| model.predict(&d.pixels))
        .collect();

    // Untampered, through the same proxy.
    let (addr, _) = proxy(server, None).await;
    assert_eq!(classify(addr, inputs.clone()).await, Ok(want.clone()));

    // One bit of one unit, for every unit, in the extension that fills the session's pool of
    // random OTs (the first query's; the second query of a session draws from the pool and
    // runs no extension). The first frame holds at least 8 192 rows.
    let mut tasks = tokio::task::JoinSet::new();
    for unit in 0..UNITS {
        let flip = Flip {
            query: 0,
            unit,
            row: (unit * 613) % 8192,
        };
        let inputs = inputs.clone();
        tasks.spawn(async move {
            let (addr, seen) = proxy(server, Some(flip)).await;
            let r = classify(addr, inputs).await;
            // Let the server's last frames reach the proxy.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let seen = seen.lock().unwrap();
            (flip, r, seen.flipped, seen.after.clone())
        });
        if tasks.len() >= 16 {
            let done = tasks.join_next().await.unwrap().unwrap();
            check(done);
        }
    }
    while let Some(done) = tasks.join_next().await {
        check(done.unwrap());
    }

    // The server logged each failure, without saying which equation failed, and still serves.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    let failures = text
        .lines()
        .filter(|l| l.contains("session failed") && l.contains("consistency check"))
        .count();
    assert_eq!(failures, UNITS, "server log:\n{text}");
    let (addr, _) = proxy(server, None).await;
    assert_eq!(classify(addr, inputs).await, Ok(want));
}

fn check((flip, r, flipped, after): (Flip, Result<Vec<usize>, String>, bool, Vec<usize>)) {
    assert!(flipped, "{flip:?}: the proxy found no extension frame");
    let e = r.expect_err(&format!("{flip:?}: a tampered session was answered"));
    assert_ne!(e, "HUNG", "{flip:?}");
    // After the flipped columns the server sent the 16-byte check key and nothing else: no
    // label offsets, no garbled table, no decoding bits.
    assert!(
        after.iter().all(|&len| len == 16) && after.len() <= 1,
        "{flip:?}: the server sent {after:?} after the tampered columns"
    );
}
