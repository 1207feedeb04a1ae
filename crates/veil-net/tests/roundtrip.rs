//! Typed and raw frames round-trip over both transports, with identical counters.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use veil_net::{tcp_pair, Channel, ChannelConfig, NetError, Stats, FRAME_HEADER_LEN};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Share {
    id: u32,
    label: String,
    values: Vec<u64>,
    mask: [u8; 16],
    flag: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Msg {
    Hello { party: u8 },
    Data(Vec<i64>),
    Done,
}

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(Duration::from_secs(5))
}

fn wire_len<T: Serialize>(value: &T) -> u64 {
    let payload = bincode::serde::encode_to_vec(value, bincode::config::standard()).unwrap();
    (FRAME_HEADER_LEN + payload.len()) as u64
}

fn share() -> Share {
    Share {
        id: 42,
        label: "input layer".to_string(),
        values: vec![0, 1, u64::MAX, 1 << 40],
        mask: [0x5A; 16],
        flag: Some(true),
    }
}

/// A: struct + Vec (flight 1), B: String + enum (flight 1), A: enum (flight 2).
async fn conversation(mut a: Channel, mut b: Channel) -> (Stats, Stats) {
    let alice = async move {
        a.send(&share()).await.unwrap();
        a.send(&vec![3u64, 1, 4, 1, 5]).await.unwrap();
        let s: String = a.recv().await.unwrap();
        assert_eq!(s, "ack ✓");
        let m: Msg = a.recv().await.unwrap();
        assert_eq!(m, Msg::Data(vec![-1, 0, i64::MIN]));
        a.send(&Msg::Done).await.unwrap();
        let stats = a.stats();
        a.close().await.unwrap();
        stats
    };
    let bob = async move {
        let s: Share = b.recv().await.unwrap();
        assert_eq!(s, share());
        let v: Vec<u64> = b.recv().await.unwrap();
        assert_eq!(v, [3, 1, 4, 1, 5]);
        b.send("ack ✓").await.unwrap();
        b.send(&Msg::Data(vec![-1, 0, i64::MIN])).await.unwrap();
        let m: Msg = b.recv().await.unwrap();
        assert_eq!(m, Msg::Done);
        assert!(b.recv::<Msg>().await.unwrap_err().is_peer_closed());
        b.stats()
    };
    tokio::join!(alice, bob)
}

fn check_conversation_stats(a: Stats, b: Stats) {
    let a_bytes = wire_len(&share()) + wire_len(&vec![3u64, 1, 4, 1, 5]) + wire_len(&Msg::Done);
    let b_bytes = wire_len(&"ack ✓") + wire_len(&Msg::Data(vec![-1, 0, i64::MIN]));
    assert_eq!(
        a,
        Stats {
            bytes_sent: a_bytes,
            bytes_received: b_bytes,
            messages_sent: 3,
            messages_received: 2,
            rounds: 2,
        }
    );
    assert_eq!(
        b,
        Stats {
            bytes_sent: b_bytes,
            bytes_received: a_bytes,
            messages_sent: 2,
            messages_received: 3,
            rounds: 1,
        }
    );
}

#[tokio::test]
async fn typed_messages_over_memory() {
    let (a, b) = Channel::memory_pair(config());
    let (sa, sb) = conversation(a, b).await;
    check_conversation_stats(sa, sb);
}

#[tokio::test]
async fn typed_messages_over_tcp() {
    let (a, b) = tcp_pair(config()).await.unwrap();
    assert!(a.peer_addr().is_some() && b.peer_addr().is_some());
    let (sa, sb) = conversation(a, b).await;
    check_conversation_stats(sa, sb);
}

#[tokio::test]
async fn memory_and_tcp_count_identically() {
    let (a, b) = Channel::memory_pair(config());
    let memory = conversation(a, b).await;
    let (a, b) = tcp_pair(config()).await.unwrap();
    let tcp = conversation(a, b).await;
    assert_eq!(memory, tcp);
}

