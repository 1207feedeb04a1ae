//! Fault injection: a loopback proxy between a client and the server that drops, truncates,
//! delays, duplicates or corrupts one frame, at every frame index of every protocol, in each
//! direction. Every case must end within the timeouts, either in an error or (when the fault
//! strikes after the client has its answer) with the correct answer, never a wrong one; the
//! server must keep serving; and nothing secret may reach the server's logs.
//!
//! The model is a small 64-3-10 network so that a session moves little data; the frame
//! structure of each protocol is the same as for the bundled model.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use veil_net::{ChannelConfig, Identity};
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig, ServerSecurity};

mod common;
use common::{proxy_legs, read_frame, small_model, Logs};

/// Channel timeouts: short, except under HE, where the server waits for the client's key
/// generation (about a second) before the key upload.
fn timeout(p: Protocol) -> Duration {
    match p {
        Protocol::He => Duration::from_millis(3000),
        _ => Duration::from_millis(400),
    }
}

/// Faulty sessions run at once: many while they mostly wait on timeouts, few under HE, whose
/// key generation keeps the CPU busy.
fn concurrency(p: Protocol) -> usize {
    match p {
        Protocol::He => 3,
        _ => 32,
    }
}
/// Longest a faulty case may take, from connect to the client's result, under load.
const CASE_LIMIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Drop,
    Truncate,
    Delay,
    Duplicate,
    Corrupt,
}

const FAULTS: [Fault; 5] = [
    Fault::Drop,
    Fault::Truncate,
    Fault::Delay,
    Fault::Duplicate,
    Fault::Corrupt,
];

/// Client to server (0) or server to client (1).
type Dir = usize;

fn channel(p: Protocol) -> ChannelConfig {
    ChannelConfig::default().with_timeouts(timeout(p))
}

/// Forwards frames from `from` to `to`, applying `fault` to frame `at` of this direction;
/// counts frames in `count`.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    fault: Option<(usize, Fault)>,
    delay: Duration,
    count: Arc<AtomicUsize>,
) {
    while let Some((mut header, mut payload)) = read_frame(&mut from).await {
        let len = payload.len();
        let k = count.fetch_add(1, Ordering::SeqCst);
        let mut copies = 1;
        match fault {
            Some((at, f)) if at == k => match f {
                Fault::Drop => continue,
                Fault::Truncate => {
                    let _ = to.write_all(&header).await;
                    let _ = to.write_all(&payload[..len / 2]).await;
                    break;
                }
                Fault::Delay => tokio::time::sleep(delay).await,
                Fault::Duplicate => copies = 2,
                Fault::Corrupt => {
                    if len > 0 {
                        payload[len / 2] ^= 0x01;
                    } else {
                        header[3] ^= 0x40;
                    }
                }
            },
            _ => {}
        }
        for _ in 0..copies {
            if to.write_all(&header).await.is_err() || to.write_all(&payload).await.is_err() {
                return;
            }
        }
    }
    let _ = to.shutdown().await;
}

/// A one-connection proxy to `server`; returns its address and the frame counters.
async fn proxy(
    server: SocketAddr,
    fault: Option<(Dir, usize, Fault)>,
    delay: Duration,
) -> (SocketAddr, [Arc<AtomicUsize>; 2]) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = [Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0))];
    let c = counts.clone();
    tokio::spawn(async move {
        let Some((ir, iw, or, ow)) = proxy_legs(listener, server).await else {
            return;
        };
        let on = |d: Dir| fault.filter(|f| f.0 == d).map(|f| (f.1, f.2));
        tokio::join!(
            pump(ir, ow, on(0), delay, c[0].clone()),
            pump(or, iw, on(1), delay, c[1].clone())
        );
    });
    (addr, counts)
}

