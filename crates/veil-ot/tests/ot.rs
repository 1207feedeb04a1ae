//! OT over real loopback TCP, the two roles in separate tasks, checked against what each OT
//! must deliver.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_net::{tcp_pair, Channel, ChannelConfig};
use veil_ot::base::{BaseOtReceiver, BaseOtSender};
use veil_ot::extension::{decrypt_chosen_core, encrypt_chosen_core};
use veil_ot::{Block, ChouOrlandi, Extension, OtReceiver, OtSender};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn random_bits(n: usize, seed: u64) -> Vec<bool> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random()).collect()
}

async fn pair() -> (Channel, Channel) {
    tcp_pair(ChannelConfig::default()).await.unwrap()
}

async fn iknp_pair() -> (OtSender, Channel, OtReceiver, Channel) {
    ext_pair(Extension::default()).await
}

async fn ext_pair(ext: Extension) -> (OtSender, Channel, OtReceiver, Channel) {
    let (mut a, mut b) = pair().await;
    let s = tokio::spawn(async move {
        let snd = OtSender::setup_extension(&mut a, &mut rng(1), ext)
            .await
            .unwrap();
        (snd, a)
    });
    let rcv = OtReceiver::setup_extension(&mut b, &mut rng(2), ext)
        .await
        .unwrap();
    let (snd, a) = s.await.unwrap();
    (snd, a, rcv, b)
}

#[tokio::test]
async fn base_ot_delivers_the_chosen_key() {
    let (mut a, mut b) = pair().await;
    let choices = random_bits(128, 3);
    let sender = tokio::spawn(async move {
        ChouOrlandi::new(rng(4))
            .send_random(&mut a, 128)
            .await
            .unwrap()
    });
    let got = ChouOrlandi::new(rng(5))
        .receive_random(&mut b, &choices)
        .await
        .unwrap();
    let keys = sender.await.unwrap();
    for i in 0..128 {
        let c = usize::from(choices[i]);
        assert_eq!(got[i], keys[i][c], "OT {i}");
        assert_ne!(got[i], keys[i][1 - c], "OT {i}");
    }
}

#[tokio::test]
async fn correlated_ot_holds_for_every_ot() {
    for ext in [
        Extension::Iknp,
        Extension::SoftSpoken { k: 1 },
        Extension::SoftSpoken { k: 2 },
        Extension::SoftSpoken { k: 4 },
        Extension::SoftSpoken { k: 8 },
    ] {
        correlated_ot_holds(ext).await;
    }
}

async fn correlated_ot_holds(ext: Extension) {
    let (mut snd, mut a, mut rcv, mut b) = ext_pair(ext).await;
    for (k, n) in [1usize, 127, 128, 129, 70_000, 0].into_iter().enumerate() {
        let choices = random_bits(n, 10 + k as u64);
        let s = tokio::spawn(async move {
            let q = snd.send_correlated(&mut a, n).await.unwrap();
            (snd, a, q)
        });
        let t = rcv.receive_correlated(&mut b, &choices).await.unwrap();
        let (s2, a2, q) = s.await.unwrap();
        snd = s2;
        a = a2;
        let delta = snd.delta();
        assert_eq!((q.len(), t.len()), (n, n));
        for j in 0..n {
            assert_eq!(
                t[j],
                q[j] ^ delta.and_bit(choices[j]),
                "{ext}: n={n} OT {j}"
            );
        }
        if n > 1 {
            assert_ne!(q[0], q[1]);
        }
    }
    // 16 bytes per OT from receiver to sender (IKNP), 16 / k (SoftSpokenOT), plus one 4-byte
    // header per 2^14 OTs, and the setup: the base OTs' points and SoftSpokenOT's level sums.
    let sent = b.stats().bytes_sent as f64;
    let ots: u64 = [1u64, 127, 128, 129, 70_000]
        .iter()
        .map(|n| n.div_ceil(128) * 128)
        .sum();
    let body = ext.bytes_per_ot() * ots as f64;
    assert!(
        sent >= body && sent <= body + (4 * 8 + 32 * 128 + 4 + 256 * 16) as f64,
        "{ext}: {sent}"
    );
}