async fn ping_pong(mut a: Channel, mut b: Channel) -> (Stats, Stats) {
    let alice = async move {
        a.send(&1u64).await.unwrap();
        let x: u64 = a.recv().await.unwrap();
        a.send(&(x + 1)).await.unwrap();
        a.flush().await.unwrap();
        a.stats()
    };
    let bob = async move {
        let x: u64 = b.recv().await.unwrap();
        b.send(&(x + 1)).await.unwrap();
        assert_eq!(b.recv::<u64>().await.unwrap(), 3);
        b.stats()
    };
    tokio::join!(alice, bob)
}

#[tokio::test]
async fn ping_pong_rounds_follow_flights() {
    for (a, b) in [
        Channel::memory_pair(config()),
        tcp_pair(config()).await.unwrap(),
    ] {
        let (sa, sb) = ping_pong(a, b).await;
        assert_eq!((sa.rounds, sb.rounds), (2, 1));
        assert_eq!((sa.messages_sent, sb.messages_sent), (2, 1));
        assert_eq!(sa.bytes_sent, sb.bytes_received);
        assert_eq!(sb.bytes_sent, sa.bytes_received);
        assert_eq!(sa.bytes_sent, 2 * (FRAME_HEADER_LEN as u64 + 1));
    }
}

#[tokio::test]
async fn stats_since_measures_a_phase() {
    let (mut a, mut b) = Channel::memory_pair(config());
    a.send(&0u8).await.unwrap();
    b.recv::<u8>().await.unwrap();
    let before = a.stats();
    a.send_bytes(&[1, 2, 3]).await.unwrap();
    a.send_bytes(&[]).await.unwrap();
    let phase = a.stats().since(&before);
    assert_eq!(phase.messages_sent, 2);
    assert_eq!(phase.bytes_sent, 2 * FRAME_HEADER_LEN as u64 + 3);
    // Still the first flight: no receive in between.
    assert_eq!(phase.rounds, 0);
    assert_eq!(a.stats().rounds, 1);
}

async fn raw_frames(mut a: Channel, mut b: Channel, max: usize) {
    let big: Vec<u8> = (0..max).map(|i| (i % 251) as u8).collect();
    let too_big = vec![7u8; max + 1];
    let err = a.send_bytes(&too_big).await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { len, max: m } if len == max as u64 + 1 && m == max),
        "{err:?}"
    );
    // A refused send writes nothing: the channel stays usable.
    a.send_bytes(&[]).await.unwrap();
    a.send_bytes(&big).await.unwrap();
    a.send_bytes(b"tail").await.unwrap();
    a.flush().await.unwrap();
    assert_eq!(b.recv_bytes().await.unwrap(), Vec::<u8>::new());
    let mut buf = Vec::with_capacity(8);
    b.recv_bytes_into(&mut buf).await.unwrap();
    assert_eq!(buf, big);
    b.recv_bytes_into(&mut buf).await.unwrap();
    assert_eq!(buf, b"tail");
    let sa = a.stats();
    assert_eq!(sa.messages_sent, 3);
    assert_eq!(sa.bytes_sent, 3 * FRAME_HEADER_LEN as u64 + max as u64 + 4);
    assert_eq!(sa, {
        let sb = b.stats();
        Stats {
            bytes_sent: sb.bytes_received,
            messages_sent: sb.messages_received,
            rounds: 1,
            ..Stats::default()
        }
    });
}

#[tokio::test]
async fn raw_frames_empty_exact_max_and_oversized() {
    let max = 1024;
    let cfg = config().with_max_frame(max);
    let (a, b) = Channel::memory_pair(cfg);
    raw_frames(a, b, max).await;
    let (a, b) = tcp_pair(cfg).await.unwrap();
    raw_frames(a, b, max).await;
}

