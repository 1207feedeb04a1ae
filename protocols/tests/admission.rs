//! Admission under `serve`: idle and oversized connections cannot keep an honest client out.
//!
//! - 400 idle TCP connections (no bytes at all) to one server, all from 127.0.0.1, and a
//!   pinned, allow-listed client from the same address is still served within 2 seconds;
//! - the pending caps evict the oldest pending connection of an address, or of all;
//! - a first handshake frame announcing 64 MiB is refused at once;
//! - a connection that stays silent, or completes the handshake and then stays silent, is
//!   closed after the handshake timeout without ever holding a session slot;
//! - a client that finds every slot taken waits for one in order, and is told the server is
//!   busy when the wait is too long or the queue full.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use veil_net::{Channel, ChannelConfig, Identity};
use veil_nn::data::digits_split;
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig, ServerSecurity};

fn model() -> veil_nn::graph::QuantGraph {
    veil_nn::bundled_model().unwrap().quantized
}

/// A server identity, a client identity on its allow-list, and the configuration.
fn pinned_config() -> (ServerConfig, Arc<Identity>) {
    let client = Arc::new(Identity::generate());
    let mut config = ServerConfig::new(model());
    config.security = ServerSecurity::Noise {
        identity: Arc::new(Identity::generate()),
        allowed_clients: Some(vec![client.public()].into()),
    };
    (config, client)
}

