//! Hostile peers: every misbehaviour ends in an error within the channel timeout, never a
//! panic or a hang.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_net::{tcp_pair, Channel, ChannelConfig, NetError};
use veil_ot::base::{BaseOtReceiver, BaseOtSender};
use veil_ot::{ChouOrlandi, OtError, OtReceiver, OtSender};

const TIMEOUT: Duration = Duration::from_millis(300);

async fn pair() -> (Channel, Channel) {
    tcp_pair(ChannelConfig::default().with_timeouts(TIMEOUT))
        .await
        .unwrap()
}

fn co(seed: u64) -> ChouOrlandi<ChaCha20Rng> {
    ChouOrlandi::new(ChaCha20Rng::seed_from_u64(seed))
}

#[tokio::test]
async fn truncated_first_message() {
    let (mut evil, mut me) = pair().await;
    evil.send_bytes(&[7u8; 20]).await.unwrap();
    evil.flush().await.unwrap();
    let e = co(1)
        .receive_random(&mut me, &[true; 128])
        .await
        .unwrap_err();
    assert!(matches!(e, OtError::Malformed(_)), "{e}");
}

#[tokio::test]
async fn invalid_points_are_rejected() {
    // Not a canonical encoding, and the identity.
    for bad in [[0xffu8; 32], [0u8; 32]] {
        let (mut evil, mut me) = pair().await;
        let mut msg = bad.to_vec();
        msg.extend_from_slice(&[0u8; 16]);
        evil.send_bytes(&msg).await.unwrap();
        evil.flush().await.unwrap();
        let e = co(2)
            .receive_random(&mut me, &[false; 128])
            .await
            .unwrap_err();
        assert!(matches!(e, OtError::InvalidPoint { index: 0 }), "{e}");
    }
    // An invalid point among the receiver's reply.
    let (mut evil, mut me) = pair().await;
    let s = tokio::spawn(async move { co(3).send_random(&mut me, 4).await });
    let _first = evil.recv_bytes().await.unwrap();
    let good = curve25519_dalek::constants::RISTRETTO_BASEPOINT_COMPRESSED.to_bytes();
    let mut reply = Vec::new();
    for i in 0..4 {
        reply.extend_from_slice(if i == 2 { &[0xee; 32] } else { &good });
    }
    evil.send_bytes(&reply).await.unwrap();
    evil.flush().await.unwrap();
    let e = s.await.unwrap().unwrap_err();
    assert!(matches!(e, OtError::InvalidPoint { index: 2 }), "{e}");
}

#[tokio::test]
async fn wrong_count_of_points() {
    let (mut evil, mut me) = pair().await;
    let s = tokio::spawn(async move { co(4).send_random(&mut me, 128).await });
    let _first = evil.recv_bytes().await.unwrap();
    evil.send_bytes(&[0u8; 32 * 127]).await.unwrap();
    evil.flush().await.unwrap();
    let e = s.await.unwrap().unwrap_err();
    assert!(matches!(e, OtError::Malformed(_)), "{e}");
}

/// Sets up a real IKNP pair, then hands the receiver's channel to the test as the evil peer.
async fn sender_facing_evil_peer() -> (OtSender, Channel, Channel) {
    let (mut a, mut b) = pair().await;
    let r = tokio::spawn(async move {
        OtReceiver::setup(&mut b, &mut ChaCha20Rng::seed_from_u64(5))
            .await
            .unwrap();
        b
    });
    let s = OtSender::setup(&mut a, &mut ChaCha20Rng::seed_from_u64(6))
        .await
        .unwrap();
    (s, a, r.await.unwrap())
}

#[tokio::test]
async fn wrong_size_extension_matrix() {
    let (mut s, mut a, mut evil) = sender_facing_evil_peer().await;
    evil.send_bytes(&[1u8; 16 * 128 * 2 - 16]).await.unwrap();
    evil.flush().await.unwrap();
    let e = s.send_correlated(&mut a, 256).await.unwrap_err();
    assert!(matches!(e, OtError::Malformed(_)), "{e}");
}

#[tokio::test]
async fn early_close_is_a_channel_error() {
    let (mut s, mut a, evil) = sender_facing_evil_peer().await;
    drop(evil);
    let e = s.send_correlated(&mut a, 1000).await.unwrap_err();
    assert!(matches!(e, OtError::Net(NetError::PeerClosed)), "{e}");
}

#[tokio::test]
async fn silent_peer_times_out() {
    let (mut s, mut a, _evil) = sender_facing_evil_peer().await;
    let t0 = Instant::now();
    let e = s.send_correlated(&mut a, 1000).await.unwrap_err();
    assert!(matches!(e, OtError::Net(ref n) if n.is_timeout()), "{e}");
    assert!(t0.elapsed() < TIMEOUT * 3, "{:?}", t0.elapsed());
    // The base OT receiver too.
    let (_evil, mut me) = pair().await;
    let t0 = Instant::now();
    let e = co(7).receive_random(&mut me, &[true; 8]).await.unwrap_err();
    assert!(matches!(e, OtError::Net(ref n) if n.is_timeout()), "{e}");
    assert!(t0.elapsed() < TIMEOUT * 3);
}

#[tokio::test]
async fn lying_chosen_ot_frame() {
    let (mut a, mut b) = pair().await;
    let r = tokio::spawn(async move {
        let mut rcv = OtReceiver::setup(&mut b, &mut ChaCha20Rng::seed_from_u64(8))
            .await
            .unwrap();
        rcv.receive_chosen(&mut b, &[true, false, true]).await
    });
    let mut s = OtSender::setup(&mut a, &mut ChaCha20Rng::seed_from_u64(9))
        .await
        .unwrap();
    s.send_random(&mut a, 3).await.unwrap();
    // Claims three messages of 1 GiB each in a frame of a few bytes.
    let mut frame = 3u32.to_le_bytes().to_vec();
    for _ in 0..3 {
        frame.extend_from_slice(&(1u32 << 30).to_le_bytes());
    }
    frame.extend_from_slice(&[0u8; 10]);
    a.send_bytes(&frame).await.unwrap();
    a.flush().await.unwrap();
    let e = r.await.unwrap().unwrap_err();
    assert!(matches!(e, OtError::Malformed(_)), "{e}");
}