#[tokio::test]
async fn delta_can_be_chosen_with_lsb_set() {
    let (mut a, mut b) = pair().await;
    let delta = Block(rng(6).random::<u128>() | 1);
    let s = tokio::spawn(async move {
        let mut snd = OtSender::setup_with_delta(&mut a, &mut rng(7), delta)
            .await
            .unwrap();
        snd.send_correlated(&mut a, 300).await.unwrap();
        snd.delta()
    });
    let mut rcv = OtReceiver::setup(&mut b, &mut rng(8)).await.unwrap();
    rcv.receive_correlated(&mut b, &random_bits(300, 9))
        .await
        .unwrap();
    assert_eq!(s.await.unwrap(), delta);
}

/// The `_into` calls reuse their buffers across calls of other sizes (larger, smaller, across
/// frame and sub-chunk edges) and still deliver exactly what the fresh calls do.
#[tokio::test]
async fn reused_buffers_deliver_the_same_ots() {
    let (mut snd, mut a, mut rcv, mut b) = iknp_pair().await;
    let (mut q, mut t) = (Vec::new(), Vec::new());
    let (mut keys, mut got) = (Vec::new(), Vec::new());
    for (k, n) in [40_000usize, 5, 2_049, 16_385, 0, 300]
        .into_iter()
        .enumerate()
    {
        let choices = random_bits(n, 40 + k as u64);
        let c = choices.clone();
        let s = tokio::spawn(async move {
            snd.send_correlated_into(&mut a, n, &mut q).await.unwrap();
            snd.send_random_into(&mut a, n, &mut keys).await.unwrap();
            (snd, a, q, keys)
        });
        rcv.receive_correlated_into(&mut b, &c, &mut t)
            .await
            .unwrap();
        rcv.receive_random_into(&mut b, &c, &mut got).await.unwrap();
        let back = s.await.unwrap();
        (snd, a, q, keys) = back;
        assert_eq!((q.len(), t.len(), keys.len(), got.len()), (n, n, n, n));
        let delta = snd.delta();
        for j in 0..n {
            assert_eq!(t[j], q[j] ^ delta.and_bit(choices[j]), "n={n} OT {j}");
            let c = usize::from(choices[j]);
            assert_eq!(got[j], keys[j][c], "n={n} random OT {j}");
            assert_ne!(got[j], keys[j][1 - c], "n={n} random OT {j}");
        }
    }
}

#[tokio::test]
async fn random_ot_gives_the_chosen_key() {
    let (mut snd, mut a, mut rcv, mut b) = iknp_pair().await;
    let choices = random_bits(5000, 20);
    let s = tokio::spawn(async move { snd.send_random(&mut a, 5000).await.unwrap() });
    let got = rcv.receive_random(&mut b, &choices).await.unwrap();
    let pairs = s.await.unwrap();
    for j in 0..5000 {
        let c = usize::from(choices[j]);
        assert_eq!(got[j], pairs[j][c]);
        assert_ne!(got[j], pairs[j][1 - c]);
    }
}

#[tokio::test]
async fn chosen_message_ot_with_several_lengths() {
    let (mut snd, mut a, mut rcv, mut b) = iknp_pair().await;
    let mut r = rng(30);
    let lens = [0usize, 1, 15, 16, 17, 32, 100, 1000, 70_000];
    let msgs: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
        .map(|j| {
            let len = lens[j % lens.len()];
            let m0: Vec<u8> = (0..len).map(|_| r.random()).collect();
            let m1: Vec<u8> = (0..len).map(|_| r.random()).collect();
            (m0, m1)
        })
        .collect();
    let choices = random_bits(msgs.len(), 31);
    let msgs2 = msgs.clone();
    let s = tokio::spawn(async move {
        let refs: Vec<(&[u8], &[u8])> = msgs2.iter().map(|(x, y)| (&x[..], &y[..])).collect();
        // A random warm-up first, so chosen OT indices do not start at zero.
        snd.send_random(&mut a, 77).await.unwrap();
        snd.send_chosen(&mut a, &refs).await.unwrap();
    });
    rcv.receive_random(&mut b, &random_bits(77, 32))
        .await
        .unwrap();
    let got = rcv.receive_chosen(&mut b, &choices).await.unwrap();
    s.await.unwrap();
    for j in 0..msgs.len() {
        let want = if choices[j] { &msgs[j].1 } else { &msgs[j].0 };
        assert_eq!(&got[j], want, "OT {j}");
    }
}

