//! The OT-based shared product against the plaintext product modulo 2^k, on random matrices
//! and vectors: dense and sparse patterns, every width class, frames cut across columns, and a
//! peer that sends a frame of the wrong size.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_arith::matvec::{receive, send, FRAME_BYTES};
use veil_arith::ring::{embed, mask};
use veil_arith::{ArithError, Pattern};
use veil_net::{Channel, ChannelConfig};
use veil_ot::{OtReceiver, OtSender};

/// `W·r mod 2^k` in plaintext.
fn product(p: &Pattern, w: &[Vec<i64>], r: &[u64], k: u32) -> Vec<u64> {
    let mut out = vec![0u64; p.rows()];
    for (i, (col, wi)) in (0..p.columns()).map(|i| (p.column(i), &w[i])).enumerate() {
        for (&row, &wj) in col.iter().zip(wi) {
            out[row as usize] = out[row as usize].wrapping_add(embed(wj, 64).wrapping_mul(r[i]));
        }
    }
    out.iter().map(|x| x & mask(k)).collect()
}

async fn shared(p: &Pattern, w: &[Vec<i64>], r: &[u64], k: u32) -> (Vec<u64>, Vec<u64>, u64) {
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let (p2, w2) = (p.clone(), w.to_vec());
    let server = tokio::spawn(async move {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut ot = OtSender::setup(&mut a, &mut rng).await.unwrap();
        send(&mut a, &mut ot, &p2, &w2, k).await.unwrap()
    });
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut ot = OtReceiver::setup(&mut b, &mut rng).await.unwrap();
    let before = b.stats();
    let c = receive(&mut b, &mut ot, p, r, k).await.unwrap();
    let received = b.stats().since(&before).bytes_received;
    (server.await.unwrap(), c, received)
}

#[tokio::test]
async fn shares_add_up_to_the_product_on_random_inputs() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for (rows, cols, k, wbits) in [
        (24, 64, 16, 8),
        (10, 24, 20, 8),
        (7, 5, 64, 16),
        (3, 9, 1, 2),
        (33, 17, 9, 4),
        (128, 40, 24, 8),
    ] {
        let p = Pattern::dense(rows, cols);
        let w: Vec<Vec<i64>> = (0..cols)
            .map(|_| {
                (0..rows)
                    .map(|_| rng.random_range(-(1i64 << (wbits - 1))..(1i64 << (wbits - 1))))
                    .collect()
            })
            .collect();
        let r: Vec<u64> = (0..cols).map(|_| rng.random::<u64>() & mask(k)).collect();
        let (s, c, received) = shared(&p, &w, &r, k).await;
        let sum: Vec<u64> = s
            .iter()
            .zip(&c)
            .map(|(s, c)| s.wrapping_add(*c) & mask(k))
            .collect();
        assert_eq!(sum, product(&p, &w, &r, k), "{rows}x{cols}, k = {k}");
        assert!(s.iter().chain(&c).all(|x| x & !mask(k) == 0));
        // The corrections, each frame with a 4-byte header.
        let frames = p.correction_bytes(k).div_ceil(FRAME_BYTES) as u64;
        assert!(received >= p.correction_bytes(k) as u64 + 4 * frames);
    }
}

#[tokio::test]
async fn sparse_patterns_and_frames_cut_across_columns() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    // A convolution-like pattern: column i feeds rows i..i+3 (wrapping at the end).
    let rows = 50_000;
    let cols = 3000;
    let p = Pattern::new(
        rows,
        (0..cols)
            .map(|i| {
                let mut c: Vec<u32> = (0..3).map(|d| ((i * 16 + d) % rows) as u32).collect();
                c.sort_unstable();
                c.dedup();
                c
            })
            .collect(),
    )
    .unwrap();
    let w: Vec<Vec<i64>> = (0..cols)
        .map(|i| {
            (0..p.column(i).len())
                .map(|_| rng.random_range(-128..128))
                .collect()
        })
        .collect();
    let k = 32;
    let r: Vec<u64> = (0..cols).map(|_| rng.random::<u64>() & mask(k)).collect();
    let (s, c, _) = shared(&p, &w, &r, k).await;
    let sum: Vec<u64> = s
        .iter()
        .zip(&c)
        .map(|(s, c)| s.wrapping_add(*c) & mask(k))
        .collect();
    assert_eq!(sum, product(&p, &w, &r, k));
    // A wide dense layer spans several frames.
    let p = Pattern::dense(4096, 64);
    assert!(p.correction_bytes(32) > 2 * FRAME_BYTES);
    let w: Vec<Vec<i64>> = (0..64)
        .map(|_| (0..4096).map(|_| rng.random_range(-8..8)).collect())
        .collect();
    let r: Vec<u64> = (0..64).map(|_| rng.random::<u64>() & mask(32)).collect();
    let (s, c, _) = shared(&p, &w, &r, 32).await;
    let sum: Vec<u64> = s
        .iter()
        .zip(&c)
        .map(|(s, c)| s.wrapping_add(*c) & mask(32))
        .collect();
    assert_eq!(sum, product(&p, &w, &r, 32));
}

#[tokio::test]
async fn bad_inputs_and_a_wrong_frame_are_errors() {
    assert!(Pattern::new(4, vec![vec![1, 1]]).is_err());
    assert!(Pattern::new(4, vec![vec![4]]).is_err());
    let p = Pattern::dense(4, 3);
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let server = tokio::spawn(async move {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let mut ot = OtSender::setup(&mut a, &mut rng).await.unwrap();
        // Weights that do not follow the pattern, then a width out of range: refused before
        // anything is sent.
        let e = send(&mut a, &mut ot, &Pattern::dense(4, 3), &[vec![1; 4]], 8).await;
        assert!(matches!(e, Err(ArithError::Input(_))));
        let e = send(
            &mut a,
            &mut ot,
            &Pattern::dense(4, 3),
            &vec![vec![1; 4]; 3],
            65,
        )
        .await;
        assert!(matches!(e, Err(ArithError::Input(_))));
        // The OTs, then a frame one byte short.
        let mut keys = Vec::new();
        ot.send_random_into(&mut a, 3 * 8, &mut keys).await.unwrap();
        a.send_bytes(&vec![0u8; Pattern::dense(4, 3).correction_bytes(8) - 1])
            .await
            .unwrap();
        a.flush().await.unwrap();
    });
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut ot = OtReceiver::setup(&mut b, &mut rng).await.unwrap();
    let e = receive(&mut b, &mut ot, &p, &[1, 2, 256], 8).await;
    assert!(matches!(e, Err(ArithError::Input(_))), "{e:?}");
    let e = receive(&mut b, &mut ot, &p, &[1, 2, 3], 8).await;
    assert!(matches!(e, Err(ArithError::Protocol(_))), "{e:?}");
    server.await.unwrap();
}
