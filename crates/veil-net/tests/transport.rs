//! The transport seam: a channel over a counting wrapper, over a transport written here (a
//! fixed one-way delay, the shape a network emulator takes, and a tampering one), with the
//! channel's own behaviour (limits, handshakes, errors) unchanged.

use std::time::Duration;

use tokio::net::TcpListener;
use veil_net::transport::{
    Counting, FrameLimit, MemoryTransport, Payload, TcpTransport, TrafficCounter, TransportFuture,
};
use veil_net::{Channel, ChannelConfig, Identity, NetError, Stats, Transport};

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(Duration::from_secs(10))
}

/// A few flights each way, typed and raw, including an empty frame.
async fn exchange(a: &mut Channel, b: &mut Channel) {
    a.send(&(7u64, "seven".to_string())).await.unwrap();
    a.send_bytes(&[]).await.unwrap();
    a.flush().await.unwrap();
    let got: (u64, String) = b.recv().await.unwrap();
    assert_eq!(got.0, 7);
    assert!(b.recv_bytes().await.unwrap().is_empty());
    b.send_bytes(&[0x5A; 70_000]).await.unwrap();
    b.flush().await.unwrap();
    assert_eq!(a.recv_bytes().await.unwrap().len(), 70_000);
    a.send(&1u8).await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(b.recv::<u8>().await.unwrap(), 1);
}

#[tokio::test]
async fn a_counting_transport_agrees_with_the_channel_counters() {
    let counter = TrafficCounter::new();
    let (a, b) = MemoryTransport::pair();
    let mut a = Channel::over(Counting::new(a, counter.clone()), config());
    let mut b = Channel::over(b, config());
    exchange(&mut a, &mut b).await;
    assert_eq!(counter.snapshot(), a.stats());
    assert_eq!(counter.snapshot().bytes_sent, b.stats().bytes_received);
    assert_eq!(counter.snapshot().rounds, 2);
}

#[tokio::test]
async fn one_counter_totals_several_channels_over_tcp_and_sealed() {
    let counter = TrafficCounter::new();
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut totals = Stats::default();
    for _ in 0..2 {
        let (client, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let mut server = Channel::over(
            Counting::new(TcpTransport::new(accepted.unwrap().0), counter.clone()),
            config(),
        );
        let mut client = Channel::from_tcp(client.unwrap(), config());
        let pin = sid.public();
        let (c, s) = tokio::join!(
            client.secure_client(&cid, &pin),
            server.secure_server(&sid, None)
        );
        c.unwrap();
        s.unwrap();
        exchange(&mut client, &mut server).await;
        let mine = server.stats();
        totals.bytes_sent += mine.bytes_sent;
        totals.bytes_received += mine.bytes_received;
        totals.messages_sent += mine.messages_sent;
        totals.messages_received += mine.messages_received;
        totals.rounds += mine.rounds;
        assert!(server.peer_addr().is_some());
        server.close().await.unwrap();
    }
    assert_eq!(counter.snapshot(), totals);
}

/// A transport that delivers every frame `delay` after it was sent: half a round-trip time.
struct Delayed {
    inner: MemoryTransport,
    delay: Duration,
}

impl Transport for Delayed {
    fn name(&self) -> &'static str {
        "delayed"
    }

    fn send_frame<'a>(
        &'a mut self,
        payload: Payload<'a>,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        self.inner.send_frame(payload, progress)
    }

    fn recv_frame<'a>(
        &'a mut self,
        buf: &'a mut Vec<u8>,
        limit: FrameLimit,
        progress: &'a mut usize,
    ) -> TransportFuture<'a, ()> {
        let delay = self.delay;
        Box::pin(async move {
            self.inner.recv_frame(buf, limit, progress).await?;
            tokio::time::sleep(delay).await;
            Ok(())
        })
    }

    fn prefers_owned(&self) -> bool {
        true
    }
}

#[tokio::test(start_paused = true)]
async fn a_transport_of_ones_own_plugs_in_without_touching_the_channel() {
    let half_rtt = Duration::from_millis(25);
    let (a, b) = MemoryTransport::pair();
    let counter = TrafficCounter::new();
    let mut a = Channel::over(
        Counting::new(
            Box::new(Delayed {
                inner: a,
                delay: half_rtt,
            }) as Box<dyn Transport>,
            counter.clone(),
        ),
        config(),
    );
    let mut b = Channel::over(
        Delayed {
            inner: b,
            delay: half_rtt,
        },
        config(),
    );
    assert!(format!("{a:?}").contains("delayed"), "{a:?}");
    let start = tokio::time::Instant::now();
    let rounds = 4u32;
    let pong = tokio::spawn(async move {
        for _ in 0..rounds {
            let v: u32 = b.recv().await.unwrap();
            b.send(&(v + 1)).await.unwrap();
        }
        b
    });
    for i in 0..rounds {
        a.send(&i).await.unwrap();
        assert_eq!(a.recv::<u32>().await.unwrap(), i + 1);
    }
    pong.await.unwrap();
    assert_eq!(start.elapsed(), half_rtt * 2 * rounds);
    assert_eq!(counter.snapshot(), a.stats());
}

#[tokio::test]
async fn limits_are_enforced_whatever_the_transport() {
    let small = config().with_max_frame(64);
    let (a, b) = MemoryTransport::pair();
    let counter = TrafficCounter::new();
    let mut a = Channel::over(Counting::new(a, counter.clone()), config());
    let mut b = Channel::over(Counting::new(b, counter.clone()), small);
    a.send_bytes(&[1; 65]).await.unwrap();
    let err = b.recv_bytes().await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 65, max: 64 }),
        "{err:?}"
    );
    assert_eq!(counter.snapshot().messages_received, 0);
    // A client that is not speaking the handshake is refused by length, through the wrapper.
    a.send_bytes(&[0; 10]).await.unwrap();
    let err = b
        .secure_server(&Identity::generate(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::Handshake(_)), "{err:?}");
    drop(a);
    assert!(b.recv_bytes().await.unwrap_err().is_peer_closed());
}

#[test]
fn frame_limits_name_the_refusal() {
    assert!(FrameLimit::AtMost(4).check(4).is_none());
    assert!(matches!(
        FrameLimit::AtMost(4).check(5),
        Some(NetError::FrameTooLarge { len: 5, max: 4 })
    ));
    assert!(FrameLimit::Exactly(96).check(96).is_none());
    assert!(matches!(
        FrameLimit::Exactly(96).check(95),
        Some(NetError::UnexpectedLength {
            len: 95,
            expected: 96
        })
    ));
}
