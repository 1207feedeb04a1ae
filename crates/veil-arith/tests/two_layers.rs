//! A two-layer network evaluated the mixed way between two tasks, against its plaintext
//! integer inference on random weights and inputs: the linear layers on additive shares (the
//! shared products made offline by OT, the client's masked input online), the requantized
//! activation and the final argmax in garbled circuits (`veil-gc`), the activation re-masked
//! for the second layer so that the server only ever sees masked values.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_arith::circuits::{argmax_of_shares, requant_reshare};
use veil_arith::matvec::{receive, send};
use veil_arith::ring::{embed, from_bits as words, mask, to_bits as bits};
use veil_arith::Pattern;
use veil_gc::{Evaluator, Garbler, Party, Reveal};
use veil_net::{Channel, ChannelConfig};
use veil_ot::{OtReceiver, OtSender};

const N0: usize = 12;
const N1: usize = 7;
const N2: usize = 4;
const K1: u32 = 20;
const K2: u32 = 16;
const SHIFT: u8 = 6;
const OUT_BITS: u8 = 4;

struct Model {
    w1: Vec<Vec<i64>>, // columns: w1[i][j] feeds hidden j from input i
    b1: Vec<i64>,
    w2: Vec<Vec<i64>>,
    b2: Vec<i64>,
}

/// `W·v + bias` in `Z_2^k` (W by columns).
fn affine(w: &[Vec<i64>], v: &[u64], bias: &[i64], k: u32) -> Vec<u64> {
    let mut out: Vec<u64> = bias.iter().map(|&b| embed(b, 64)).collect();
    for (col, &x) in w.iter().zip(v) {
        for (o, &wj) in out.iter_mut().zip(col) {
            *o = o.wrapping_add(embed(wj, 64).wrapping_mul(x));
        }
    }
    out.iter().map(|o| o & mask(k)).collect()
}

fn plain(m: &Model, x: &[i64]) -> usize {
    let acc: Vec<i64> = (0..N1)
        .map(|j| m.b1[j] + (0..N0).map(|i| m.w1[i][j] * x[i]).sum::<i64>())
        .collect();
    let half = 1i64 << (SHIFT - 1);
    let act: Vec<i64> = acc
        .iter()
        .map(|a| ((a + half) >> SHIFT).clamp(0, (1 << OUT_BITS) - 1))
        .collect();
    let logits: Vec<i64> = (0..N2)
        .map(|j| m.b2[j] + (0..N1).map(|i| m.w2[i][j] * act[i]).sum::<i64>())
        .collect();
    let max = *logits.iter().max().unwrap();
    logits.iter().position(|&l| l == max).unwrap()
}

#[tokio::test]
async fn mixed_inference_matches_the_integer_model() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let model = Model {
        w1: (0..N0)
            .map(|_| (0..N1).map(|_| rng.random_range(-128..128)).collect())
            .collect(),
        b1: (0..N1).map(|_| rng.random_range(-500..500)).collect(),
        w2: (0..N1)
            .map(|_| (0..N2).map(|_| rng.random_range(-128..128)).collect())
            .collect(),
        b2: (0..N2).map(|_| rng.random_range(-100..100)).collect(),
    };
    let inputs: Vec<Vec<i64>> = (0..6)
        .map(|_| (0..N0).map(|_| rng.random_range(0..16)).collect())
        .collect();
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let relu = requant_reshare(N1, K1, SHIFT, OUT_BITS, K2);
    let head = argmax_of_shares(N2, K2, false);
    let (relu2, head2) = (relu.clone(), head.clone());
    let (w1, b1, w2, b2) = (
        model.w1.clone(),
        model.b1.clone(),
        model.w2.clone(),
        model.b2.clone(),
    );
    let queries = inputs.len();
    let server = tokio::spawn(async move {
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut ot = OtSender::setup(&mut a, &mut rng).await.unwrap();
        let mut garbler = Garbler::new(&mut rng);
        for _ in 0..queries {
            // Offline: shares of W1·r0 and W2·r1.
            let s1 = send(&mut a, &mut ot, &Pattern::dense(N1, N0), &w1, K1)
                .await
                .unwrap();
            let s2 = send(&mut a, &mut ot, &Pattern::dense(N2, N1), &w2, K2)
                .await
                .unwrap();
            // Online: the masked input, the first layer locally, the activation in a garbled
            // circuit whose output (the activation masked by r1) only the server learns.
            let masked: Vec<u64> = a.recv().await.unwrap();
            let y1: Vec<u64> = affine(&w1, &masked, &b1, K1)
                .iter()
                .zip(&s1)
                .map(|(y, s)| y.wrapping_add(*s) & mask(K1))
                .collect();
            let z = garbler
                .run(
                    &mut a,
                    &relu2,
                    &[Party::Garbler, Party::Evaluator, Party::Evaluator],
                    &[bits(&y1, K1)],
                    Reveal::Garbler,
                )
                .await
                .unwrap()
                .unwrap();
            let z = words(&z[0], K2);
            let y2: Vec<u64> = affine(&w2, &z, &b2, K2)
                .iter()
                .zip(&s2)
                .map(|(y, s)| y.wrapping_add(*s) & mask(K2))
                .collect();
            garbler
                .run(
                    &mut a,
                    &head2,
                    &[Party::Garbler, Party::Evaluator],
                    &[bits(&y2, K2)],
                    Reveal::Evaluator,
                )
                .await
                .unwrap();
        }
    });
    let mut crng = ChaCha20Rng::seed_from_u64(13);
    let mut ot = OtReceiver::setup(&mut b, &mut crng).await.unwrap();
    let mut evaluator = Evaluator::new(&mut crng);
    let mut classes = Vec::new();
    for x in &inputs {
        let r0: Vec<u64> = (0..N0).map(|_| crng.random::<u64>() & mask(K1)).collect();
        let r1: Vec<u64> = (0..N1).map(|_| crng.random::<u64>() & mask(K2)).collect();
        let c1 = receive(&mut b, &mut ot, &Pattern::dense(N1, N0), &r0, K1)
            .await
            .unwrap();
        let c2 = receive(&mut b, &mut ot, &Pattern::dense(N2, N1), &r1, K2)
            .await
            .unwrap();
        let masked: Vec<u64> = x
            .iter()
            .zip(&r0)
            .map(|(&xi, r)| embed(xi, K1).wrapping_sub(*r) & mask(K1))
            .collect();
        b.send(&masked).await.unwrap();
        evaluator
            .run(
                &mut b,
                &relu,
                &[Party::Garbler, Party::Evaluator, Party::Evaluator],
                &[bits(&c1, K1), bits(&r1, K2)],
                Reveal::Garbler,
            )
            .await
            .unwrap();
        let class = evaluator
            .run(
                &mut b,
                &head,
                &[Party::Garbler, Party::Evaluator],
                &[bits(&c2, K2)],
                Reveal::Evaluator,
            )
            .await
            .unwrap()
            .unwrap();
        let class = words(&class[0], class[0].len() as u32)[0] as usize;
        assert_eq!(class, plain(&model, x), "input {x:?}");
        classes.push(class);
    }
    server.await.unwrap();
    // The inputs reach more than one class: the comparison above can fail.
    classes.sort_unstable();
    classes.dedup();
    assert!(classes.len() > 1, "{classes:?}");
}