/// One session through a proxy: `Ok(class)` or the error's text, and how long it took.
async fn session(
    addr: SocketAddr,
    options: ClientOptions,
    codes: Vec<u8>,
) -> (Result<usize, String>, Duration) {
    let t0 = Instant::now();
    let run = async {
        let mut c = Client::connect(&addr.to_string(), options)
            .await
            .map_err(|e| e.to_string())?;
        let p = c.classify(&[codes]).await.map_err(|e| e.to_string())?;
        c.close().await.map_err(|e| e.to_string())?;
        p[0].class.ok_or_else(|| "no class".to_string())
    };
    let r = tokio::time::timeout(CASE_LIMIT, run)
        .await
        .unwrap_or_else(|_| Err("HUNG".to_string()));
    (r, t0.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_at_every_frame_ends_cleanly_and_the_server_survives() {
    let logs = Logs::default();
    let sink = logs.clone();
    tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .init();

    let model = small_model();
    let server_id = Arc::new(Identity::generate());
    let client_id = Arc::new(Identity::generate());
    let key = server_id.public();
    // One server per protocol, each with that protocol's timeouts.
    let mut servers = Vec::new();
    for p in Protocol::ALL {
        let mut config = ServerConfig::new(model.clone());
        config.protocols = vec![p];
        config.channel = channel(p);
        config.session_timeout = Duration::from_secs(20);
        config.security = ServerSecurity::Noise {
            identity: server_id.clone(),
            allowed_clients: Some(vec![client_id.public()].into()),
        };
        let served = Arc::new(Served::new(config).unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        servers.push(listener.local_addr().unwrap());
        tokio::spawn(veil_protocols::serve(listener, served));
    }

    let digit = &veil_nn::data::digits_split().test.samples[0];
    let codes = model.quantize_input(&digit.pixels);
    let want = model.predict(&digit.pixels);
    let options = |p: Protocol| {
        let mut o = ClientOptions::new(p, key).with_identity(client_id.clone());
        o.channel = channel(p);
        o
    };

    let mut report = Vec::new();
    for (protocol, server) in Protocol::ALL.into_iter().zip(servers) {
        let delay = timeout(protocol) + Duration::from_millis(300);
        // A clean run through the proxy counts the frames of each direction.
        let (addr, counts) = proxy(server, None, delay).await;
        let (r, _) = session(addr, options(protocol), codes.clone()).await;
        assert_eq!(
            r,
            Ok(want),
            "{protocol}: clean session; server log:\n{}",
            String::from_utf8_lossy(&logs.0.lock().unwrap())
        );
        // The server's last frames may still be in flight: wait for the counters to settle.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let frames = [
            counts[0].load(Ordering::SeqCst),
            counts[1].load(Ordering::SeqCst),
        ];
        let cases: Vec<(Dir, usize, Fault)> = (0..2)
            .flat_map(|d| (0..frames[d]).map(move |k| (d, k)))
            .flat_map(|(d, k)| FAULTS.iter().map(move |&f| (d, k, f)))
            .collect();
        let total = cases.len();
        let limit = Arc::new(tokio::sync::Semaphore::new(concurrency(protocol)));
        let mut tasks = tokio::task::JoinSet::new();
        for case in cases {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let opts = options(protocol);
            let codes = codes.clone();
            tasks.spawn(async move {
                let (addr, _) = proxy(server, Some(case), delay).await;
                let (r, took) = session(addr, opts, codes).await;
                drop(permit);
                (case, r, took)
            });
        }
        let (mut errors, mut answered) = (0, 0);
        while let Some(done) = tasks.join_next().await {
            let ((dir, k, fault), r, took) = done.unwrap();
            let what = format!("{protocol} dir {dir} frame {k} {fault:?}");
            assert!(took < CASE_LIMIT, "{what}: took {took:?}");
            match r {
                Ok(class) => {
                    assert_eq!(class, want, "{what}: a wrong answer");
                    answered += 1;
                }
                Err(e) => {
                    assert_ne!(e, "HUNG", "{what}");
                    assert!(!e.is_empty(), "{what}");
                    errors += 1;
                }
            }
        }
        report.push(format!(
            "{protocol}: frames {} up / {} down, {total} cases: {errors} errors, {answered} \
             correct answers (faults after the client's last need)",
            frames[0], frames[1]
        ));
        // The server still serves.
        let (addr, _) = proxy(server, None, delay).await;
        let (r, _) = session(addr, options(protocol), codes.clone()).await;
        assert_eq!(r, Ok(want), "{protocol}: the server stopped serving");
    }
    for line in &report {
        eprintln!("{line}");
    }

    // The logs saw the failures but no secret.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(text.contains("session failed"), "logs were captured");
    for (name, id) in [("server", &server_id), ("client", &client_id)] {
        let secret = id.to_text();
        let private = secret
            .lines()
            .find_map(|l| l.strip_prefix("private: "))
            .unwrap()
            .to_string();
        assert!(
            !text.contains(&private),
            "the {name} private key is in the logs"
        );
    }
    let weights = format!("{:?}", model.layers[0].weights);
    assert!(!text.contains(&weights[1..40]), "model weights in the logs");
    let input = format!("{codes:?}");
    assert!(
        !text.contains(&input[1..40]),
        "the client's input in the logs"
    );
}