#[test]
fn receiver_view_does_not_contain_the_unchosen_message() {
    // The sender's frame is everything the receiver sees of the messages.
    let mut r = rng(40);
    let keys: Vec<[Block; 2]> = (0..50)
        .map(|_| [Block::random(&mut r), Block::random(&mut r)])
        .collect();
    let choices = random_bits(50, 41);
    let msgs: Vec<(Vec<u8>, Vec<u8>)> = (0..50)
        .map(|_| {
            let m0: Vec<u8> = (0..48).map(|_| r.random()).collect();
            let m1: Vec<u8> = (0..48).map(|_| r.random()).collect();
            (m0, m1)
        })
        .collect();
    let refs: Vec<(&[u8], &[u8])> = msgs.iter().map(|(x, y)| (&x[..], &y[..])).collect();
    let frame = encrypt_chosen_core(&keys, 900, &refs);
    for (m0, m1) in &msgs {
        for m in [m0, m1] {
            assert!(
                !frame.windows(m.len()).any(|w| w == &m[..]),
                "a message travels in clear"
            );
        }
    }
    // With its own keys the receiver recovers the chosen message, and not the other one: the
    // other half of the frame unmasked with its key is unrelated to the unchosen message.
    let own: Vec<Block> = keys
        .iter()
        .zip(&choices)
        .map(|(k, &c)| k[usize::from(c)])
        .collect();
    let got = decrypt_chosen_core(&own, &choices, 900, &frame).unwrap();
    let flipped: Vec<bool> = choices.iter().map(|c| !c).collect();
    let wrong = decrypt_chosen_core(&own, &flipped, 900, &frame).unwrap();
    for j in 0..50 {
        let (chosen, other) = if choices[j] {
            (&msgs[j].1, &msgs[j].0)
        } else {
            (&msgs[j].0, &msgs[j].1)
        };
        assert_eq!(&got[j], chosen);
        assert_ne!(&wrong[j], other);
    }
}

/// Random choice bits: the receiver learns them with its outputs, they are balanced, the
/// correlation and the random-OT keys hold, and SoftSpokenOT sends one group fewer (31 bits per
/// OT at `k = 4`), IKNP the same 16 bytes.
#[tokio::test]
async fn random_choice_bits_deliver_the_ots_and_save_a_group() {
    for (ext, bytes) in [
        (Extension::Iknp, 16.0),
        (Extension::SoftSpoken { k: 4 }, 31.0 / 8.0),
        (Extension::SoftSpoken { k: 2 }, 63.0 / 8.0),
    ] {
        let (mut snd, mut a, mut rcv, mut b) = ext_pair(ext).await;
        let n = 40_000;
        let s = tokio::spawn(async move {
            let mut q = Vec::new();
            snd.send_correlated_random_into(&mut a, n, &mut q)
                .await
                .unwrap();
            let mut keys = Vec::new();
            snd.send_random_choices_into(&mut a, 300, &mut keys)
                .await
                .unwrap();
            (snd.delta(), q, keys)
        });
        let (mut choices, mut t) = (Vec::new(), Vec::new());
        let before = b.stats();
        rcv.receive_correlated_random_into(&mut b, n, &mut rng(3), &mut choices, &mut t)
            .await
            .unwrap();
        let sent = b.stats().since(&before).bytes_sent as f64;
        let (mut choices2, mut got) = (Vec::new(), Vec::new());
        rcv.receive_random_choices_into(&mut b, 300, &mut rng(4), &mut choices2, &mut got)
            .await
            .unwrap();
        let (delta, q, keys) = s.await.unwrap();
        assert_eq!((choices.len(), t.len(), q.len()), (n, n, n));
        for j in 0..n {
            assert_eq!(t[j], q[j] ^ delta.and_bit(choices[j]), "{ext}: OT {j}");
        }
        let ones = choices.iter().filter(|c| **c).count();
        assert!((19_000..21_000).contains(&ones), "{ext}: {ones} ones");
        for j in 0..300 {
            let c = usize::from(choices2[j]);
            assert_eq!(got[j], keys[j][c], "{ext}: random OT {j}");
            assert_ne!(got[j], keys[j][1 - c]);
        }
        let rows = n.div_ceil(128) * 128;
        let want = bytes * rows as f64;
        assert!(sent >= want && sent <= want + 16.0, "{ext}: {sent} bytes");
    }
}
