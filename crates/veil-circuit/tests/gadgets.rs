//! Every gadget against `i128`/`u128` arithmetic at every width from 1 to 64, through the
//! plaintext evaluator and the backend-independent suite of `veil_circuit::testing`, and on
//! the plaintext and cost-counting backends.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_circuit::bits::{bits_from_u128, bits_to_u128, mask, sign_extend};
use veil_circuit::testing::{check_backends, check_gadgets, plaintext};
use veil_circuit::{parse_bristol, write_bristol, Builder, Circuit, Gate, Word};

#[test]
fn every_gadget_at_every_width_from_1_to_64() {
    let report = check_gadgets(plaintext, 1..=64, 8, 0x5eed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.circuits, 64 * 24);
    assert!(report.evaluations > 30_000, "{report:?}");
}

/// The same gadgets on the builder (evaluated), the plaintext backend and the cost counter.
#[test]
fn every_gadget_on_every_backend() {
    let report = check_backends(1..=64, 6, 0xbacc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.circuits, 64 * 24);
    assert!(report.evaluations > 2 * 25_000, "{report:?}");
}

#[test]
fn suite_is_deterministic_and_seeded() {
    let a = check_gadgets(plaintext, [1, 7, 64], 3, 1).unwrap();
    let b = check_gadgets(plaintext, [1, 7, 64], 3, 1).unwrap();
    assert_eq!(a, b);
}

/// The circuit of a small quantized dense layer with ReLU-and-saturation and an argmax:
/// `argmax_j clamp((bias_j + sum_i w_ji x_i + 2^(s-1)) >> s, 0, 2^4 - 1)`.
fn layer_circuit(n_in: usize, n_out: usize, biases: &[i128], shift: usize) -> Circuit {
    let mut b = Builder::new();
    let xs: Vec<Word> = (0..n_in).map(|_| b.input(4)).collect();
    let ws: Vec<Vec<Word>> = (0..n_out)
        .map(|_| (0..n_in).map(|_| b.input(5)).collect())
        .collect();
    let acc_bits = 4 + 5 + 4 + 2;
    let acts: Vec<Word> = ws
        .iter()
        .zip(biases)
        .map(|(row, &bias)| {
            let acc = b.dot_unsigned_signed(&xs, row, bias + (1 << (shift - 1)), acc_bits);
            let shifted = b.shr_arith_const(&acc, shift);
            b.saturate_unsigned(&shifted, 4)
        })
        .collect();
    let class = b.argmax_unsigned(&acts);
    b.output(&class);
    for a in &acts {
        b.output(a);
    }
    b.finish()
}

#[test]
fn a_quantized_layer_matches_integer_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (n_in, n_out, shift) = (6, 5, 3);
    let biases: Vec<i128> = (0..n_out).map(|_| rng.random_range(-40..40)).collect();
    let circuit = layer_circuit(n_in, n_out, &biases, shift);
    circuit.validate().unwrap();
    // Also through the Bristol writer and reader.
    let reread = parse_bristol(&write_bristol(&circuit).unwrap()).unwrap();
    for _ in 0..200 {
        let x: Vec<u128> = (0..n_in).map(|_| rng.random_range(0..16)).collect();
        let w: Vec<i128> = (0..n_in * n_out)
            .map(|_| rng.random_range(-15..16))
            .collect();
        let acts: Vec<i128> = (0..n_out)
            .map(|j| {
                let acc: i128 = biases[j]
                    + (0..n_in)
                        .map(|i| x[i] as i128 * w[j * n_in + i])
                        .sum::<i128>();
                ((acc + (1 << (shift - 1))) >> shift).clamp(0, 15)
            })
            .collect();
        let mut class = 0;
        for j in 1..n_out {
            if acts[j] > acts[class] {
                class = j;
            }
        }
        let mut inputs: Vec<u128> = x.clone();
        inputs.extend(w.iter().map(|&v| v as u128 & mask(5)));
        let mut expected = vec![class as u128];
        expected.extend(acts.iter().map(|&a| a as u128));
        assert_eq!(circuit.eval_words(&inputs).unwrap(), expected);
        assert_eq!(reread.eval_words(&inputs).unwrap(), expected);
    }
}

