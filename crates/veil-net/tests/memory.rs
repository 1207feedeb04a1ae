//! Behaviour specific to the in-memory transport: peer loss, timeouts and back-pressure.

use std::time::{Duration, Instant};

use veil_net::{Channel, ChannelConfig, NetError};

const TIMEOUT: Duration = Duration::from_millis(300);
const MARGIN: Duration = Duration::from_millis(700);

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(TIMEOUT)
}

#[tokio::test]
async fn dropped_peer_is_peer_closed() {
    let (mut a, b) = Channel::memory_pair(config());
    drop(b);
    let err = a.recv::<u64>().await.unwrap_err();
    assert!(err.is_peer_closed(), "{err:?}");
    let err = a.send(&1u64).await.unwrap_err();
    assert!(err.is_peer_closed(), "{err:?}");
    assert_eq!(a.stats().messages_sent, 0);
}

#[tokio::test]
async fn queued_frames_are_delivered_before_peer_closed() {
    let (mut a, mut b) = Channel::memory_pair(config());
    a.send(&"one").await.unwrap();
    a.send_bytes(b"two").await.unwrap();
    a.close().await.unwrap();
    assert_eq!(b.recv::<String>().await.unwrap(), "one");
    assert_eq!(b.recv_bytes().await.unwrap(), b"two");
    assert!(b.recv_bytes().await.unwrap_err().is_peer_closed());
}

#[tokio::test]
async fn silent_peer_times_out_and_receive_can_be_retried() {
    let (mut a, mut b) = Channel::memory_pair(config());
    let start = Instant::now();
    let err = a.recv::<u32>().await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(err, NetError::Timeout { op: "read", after } if after == TIMEOUT),
        "{err:?}"
    );
    assert!(
        elapsed >= TIMEOUT && elapsed < TIMEOUT + MARGIN,
        "{elapsed:?}"
    );
    b.send(&9u32).await.unwrap();
    assert_eq!(a.recv::<u32>().await.unwrap(), 9);
}

#[tokio::test]
async fn full_queue_makes_sends_time_out() {
    let (mut a, mut b) = Channel::memory_pair(config());
    let mut sent = 0u32;
    let err = loop {
        match a.send(&sent).await {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 1000, "sends never blocked");
    };
    assert!(
        matches!(err, NetError::Timeout { op: "write", .. }),
        "{err:?}"
    );
    assert_eq!(a.stats().messages_sent, u64::from(sent));
    // Nothing was lost and the channel still works once the peer catches up.
    for i in 0..sent {
        assert_eq!(b.recv::<u32>().await.unwrap(), i);
    }
    a.send(&sent).await.unwrap();
    assert_eq!(b.recv::<u32>().await.unwrap(), sent);
}

#[tokio::test]
async fn max_frame_is_enforced_in_memory() {
    let (mut a, mut b) = Channel::memory_pair(config().with_max_frame(8));
    let err = a.send_bytes(&[0; 9]).await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 9, max: 8 }),
        "{err:?}"
    );
    let err = a.send(&"a long string").await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { max: 8, .. }),
        "{err:?}"
    );
    a.send_bytes(&[1; 8]).await.unwrap();
    assert_eq!(b.recv_bytes().await.unwrap(), [1; 8]);
    assert_eq!(a.peer_addr(), None);
}

#[tokio::test]
async fn a_message_above_a_receive_bound_is_refused_before_it_is_decoded() {
    let (mut a, mut b) = Channel::memory_pair(config());
    a.send(&vec![7u8; 100]).await.unwrap();
    let err = b.recv_within::<Vec<u8>>(50).await.unwrap_err();
    assert!(
        matches!(err, NetError::FrameTooLarge { len: 101, max: 50 }),
        "{err:?}"
    );
    a.send(&vec![7u8; 40]).await.unwrap();
    assert_eq!(b.recv_within::<Vec<u8>>(50).await.unwrap(), vec![7u8; 40]);
}
