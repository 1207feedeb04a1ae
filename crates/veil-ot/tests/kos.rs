//! The KOS consistency check against a receiver that deviates: honest calls of every size
//! deliver checked correlated, random and chosen-message OTs; a receiver that flips one bit of
//! one column of `u` is caught whatever `Δ`, unless it answers the check as if it had sent
//! the flipped column, in which case it passes only when it guesses that column's bit of `Δ`
//! (the selective failure KOS bounds: one bit, at the price of a one-in-two abort).

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_net::{tcp_pair, Channel, ChannelConfig};
use veil_ot::block::{blocks_to_bytes, pack_bits_blocks};
use veil_ot::iknp::u_index;
use veil_ot::kos::{choices_hash, padding, rows_hash, ColumnDigest};
use veil_ot::{Block, IknpReceiver, IknpSender, OtError};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn random_bits(n: usize, seed: u64) -> Vec<bool> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random()).collect()
}

async fn checked_pair(seed: u64) -> (IknpSender, Channel, IknpReceiver, Channel) {
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let s = tokio::spawn(async move {
        let mut r = rng(seed);
        let snd = IknpSender::setup(&mut a, &mut r).await.unwrap();
        (snd.with_kos_check(&mut r), a)
    });
    let mut r = rng(seed + 1000);
    let rcv = IknpReceiver::setup(&mut b, &mut r).await.unwrap();
    let rcv = rcv.with_kos_check(&mut r);
    let (snd, a) = s.await.unwrap();
    assert!(snd.is_checked() && rcv.is_checked());
    (snd, a, rcv, b)
}

#[tokio::test]
async fn checked_ots_are_correct_for_every_size() {
    let (mut snd, mut a, mut rcv, mut b) = checked_pair(1).await;
    for (k, n) in [0usize, 1, 127, 128, 129, 70_000, 300]
        .into_iter()
        .enumerate()
    {
        let choices = random_bits(n, 10 + k as u64);
        let s = tokio::spawn(async move {
            let q = snd.send_correlated(&mut a, n).await.unwrap();
            (snd, a, q)
        });
        let t = rcv.receive_correlated(&mut b, &choices).await.unwrap();
        let (s2, a2, q) = s.await.unwrap();
        (snd, a) = (s2, a2);
        let delta = snd.delta();
        assert_eq!((q.len(), t.len()), (n, n));
        for j in 0..n {
            assert_eq!(t[j], q[j] ^ delta.and_bit(choices[j]), "n={n} OT {j}");
        }
    }
    // Random and chosen-message OT ride on the checked rows.
    let choices = random_bits(3000, 99);
    let s = tokio::spawn(async move {
        let keys = snd.send_random(&mut a, 3000).await.unwrap();
        let msgs: Vec<(Vec<u8>, Vec<u8>)> = (0..50u8)
            .map(|i| (vec![i; 40], vec![i ^ 0xff; 40]))
            .collect();
        let refs: Vec<(&[u8], &[u8])> = msgs.iter().map(|(x, y)| (&x[..], &y[..])).collect();
        snd.send_chosen(&mut a, &refs).await.unwrap();
        keys
    });
    let got = rcv.receive_random(&mut b, &choices).await.unwrap();
    let chosen = rcv.receive_chosen(&mut b, &choices[..50]).await.unwrap();
    let keys = s.await.unwrap();
    for j in 0..3000 {
        let c = usize::from(choices[j]);
        assert_eq!(got[j], keys[j][c]);
        assert_ne!(got[j], keys[j][1 - c]);
    }
    for (i, m) in chosen.iter().enumerate() {
        let want = if choices[i] { i as u8 ^ 0xff } else { i as u8 };
        assert_eq!(m, &vec![want; 40]);
    }
}

/// How the cheating receiver answers the check after flipping bit `row` of column `col`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Its digest covers the columns before the flip, as if the flip happened on the way.
    Unbound,
    /// It answers for the columns it sent and guesses that `Δ_col` is 0.
    GuessZero,
    /// It answers for the columns it sent and guesses that `Δ_col` is 1.
    GuessOne,
}