#[test]
fn eval_words_masks_inputs_and_checks_widths() {
    let mut b = Builder::new();
    let x = b.input(8);
    let y = b.input(8);
    let p = b.mul_signed_wide(&x, &y);
    b.output(&p);
    let c = b.finish();
    let out = c.eval_words(&[(-3i128) as u128, 5]).unwrap();
    assert_eq!(sign_extend(out[0], 16), -15);
    assert!(c.eval_words(&[1]).is_err());
    let bits = c
        .eval(&[bits_from_u128(200, 8), bits_from_u128(3, 8)])
        .unwrap();
    assert_eq!(sign_extend(bits_to_u128(&bits[0]), 16), -56 * 3);
    let mut b = Builder::new();
    let x = b.input(130);
    b.output(&x);
    assert!(b.finish().eval_words(&[0]).is_err());
}

/// Evaluating the layers of `Circuit::layers` in order (each layer's AND gates, then its free
/// gates) gives the answers of the plain evaluator: the schedule a GMW backend follows.
#[test]
fn gmw_layers_follow_and_depth() {
    let mut b = Builder::new();
    let xs: Vec<Word> = (0..4).map(|_| b.input(12)).collect();
    let class = b.argmax_signed(&xs);
    let total = b.sum(&xs);
    let sq = b.mul(&total, &xs[0]);
    b.output(&class);
    b.output(&sq);
    let c = b.finish();
    let stats = c.stats();
    let layers = c.layers();
    assert_eq!(layers.len() as u32, stats.and_depth + 1);
    assert!(layers[0].and_gates.is_empty());
    assert_eq!(
        layers.iter().map(|l| l.and_gates.len()).sum::<usize>(),
        stats.and_count
    );
    assert_eq!(
        layers
            .iter()
            .map(|l| l.and_gates.len() + l.free_gates.len())
            .sum::<usize>(),
        c.gates.len()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for _ in 0..20 {
        let inputs: Vec<Vec<bool>> = (0..4)
            .map(|_| (0..12).map(|_| rng.random()).collect())
            .collect();
        let mut val: Vec<Option<bool>> = vec![None; c.num_wires as usize];
        for (wires, bits) in c.inputs.iter().zip(&inputs) {
            for (&w, &bit) in wires.iter().zip(bits) {
                val[w as usize] = Some(bit);
            }
        }
        for layer in &layers {
            // All AND gates of a layer read only earlier layers: evaluate them "at once".
            let ands: Vec<(u32, bool)> = layer
                .and_gates
                .iter()
                .map(|&g| match c.gates[g] {
                    Gate::And { a, b, out } => {
                        (out, val[a as usize].unwrap() & val[b as usize].unwrap())
                    }
                    other => panic!("{other:?} in and_gates"),
                })
                .collect();
            for (out, bit) in ands {
                val[out as usize] = Some(bit);
            }
            for &g in &layer.free_gates {
                let (out, bit) = match c.gates[g] {
                    Gate::Xor { a, b, out } => {
                        (out, val[a as usize].unwrap() ^ val[b as usize].unwrap())
                    }
                    Gate::Inv { a, out } => (out, !val[a as usize].unwrap()),
                    Gate::Const { value, out } => (out, value),
                    other => panic!("{other:?} in free_gates"),
                };
                val[out as usize] = Some(bit);
            }
        }
        let layered: Vec<Vec<bool>> = c
            .outputs
            .iter()
            .map(|ws| ws.iter().map(|&w| val[w as usize].unwrap()).collect())
            .collect();
        assert_eq!(layered, c.eval(&inputs).unwrap());
    }
}