async fn start(config: ServerConfig) -> SocketAddr {
    let served = Arc::new(Served::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(veil_protocols::serve(listener, served));
    addr
}

/// A TCP connection to `server` from the loopback address `127.0.0.<from>`.
async fn connect_from(from: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, from], 0)))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// Whether the server has closed `s` (end of stream or reset), waiting at most `wait`.
async fn closed(s: &mut TcpStream, wait: Duration) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(wait, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// How many of `conns` the server has closed, waiting `wait` on each open one.
async fn count_closed(conns: &mut [TcpStream], wait: Duration) -> usize {
    let mut n = 0;
    for s in conns.iter_mut() {
        if closed(s, wait).await {
            n += 1;
        }
    }
    n
}

/// One complete Yao query of test digit `digit`; returns the time from connect to close.
async fn pinned_query(
    addr: SocketAddr,
    config_key: veil_net::PublicKey,
    client: &Arc<Identity>,
    digit: usize,
) -> Duration {
    let model = model();
    let sample = &digits_split().test.samples[digit];
    let t0 = Instant::now();
    let mut c = Client::connect(
        &addr.to_string(),
        ClientOptions::new(Protocol::Yao, config_key).with_identity(client.clone()),
    )
    .await
    .unwrap();
    let p = c
        .classify(&[model.quantize_input(&sample.pixels)])
        .await
        .unwrap();
    c.close().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(p[0].class, Some(model.predict(&sample.pixels)));
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hundred_idle_connections_do_not_delay_a_pinned_client() {
    let (config, client) = pinned_config();
    let key = config.public_key().unwrap();
    let total = config.max_pending_handshakes;
    let timeout = config.handshake_timeout;
    let addr = start(config).await;
    let quiet = pinned_query(addr, key, &client, 1).await;

    // 400 connections that never send a byte, all from the honest client's own address.
    let mut idle = Vec::new();
    for _ in 0..400 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server take them all in.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let loaded = pinned_query(addr, key, &client, 2).await;
    eprintln!(
        "a pinned Yao query: {:.0} ms on a quiet server, {:.0} ms with 400 idle connections \
         held open",
        quiet.as_secs_f64() * 1e3,
        loaded.as_secs_f64() * 1e3
    );
    assert!(
        loaded < Duration::from_secs(2),
        "served {loaded:?} after connecting"
    );
    // The server kept at most `total` of them pending and closed the older ones (the honest
    // client pushed out one more).
    let shut = count_closed(&mut idle, Duration::from_millis(5)).await;
    assert!(shut > 400 - total, "{shut} of 400 idle connections closed");
    // Once they have been idle for the grace, the per-address cap closes them too.
    tokio::time::sleep(veil_protocols::server::IDLE_GRACE).await;
    let again = pinned_query(addr, key, &client, 5).await;
    assert!(again < Duration::from_secs(2), "{again:?}");
    // The rest are closed when the handshake timeout expires.
    tokio::time::sleep(timeout).await;
    let shut = count_closed(&mut idle, Duration::from_millis(500)).await;
    assert_eq!(shut, 400, "every idle connection closed after {timeout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caps_evict_the_oldest_pending_connection_of_an_address_or_of_all() {
    let (mut config, client) = pinned_config();
    let key = config.public_key().unwrap();
    config.max_pending_handshakes = 8;
    config.max_pending_per_address = 4;
    config.handshake_timeout = Duration::from_secs(30);
    let addr = start(config).await;
    let settle = || tokio::time::sleep(Duration::from_millis(100));
    let mut two = Vec::new();
    let mut three = Vec::new();
    // Four from 127.0.0.2, then four from 127.0.0.3: eight pending, nobody evicted.
    for _ in 0..4 {
        two.push(connect_from(2, addr).await);
        settle().await;
    }
    for _ in 0..4 {
        three.push(connect_from(3, addr).await);
        settle().await;
    }
    assert_eq!(count_closed(&mut two, Duration::from_millis(50)).await, 0);
    assert_eq!(count_closed(&mut three, Duration::from_millis(50)).await, 0);
    // Only connections idle for the grace are closed to make room for a new one.
    tokio::time::sleep(veil_protocols::server::IDLE_GRACE).await;
    // A ninth, from 127.0.0.4: the total cap closes the oldest of all, 127.0.0.2's first.
    let mut four = vec![connect_from(4, addr).await];
    settle().await;
    assert!(closed(&mut two[0], Duration::from_secs(2)).await);
    assert_eq!(
        count_closed(&mut two[1..], Duration::from_millis(50)).await,
        0
    );
    // A fifth from 127.0.0.3: its own oldest goes, not another address's.
    three.push(connect_from(3, addr).await);
    settle().await;
    assert!(closed(&mut three[0], Duration::from_secs(2)).await);
    assert_eq!(
        count_closed(&mut three[1..], Duration::from_millis(50)).await,
        0
    );
    assert_eq!(
        count_closed(&mut two[1..], Duration::from_millis(50)).await,
        0
    );
    assert_eq!(count_closed(&mut four, Duration::from_millis(50)).await, 0);
    // An honest client from a crowded address is served: it pushes out an idle one.
    let took = pinned_query(addr, key, &client, 3).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_sent_their_handshake_are_not_evicted_by_their_address_cap() {
    let (mut config, client) = pinned_config();
    let key = config.public_key().unwrap();
    config.max_pending_per_address = 4;
    config.handshake_timeout = Duration::from_secs(30);
    let addr = start(config).await;
    // Eight clients from 127.0.0.5 complete the handshake and hold off their hello: pending,
    // over the address's cap, but not idle.
    let mut busy = Vec::new();
    for _ in 0..8 {
        let mut ch = Channel::from_tcp(connect_from(5, addr).await, ChannelConfig::default());
        ch.secure_client(&client, &key).await.unwrap();
        busy.push(ch);
    }
    tokio::time::sleep(veil_protocols::server::IDLE_GRACE).await;
    // Another from the same address: nobody there is idle, so nobody is closed.
    let mut late = Channel::from_tcp(connect_from(5, addr).await, ChannelConfig::default());
    late.secure_client(&client, &key).await.unwrap();
    // Each of them still gets its session.
    busy.push(late);
    for ch in busy {
        // The channel is secure already: the client skips its own handshake.
        let opts = ClientOptions::insecure_plaintext(Protocol::Yao);
        let mut c = Client::start(ch, opts).await.unwrap();
        let sample = &digits_split().test.samples[0];
        let m = model();
        let p = c
            .classify(&[m.quantize_input(&sample.pixels)])
            .await
            .unwrap();
        assert_eq!(p[0].class, Some(m.predict(&sample.pixels)));
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_first_frame_announcing_64_mib_is_refused_at_once() {
    let (config, _) = pinned_config();
    let addr = start(config).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // The header of a 64 MiB frame, and then nothing: the server must not wait for it.
    s.write_all(&(64u32 << 20).to_le_bytes()).await.unwrap();
    let t0 = Instant::now();
    assert!(closed(&mut s, Duration::from_secs(4)).await, "still open");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "closed after {took:?}");
    // A header one byte longer than the Noise IK first message is refused the same way.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&97u32.to_le_bytes()).await.unwrap();
    assert!(closed(&mut s, Duration::from_secs(1)).await, "still open");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_time_out_without_holding_a_session_slot() {
    let (mut config, client) = pinned_config();
    let key = config.public_key().unwrap();
    config.handshake_timeout = Duration::from_millis(700);
    config.max_sessions = 1;
    let addr = start(config).await;
    // Silent from the first byte.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Authenticated, and then silent instead of sending its hello.
    let mut quiet = Channel::connect(addr, ChannelConfig::default())
        .await
        .unwrap();
    quiet.secure_client(&client, &key).await.unwrap();
    // The only slot is free for an honest client meanwhile.
    let took = pinned_query(addr, key, &client, 4).await;
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(closed(&mut silent, Duration::from_secs(3)).await);
    let t0 = Instant::now();
    assert!(quiet.recv_bytes().await.is_err(), "closed by the server");
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_queues_clients_in_order_and_says_when_it_is_busy() {
    let (mut config, client) = pinned_config();
    let key = config.public_key().unwrap();
    config.max_sessions = 1;
    config.queue_timeout = Duration::from_secs(1);
    let addr = start(config.clone()).await;
    let opts = || ClientOptions::new(Protocol::Yao, key).with_identity(client.clone());
    let target = addr.to_string();
    // The first client holds the only slot.
    let holder = Client::connect(&target, opts()).await.unwrap();
    // The second waits for it, and is served once the first leaves.
    let waiter = {
        let (target, opts) = (target.clone(), opts());
        tokio::spawn(async move {
            let t0 = Instant::now();
            let c = Client::connect(&target, opts).await;
            (c.map(|_| ()), t0.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    holder.close().await.unwrap();
    let (r, waited) = waiter.await.unwrap();
    r.unwrap();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    // Nobody leaves now: a third waits `queue_timeout` and is told the server is busy.
    let mut holder = Client::connect(&target, opts()).await.unwrap();
    let t0 = Instant::now();
    let e = Client::connect(&target, opts()).await.err().unwrap();
    assert!(e.to_string().contains("busy"), "{e}");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // The holder's session still works.
    let sample = &digits_split().test.samples[0];
    let m = model();
    let p = holder
        .classify(&[m.quantize_input(&sample.pixels)])
        .await
        .unwrap();
    assert_eq!(p[0].class, Some(m.predict(&sample.pixels)));
    drop(holder);

    // With no queue at all, a client finding every slot taken is refused at once.
    config.max_queued_sessions = 0;
    config.queue_timeout = Duration::from_secs(30);
    let addr = start(config).await.to_string();
    let _holder = Client::connect(&addr, opts()).await.unwrap();
    let t0 = Instant::now();
    let e = Client::connect(&addr, opts()).await.err().unwrap();
    assert!(e.to_string().contains("busy"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
}
