//! The KOS consistency check against a receiver that deviates, on both extensions: honest
//! calls of every size deliver checked correlated, random and chosen-message OTs; a receiver
//! that flips one bit of one column of IKNP's `u` (or of one group's SoftSpokenOT correction)
//! is caught whatever `Δ`, unless it answers the check as if it had sent the flipped column,
//! in which case it passes only when it guesses that column's bit of `Δ` (the group's `k`
//! bits): the selective failure KOS bounds, at the price of an abort with probability
//! `1 − 2^-k`.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_net::{tcp_pair, Channel, ChannelConfig};
use veil_ot::block::{blocks_to_bytes, pack_bits_blocks};
use veil_ot::extension::frame_index;
use veil_ot::kos::{choices_hash, padding, rows_hash, ColumnDigest};
use veil_ot::{Block, Extension, OtError, OtReceiver, OtSender};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

fn random_bits(n: usize, seed: u64) -> Vec<bool> {
    let mut r = rng(seed);
    (0..n).map(|_| r.random()).collect()
}

const EXTENSIONS: [Extension; 3] = [
    Extension::Iknp,
    Extension::SoftSpoken { k: 2 },
    Extension::SoftSpoken { k: 4 },
];

async fn checked_pair(seed: u64, ext: Extension) -> (OtSender, Channel, OtReceiver, Channel) {
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let s = tokio::spawn(async move {
        let mut r = rng(seed);
        let snd = OtSender::setup_extension(&mut a, &mut r, ext)
            .await
            .unwrap();
        (snd.with_kos_check(&mut r), a)
    });
    let mut r = rng(seed + 1000);
    let rcv = OtReceiver::setup_extension(&mut b, &mut r, ext)
        .await
        .unwrap();
    let rcv = rcv.with_kos_check(&mut r);
    let (snd, a) = s.await.unwrap();
    assert!(snd.is_checked() && rcv.is_checked());
    (snd, a, rcv, b)
}

#[tokio::test]
async fn checked_ots_are_correct_for_every_size() {
    for ext in EXTENSIONS {
        checked_ots_are_correct(ext).await;
    }
}