#[tokio::test]
async fn oversized_typed_message_is_refused_before_sending() {
    let cfg = config().with_max_frame(100);
    for (mut a, mut b) in [Channel::memory_pair(cfg), tcp_pair(cfg).await.unwrap()] {
        let err = a.send(&vec![1u8; 200]).await.unwrap_err();
        assert!(
            matches!(err, NetError::FrameTooLarge { max: 100, .. }),
            "{err:?}"
        );
        a.send(&vec![1u8; 50]).await.unwrap();
        a.flush().await.unwrap();
        assert_eq!(b.recv::<Vec<u8>>().await.unwrap(), vec![1u8; 50]);
        assert_eq!(a.stats().messages_sent, 1);
    }
}

#[tokio::test]
async fn bulk_frames_over_tcp() {
    let (mut a, mut b) = tcp_pair(config()).await.unwrap();
    let data: Vec<u8> = (0..5 * 1024 * 1024 + 17)
        .map(|i| (i * 7 % 256) as u8)
        .collect();
    let expected = data.clone();
    let sender = async move {
        for _ in 0..3 {
            a.send_bytes(&data).await.unwrap();
        }
        a.send(&data).await.unwrap();
        a.close().await.unwrap();
    };
    let receiver = async move {
        let mut buf = Vec::new();
        for _ in 0..3 {
            b.recv_bytes_into(&mut buf).await.unwrap();
            assert!(buf == expected);
        }
        let typed: Vec<u8> = b.recv().await.unwrap();
        assert!(typed == expected);
        assert!(b.recv_bytes().await.unwrap_err().is_peer_closed());
    };
    tokio::join!(sender, receiver);
}

#[tokio::test]
async fn decode_errors_leave_the_channel_usable() {
    for (mut a, mut b) in [
        Channel::memory_pair(config()),
        tcp_pair(config()).await.unwrap(),
    ] {
        // Trailing bytes: a pair read as a single value.
        a.send(&(1u32, 2u32)).await.unwrap();
        // Wrong type: a string that is not valid UTF-8.
        a.send(&vec![3u8, 0xFF, 0xFE, 0xFD]).await.unwrap();
        a.send(&Msg::Hello { party: 1 }).await.unwrap();
        a.flush().await.unwrap();
        let err = b.recv::<u32>().await.unwrap_err();
        assert!(
            matches!(err, NetError::Decode(ref s) if s.contains("trailing")),
            "{err}"
        );
        let err = b.recv::<String>().await.unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
        assert_eq!(b.recv::<Msg>().await.unwrap(), Msg::Hello { party: 1 });
        assert_eq!(b.stats().messages_received, 3);
    }
}

#[tokio::test]
async fn connect_and_from_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = async {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ch = Channel::from_tcp(stream, config());
        let s: String = ch.recv().await.unwrap();
        ch.send(&s.len()).await.unwrap();
        ch.close().await.unwrap();
    };
    let client = async {
        let mut ch = Channel::connect(addr, config()).await.unwrap();
        assert_eq!(ch.peer_addr(), Some(addr));
        assert_eq!(ch.config(), &config());
        ch.send("hello").await.unwrap();
        assert_eq!(ch.recv::<usize>().await.unwrap(), 5);
        assert!(ch.recv::<usize>().await.unwrap_err().is_peer_closed());
    };
    tokio::join!(server, client);
}

/// Protocols run channel operations inside spawned tasks: every future must be `Send`.
#[test]
fn futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (mut a, _b) = Channel::memory_pair(config());
    assert_send(&a);
    assert_send(&a.send(&share()));
    assert_send(&a.recv::<Share>());
    assert_send(&a.send_bytes(&[]));
    assert_send(&a.recv_bytes());
    assert_send(&a.flush());
    assert_send(&Channel::connect("127.0.0.1:9", config()));
    assert_send(&tcp_pair(config()));
    assert_send(&a.close());
}