/// A receiver that runs one checked extension of `n` OTs by hand, flipping bit `row` of
/// column `col` of `u`, and answers the check as `answer` says.
async fn cheat(
    rcv: &mut IknpReceiver,
    ch: &mut Channel,
    choices: &[bool],
    col: usize,
    row: usize,
    answer: Answer,
) {
    let n = choices.len();
    let total = n + padding(n);
    let mut all = choices.to_vec();
    let mut r = rng(77);
    all.extend((n..total).map(|_| r.next_u32() & 1 == 1));
    let packed = pack_bits_blocks(&all);
    let (mut u, mut t) = (Vec::new(), Vec::new());
    rcv.extend_core(&packed, total, &mut u, &mut t);
    let nb = packed.len();
    let digest_of = |u: &[Block]| {
        let mut d = ColumnDigest::new();
        d.update(u);
        d.finalize()
    };
    let honest_digest = digest_of(&u);
    u[u_index(nb, col, row / 128)].0 ^= 1u128 << (row % 128);
    let sent_digest = digest_of(&u);
    let mut bytes = Vec::new();
    blocks_to_bytes(&u, &mut bytes);
    ch.send_bytes(&bytes).await.unwrap();
    ch.flush().await.unwrap();
    let h = Block::from_bytes(ch.recv_bytes().await.unwrap().try_into().unwrap());
    // Guessing Δ_col = 1 means expecting the sender's row to carry the flip.
    if answer == Answer::GuessOne {
        t[row].0 ^= 1u128 << col;
    }
    let x = choices_hash(h, &packed, total);
    let digest = match answer {
        Answer::Unbound => honest_digest,
        _ => sent_digest,
    };
    let mut out = Vec::new();
    blocks_to_bytes(&[x, rows_hash(h, &t), digest], &mut out);
    ch.send_bytes(&out).await.unwrap();
    ch.flush().await.unwrap();
}

#[tokio::test]
async fn a_flipped_column_bit_is_caught_or_costs_a_guess_of_delta() {
    let n = 500;
    let mut tally = [[0usize; 2]; 3];
    for (case, answer) in [Answer::Unbound, Answer::GuessZero, Answer::GuessOne]
        .into_iter()
        .enumerate()
    {
        for trial in 0..24u64 {
            let (mut snd, mut a, mut rcv, mut b) = checked_pair(100 + trial).await;
            let col = (trial as usize * 37 + case * 11) % 128;
            let row = (trial as usize * 101) % (n + padding(n));
            let s = tokio::spawn(async move {
                let r = snd.send_correlated(&mut a, n).await;
                (r.map(|q| q.len()), snd.delta())
            });
            cheat(&mut rcv, &mut b, &random_bits(n, trial), col, row, answer).await;
            let (r, delta) = s.await.unwrap();
            let bit = delta.bit(col);
            let caught = matches!(r, Err(OtError::ConsistencyCheck));
            assert!(caught || r.as_ref().is_ok_and(|&l| l == n), "{r:?}");
            let should_pass = match answer {
                Answer::Unbound => false,
                Answer::GuessZero => !bit,
                Answer::GuessOne => bit,
            };
            assert_eq!(
                !caught, should_pass,
                "{answer:?}, column {col}, row {row}, Δ_col = {bit}"
            );
            tally[case][usize::from(bit)] += 1;
        }
    }
    // Both values of Δ_col were met by every kind of cheat.
    for (case, t) in tally.iter().enumerate() {
        assert!(t[0] > 0 && t[1] > 0, "case {case}: {t:?}");
    }
}

#[tokio::test]
async fn a_short_or_long_answer_is_malformed() {
    for len in [0usize, 47, 49] {
        let (mut snd, mut a, _rcv, mut b) = checked_pair(500 + len as u64).await;
        let s = tokio::spawn(async move { snd.send_correlated(&mut a, 10).await });
        b.send_bytes(&vec![0u8; 2048 * 3]).await.unwrap();
        b.flush().await.unwrap();
        let _h = b.recv_bytes().await.unwrap();
        b.send_bytes(&vec![7u8; len]).await.unwrap();
        b.flush().await.unwrap();
        let r = s.await.unwrap();
        assert!(matches!(r, Err(OtError::Malformed(_))), "{len}: {r:?}");
    }
}
