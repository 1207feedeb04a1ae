//! Misbehaving peers on a real loopback socket: a raw `TcpStream` writes bytes by hand and the
//! channel on the other end must fail cleanly, promptly, and without panicking.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use veil_net::{Channel, ChannelConfig, NetError};

const TIMEOUT: Duration = Duration::from_millis(300);
/// Slack allowed on top of a timeout before a test calls it late.
const MARGIN: Duration = Duration::from_millis(700);

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(TIMEOUT)
}

/// A raw socket and the channel accepted from it.
async fn raw_peer(config: ChannelConfig) -> (TcpStream, Channel) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (raw, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (raw.unwrap(), Channel::from_tcp(accepted.unwrap().0, config))
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

#[tokio::test]
async fn truncated_payload() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&1000u32.to_le_bytes()).await.unwrap();
    raw.write_all(&[9u8; 10]).await.unwrap();
    drop(raw);
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Truncated {
                expected: 1000,
                got: 10
            }
        ),
        "{err:?}"
    );
    // The stream is no longer at a frame boundary: later receives fail too.
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(matches!(err, NetError::Io(_)), "{err:?}");
    assert_eq!(ch.stats().messages_received, 0);
}

#[tokio::test]
async fn truncated_header() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&[5, 0]).await.unwrap();
    drop(raw);
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Truncated {
                expected: 4,
                got: 2
            }
        ),
        "{err:?}"
    );
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Expected {
    id: u64,
    name: String,
    ok: bool,
}

#[tokio::test]
async fn garbage_payload_is_a_decode_error() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&frame(&[0xFF; 12])).await.unwrap();
    // A struct whose string announces 2^62 bytes: refused by the decode limit, not allocated.
    let mut hostile = vec![7u8, 0xFD];
    hostile.extend_from_slice(&(1u64 << 62).to_le_bytes());
    hostile.push(b'x');
    raw.write_all(&frame(&hostile)).await.unwrap();
    // An invalid bool.
    raw.write_all(&frame(&[1, 1, b'a', 9])).await.unwrap();
    raw.write_all(&frame(&[1, 1, b'a', 1])).await.unwrap();
    for _ in 0..3 {
        let err = ch.recv::<Expected>().await.unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err:?}");
    }
    let good: Expected = ch.recv().await.unwrap();
    assert_eq!((good.id, good.name.as_str(), good.ok), (1, "a", true));
}

#[tokio::test]
async fn huge_announced_frame_is_rejected_immediately() {
    let (mut raw, mut ch) =
        raw_peer(ChannelConfig::default().with_timeouts(Duration::from_secs(5))).await;
    raw.write_all(&[0xFF; 4]).await.unwrap();
    let start = Instant::now();
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 0xFFFF_FFFF, max } if max == 64 << 20),
        "{err:?}"
    );
    drop(raw);
}

#[tokio::test]
async fn announced_frame_above_configured_max() {
    let (mut raw, mut ch) = raw_peer(config().with_max_frame(16)).await;
    raw.write_all(&frame(&[0; 17])).await.unwrap();
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 17, max: 16 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn silent_peer_times_out_and_receive_can_be_retried() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    let start = Instant::now();
    let err = ch.recv_bytes().await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, NetError::Timeout { op: "read", after } if after == TIMEOUT),
        "{err:?}"
    );
    assert!(
        elapsed >= TIMEOUT && elapsed < TIMEOUT + MARGIN,
        "{elapsed:?}"
    );
    // Nothing of a frame had arrived: the channel is still at a frame boundary.
    raw.write_all(&frame(b"late")).await.unwrap();
    assert_eq!(ch.recv_bytes().await.unwrap(), b"late");
}

#[tokio::test]
async fn timeout_inside_a_frame_poisons_the_receiving_side() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&[4, 0]).await.unwrap();
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    raw.write_all(&[0, 0, 1, 2, 3, 4]).await.unwrap();
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(matches!(err, NetError::Io(_)), "{err:?}");
}

#[tokio::test]
async fn clean_close_is_peer_closed() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&frame(b"last")).await.unwrap();
    raw.shutdown().await.unwrap();
    assert_eq!(ch.recv_bytes().await.unwrap(), b"last");
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(err.is_peer_closed(), "{err:?}");
    let err = ch.recv::<u8>().await.unwrap_err();
    assert!(err.is_peer_closed(), "{err:?}");
    drop(raw);
}

#[tokio::test]
async fn connect_to_closed_port_fails_cleanly() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = Channel::connect(("127.0.0.1", port), config())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            NetError::Io(_) | NetError::Timeout { op: "connect", .. }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn large_announced_frame_then_silence_times_out() {
    let (mut raw, mut ch) = raw_peer(config()).await;
    raw.write_all(&(60u32 << 20).to_le_bytes()).await.unwrap();
    raw.write_all(&[1, 2, 3, 4, 5]).await.unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let err = ch.recv_bytes_into(&mut buf).await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, NetError::Timeout { op: "read", .. }),
        "{err:?}"
    );
    assert!(elapsed < TIMEOUT + MARGIN, "{elapsed:?}");
    // The buffer grew with the data, not with the announced length.
    assert!(buf.capacity() <= 1 << 20, "capacity {}", buf.capacity());
    drop(raw);
}

#[tokio::test]
async fn peer_that_never_reads_makes_sends_time_out() {
    let (raw, mut ch) = raw_peer(config()).await;
    let big = vec![0u8; 48 << 20];
    let start = Instant::now();
    let err = ch.send_bytes(&big).await.unwrap_err();
    assert!(
        matches!(err, NetError::Timeout { op: "write", .. }),
        "{err:?}"
    );
    assert!(start.elapsed() < TIMEOUT + MARGIN);
    // Part of the frame may be on the wire: the sending side is unusable now.
    let err = ch.send_bytes(b"x").await.unwrap_err();
    assert!(matches!(err, NetError::Io(_)), "{err:?}");
    assert_eq!(ch.stats().messages_sent, 0);
    drop(raw);
}

#[tokio::test]
async fn peer_reset_is_an_error_not_a_panic() {
    let (raw, mut ch) = raw_peer(config()).await;
    // Closing a socket with unread data in its receive buffer resets the connection.
    ch.send_bytes(b"never read").await.unwrap();
    ch.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    drop(raw);
    // Either a clean end of stream or a reset, depending on timing; never a panic.
    let err = ch.recv_bytes().await.unwrap_err();
    assert!(
        matches!(err, NetError::PeerClosed | NetError::Io(_)),
        "{err:?}"
    );
}