async fn checked_ots_are_correct(ext: Extension) {
    let (mut snd, mut a, mut rcv, mut b) = checked_pair(1, ext).await;
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
    // Random choice bits, checked: SoftSpokenOT draws them (and the padding's) from its first
    // group.
    let s = tokio::spawn(async move {
        let mut q = Vec::new();
        snd.send_correlated_random_into(&mut a, 1000, &mut q)
            .await
            .unwrap();
        (snd, a, q)
    });
    let (mut choices, mut t) = (Vec::new(), Vec::new());
    rcv.receive_correlated_random_into(&mut b, 1000, &mut rng(7), &mut choices, &mut t)
        .await
        .unwrap();
    let (s2, a2, q) = s.await.unwrap();
    (snd, a) = (s2, a2);
    for j in 0..1000 {
        assert_eq!(
            t[j],
            q[j] ^ snd.delta().and_bit(choices[j]),
            "{ext}: OT {j}"
        );
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

/// How the cheating receiver answers the check after flipping bit `row` of unit `unit` (an
/// IKNP column, a SoftSpokenOT group).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Answer {
    /// Its digest covers the frame before the flip, as if the flip happened on the way.
    Unbound,
    /// It answers for the frame it sent and guesses that `Δ`, on the unit's columns, is this
    /// mask.
    Guess(u128),
}

/// The columns of `Δ` a flip in unit `unit` of the frame reaches.
fn unit_mask(ext: Extension, unit: usize) -> u128 {
    match ext {
        Extension::Iknp => 1 << unit,
        Extension::SoftSpoken { k } => ((1u128 << k) - 1) << (unit * k),
    }
}

/// A receiver that runs one checked extension of `n` OTs by hand, flipping bit `row` of unit
/// `unit` of its frame, and answers the check as `answer` says.
async fn cheat(
    rcv: &mut OtReceiver,
    ch: &mut Channel,
    choices: &[bool],
    unit: usize,
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
    let per = rcv.extension().frame_blocks_per_128();
    u[frame_index(per, nb, unit, row / 128)].0 ^= 1u128 << (row % 128);
    let sent_digest = digest_of(&u);
    let mut bytes = Vec::new();
    blocks_to_bytes(&u, &mut bytes);
    ch.send_bytes(&bytes).await.unwrap();
    ch.flush().await.unwrap();
    let h = Block::from_bytes(ch.recv_bytes().await.unwrap().try_into().unwrap());
    // Guessing `Δ` on the unit means expecting the sender's row to carry it.
    if let Answer::Guess(mask) = answer {
        t[row].0 ^= mask;
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
    for ext in EXTENSIONS {
        flipped_bit(ext).await;
    }
}

async fn flipped_bit(ext: Extension) {
    let n = 500;
    let units = ext.frame_blocks_per_128();
    // Per kind of cheat: (passed, caught).
    let mut tally = [[0usize; 2]; 2];
    for case in 0..2 {
        for trial in 0..24u64 {
            let (mut snd, mut a, mut rcv, mut b) = checked_pair(100 + trial, ext).await;
            let unit = (trial as usize * 37 + case * 11) % units;
            let row = (trial as usize * 101) % (n + padding(n));
            let mask = unit_mask(ext, unit);
            // Guesses drawn apart from `Δ`, within the unit's columns.
            let answer = match case {
                0 => Answer::Unbound,
                _ => Answer::Guess(rng(900 + trial).random::<u128>() & mask),
            };
            let s = tokio::spawn(async move {
                let r = snd.send_correlated(&mut a, n).await;
                (r.map(|q| q.len()), snd.delta())
            });
            cheat(&mut rcv, &mut b, &random_bits(n, trial), unit, row, answer).await;
            let (r, delta) = s.await.unwrap();
            let caught = matches!(r, Err(OtError::ConsistencyCheck));
            assert!(caught || r.as_ref().is_ok_and(|&l| l == n), "{r:?}");
            let should_pass = match answer {
                Answer::Unbound => false,
                Answer::Guess(g) => delta.0 & mask == g,
            };
            assert_eq!(
                !caught,
                should_pass,
                "{ext}: {answer:?}, unit {unit}, row {row}, Δ on it {:x}",
                delta.0 & mask
            );
            tally[case][usize::from(caught)] += 1;
        }
    }
    // A flip the answer does not own is always caught; a right guess passes, which at two
    // columns or fewer per unit some of the 24 trials make.
    assert_eq!(tally[0], [0, 24], "{ext}");
    if units >= 64 {
        assert!(tally[1][0] > 0 && tally[1][1] > 0, "{ext}: {tally:?}");
    }
}

#[tokio::test]
async fn a_short_or_long_answer_is_malformed() {
    for (ext, len) in EXTENSIONS
        .into_iter()
        .flat_map(|e| [0usize, 47, 49].map(|l| (e, l)))
    {
        let (mut snd, mut a, _rcv, mut b) = checked_pair(500 + len as u64, ext).await;
        let s = tokio::spawn(async move { snd.send_correlated(&mut a, 10).await });
        // 10 OTs and their padding: 3 blocks of 128 rows.
        let frame = 3 * ext.frame_blocks_per_128() * Block::BYTES;
        b.send_bytes(&vec![0u8; frame]).await.unwrap();
        b.flush().await.unwrap();
        let _h = b.recv_bytes().await.unwrap();
        b.send_bytes(&vec![7u8; len]).await.unwrap();
        b.flush().await.unwrap();
        let r = s.await.unwrap();
        assert!(matches!(r, Err(OtError::Malformed(_))), "{len}: {r:?}");
    }
}
