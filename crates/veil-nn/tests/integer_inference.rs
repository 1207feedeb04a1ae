//! The integer inference against a second implementation written from QUANTIZATION.md alone,
//! and the accumulator ranges against random models and inputs.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_nn::bundled_model;
use veil_nn::data::{digits_split, IMAGE_PIXELS};
use veil_nn::quant::{QLayer, QuantModel, Requant};

/// QUANTIZATION.md, steps 1 to 4, written independently of `src/quant.rs`: i128 arithmetic,
/// division instead of shifts.
fn reference(m: &QuantModel, pixels: &[u8; IMAGE_PIXELS]) -> (Vec<Vec<i128>>, usize) {
    let top = (1i128 << m.input_bits) - 1;
    let mut x: Vec<i128> = pixels
        .iter()
        .map(|&p| (i128::from(p) * top * 2 + 16).div_euclid(32))
        .collect();
    let mut accs = Vec::new();
    for layer in &m.layers {
        let acc: Vec<i128> = (0..layer.outputs)
            .map(|j| {
                let mut a = i128::from(layer.bias[j]);
                for i in 0..layer.inputs {
                    a += i128::from(layer.weights[j * layer.inputs + i]) * x[i];
                }
                a
            })
            .collect();
        if let Some(r) = layer.requant {
            let d = 1i128 << r.shift;
            // round half up: floor(acc / d + 1/2) = floor((2 acc + d) / 2d)
            x = acc
                .iter()
                .map(|&a| {
                    (2 * a + d)
                        .div_euclid(2 * d)
                        .clamp(0, (1 << r.out_bits) - 1)
                })
                .collect();
        }
        accs.push(acc);
    }
    let logits = accs.last().unwrap();
    let best = logits.iter().copied().max().unwrap();
    let class = logits.iter().position(|&v| v == best).unwrap();
    (accs, class)
}

#[test]
fn bundled_model_matches_reference_on_every_image() {
    let m = QuantModel::from_graph(&bundled_model().unwrap().quantized).unwrap();
    let split = digits_split();
    for s in split.train.samples.iter().chain(&split.test.samples) {
        let (accs, class) = reference(&m, &s.pixels);
        let got = m.accumulators(&m.quantize_input(&s.pixels));
        let got: Vec<Vec<i128>> = got
            .iter()
            .map(|l| l.iter().map(|&v| i128::from(v)).collect())
            .collect();
        assert_eq!(got, accs);
        assert_eq!(m.predict(&s.pixels), class);
    }
}

fn random_model(rng: &mut ChaCha8Rng) -> QuantModel {
    let input_bits = rng.random_range(1..=8u8);
    let hidden = rng.random_range(1..=3usize);
    let mut widths = vec![IMAGE_PIXELS];
    for _ in 0..hidden {
        widths.push(rng.random_range(1..=20));
    }
    widths.push(10);
    let layers = widths
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            let weight_bits = rng.random_range(2..=8u8);
            let wmax = (1i16 << (weight_bits - 1)) - 1;
            QLayer {
                inputs: w[0],
                outputs: w[1],
                weight_bits,
                weights: (0..w[0] * w[1])
                    .map(|_| rng.random_range(-wmax..=wmax) as i8)
                    .collect(),
                bias: (0..w[1]).map(|_| rng.random_range(-5000..=5000)).collect(),
                requant: (k < hidden).then(|| Requant {
                    shift: rng.random_range(0..=12),
                    out_bits: rng.random_range(1..=8),
                }),
            }
        })
        .collect();
    QuantModel { input_bits, layers }
}

#[test]
fn random_models_match_reference_and_stay_in_range() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for _ in 0..200 {
        let m = random_model(&mut rng);
        let ranges = m.accumulator_ranges();
        for _ in 0..20 {
            let mut pixels = [0u8; IMAGE_PIXELS];
            // Mix uniform pixels with all-zero and all-16 corners.
            let mode = rng.random_range(0..4);
            for p in pixels.iter_mut() {
                *p = match mode {
                    0 => 0,
                    1 => 16,
                    _ => rng.random_range(0..=16),
                };
            }
            let (accs, class) = reference(&m, &pixels);
            let got = m.accumulators(&m.quantize_input(&pixels));
            for (k, layer) in got.iter().enumerate() {
                for (j, &v) in layer.iter().enumerate() {
                    assert_eq!(i128::from(v), accs[k][j]);
                    assert!(ranges[k][j].min <= v && v <= ranges[k][j].max);
                }
            }
            assert_eq!(m.predict(&pixels), class);
        }
    }
}

#[test]
fn ranges_are_tight() {
    // The extreme input (each input at 0 or its maximum by the sign of the weight) reaches the
    // bound exactly for a one-layer model.
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let m = random_model(&mut rng);
    let first = QuantModel {
        input_bits: m.input_bits,
        layers: vec![QLayer {
            requant: None,
            ..m.layers[0].clone()
        }],
    };
    let r = first.accumulator_ranges();
    let top = first.input_max() as u8;
    let row = first.layers[0].row(0);
    let hi: Vec<u8> = row.iter().map(|&w| if w > 0 { top } else { 0 }).collect();
    let lo: Vec<u8> = row.iter().map(|&w| if w < 0 { top } else { 0 }).collect();
    assert_eq!(first.accumulators(&hi)[0][0], r[0][0].max);
    assert_eq!(first.accumulators(&lo)[0][0], r[0][0].min);
}
