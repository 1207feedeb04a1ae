//! The compiled circuit against the integer inference: the bundled model on real images, random
//! models of every width on random and extreme inputs; the circuit's independence from the
//! weights; the input layout against an encoder written from the module documentation; and the
//! errors of every encoding and decoding step.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_nn::bundled_model;
use veil_nn::compile::{
    compile as compile_graph, compile_architecture, widen, CompileError, CompiledModel, InputValue,
    OutputValue, Outputs, Prediction,
};
use veil_nn::data::digits_split;
use veil_nn::graph::{Architecture, Op};
use veil_nn::quant::{QLayer, QuantModel, Requant};

/// Most tests build MLPs in their version-1 form; the circuit takes the graph.
fn compile(model: &QuantModel, outputs: Outputs) -> Result<CompiledModel, CompileError> {
    compile_graph(&model.to_graph(), outputs)
}

fn arch_of(model: &QuantModel) -> Architecture {
    model.to_graph().architecture
}

/// The narrowest accumulator width of each dense layer.
fn acc_bits(model: &QuantModel) -> Vec<u32> {
    arch_of(model)
        .ops
        .iter()
        .filter_map(|o| o.widths().map(|(_, a)| a))
        .collect()
}

/// Sets the accumulator width of dense layer `layer`.
fn set_acc_bits(arch: &mut Architecture, layer: usize, bits: u32) {
    if let Some(Op::Dense { acc_bits, .. }) = arch
        .ops
        .iter_mut()
        .filter(|o| o.widths().is_some())
        .nth(layer)
    {
        *acc_bits = bits;
    }
}

trait Plain {
    fn plain(&self, model: &QuantModel, codes: &[u8]) -> Result<Prediction, CompileError>;
    fn server(&self, model: &QuantModel) -> Result<Vec<Vec<bool>>, CompileError>;
}

impl Plain for CompiledModel {
    fn plain(&self, model: &QuantModel, codes: &[u8]) -> Result<Prediction, CompileError> {
        self.eval_plain(&model.to_graph(), codes)
    }
    fn server(&self, model: &QuantModel) -> Result<Vec<Vec<bool>>, CompileError> {
        self.server_inputs(&model.to_graph())
    }
}

const ALL_OUTPUTS: [Outputs; 3] = [Outputs::Class, Outputs::Logits, Outputs::ClassAndLogits];

fn bundled() -> QuantModel {
    QuantModel::from_graph(&bundled_model().unwrap().quantized).unwrap()
}

/// What the circuit must reveal for `codes`, by the plaintext integer inference.
fn expected(model: &QuantModel, codes: &[u8], outputs: Outputs) -> Prediction {
    Prediction {
        class: outputs.has_class().then(|| model.predict_codes(codes)),
        logits: outputs.has_logits().then(|| model.logits(codes)),
    }
}

/// A random model: 1 or 2 hidden layers, every width 1..=8, random bit widths and shifts, and
/// biases from small to the extremes of `i32`.
fn random_model(rng: &mut ChaCha8Rng) -> QuantModel {
    let input_bits = rng.random_range(1..=8u8);
    let hidden = rng.random_range(1..=2usize);
    let widths: Vec<usize> = (0..hidden + 2).map(|_| rng.random_range(1..=8)).collect();
    let shapes: Vec<(u8, Option<Requant>)> = (0..=hidden)
        .map(|k| {
            let requant = (k < hidden).then(|| Requant {
                shift: rng.random_range(0..=12),
                out_bits: rng.random_range(1..=8),
            });
            (rng.random_range(2..=8u8), requant)
        })
        .collect();
    random_weights(rng, input_bits, &widths, &shapes)
}

/// Random weights and biases for a fixed shape.
fn random_weights(
    rng: &mut ChaCha8Rng,
    input_bits: u8,
    widths: &[usize],
    shapes: &[(u8, Option<Requant>)],
) -> QuantModel {
    let mut in_max = (1i64 << input_bits) - 1;
    let layers = shapes
        .iter()
        .enumerate()
        .map(|(k, &(weight_bits, requant))| {
            let (inputs, outputs) = (widths[k], widths[k + 1]);
            let wmax = (1i64 << (weight_bits - 1)) - 1;
            let extreme = rng.random_bool(0.2);
            let weights = (0..inputs * outputs)
                .map(|_| {
                    let w = if extreme {
                        if rng.random_bool(0.5) {
                            wmax
                        } else {
                            -wmax
                        }
                    } else {
                        rng.random_range(-wmax..=wmax)
                    };
                    w as i8
                })
                .collect();
            // The largest magnitude of the weighted sum, to put biases where they matter.
            let span = (inputs as i64 * wmax * in_max).max(1);
            let bias = (0..outputs)
                .map(|_| match rng.random_range(0..6) {
                    0 => rng.random_range(-8..=8),
                    1 | 2 => rng.random_range(-span..=span) as i32,
                    3 => rng.random_range(-(1 << 20)..=1 << 20),
                    4 => rng.random::<i32>(),
                    _ => *[i32::MIN, i32::MAX].choose(rng).unwrap(),
                })
                .collect();
            if let Some(r) = requant {
                in_max = r.max_out();
            }
            QLayer {
                inputs,
                outputs,
                weight_bits,
                weights,
                bias,
                requant,
            }
        })
        .collect();
    QuantModel { input_bits, layers }
}

/// Random codes, and the extremes: all zeros, all at the maximum, and each code at 0 or the max.
fn test_inputs(rng: &mut ChaCha8Rng, model: &QuantModel, random: usize) -> Vec<Vec<u8>> {
    let n = model.layers[0].inputs;
    let max = model.input_max() as u8;
    let mut inputs = vec![vec![0; n], vec![max; n]];
    for _ in 0..4 {
        inputs.push(
            (0..n)
                .map(|_| if rng.random_bool(0.5) { max } else { 0 })
                .collect(),
        );
    }
    for _ in 0..random {
        inputs.push((0..n).map(|_| rng.random_range(0..=max)).collect());
    }
    inputs
}

#[test]
fn bundled_model_circuit_matches_integer_inference() {
    let model = bundled();
    let compiled = compile(&model, Outputs::ClassAndLogits).unwrap();
    assert_eq!(compiled.server_owned(), vec![false, true, true]);
    // The server's values do not depend on the image: encode them once.
    let server = compiled.server(&model).unwrap();
    let split = digits_split();
    assert_eq!(split.test.samples.len(), 359);
    let images = split
        .test
        .samples
        .iter()
        .chain(split.train.samples.iter().take(100));
    let mut count = 0;
    for sample in images {
        let codes = model.quantize_input(&sample.pixels);
        let inputs = compiled
            .merge_inputs(server.clone(), compiled.client_inputs(&codes).unwrap())
            .unwrap();
        let got = compiled
            .decode(&compiled.circuit.eval(&inputs).unwrap())
            .unwrap();
        assert_eq!(got, expected(&model, &codes, Outputs::ClassAndLogits));
        count += 1;
    }
    assert_eq!(count, 459);
}

#[test]
fn bundled_model_circuit_costs() {
    let model = bundled();
    let acc = acc_bits(&model);
    println!("bundled model: accumulator widths {acc:?}");
    let split = digits_split();
    for outputs in ALL_OUTPUTS {
        let compiled = compile(&model, outputs).unwrap();
        let s = compiled.circuit.stats();
        println!(
            "bundled model, {outputs:?}: {} AND gates, AND depth {} ({s})",
            s.and_count, s.and_depth
        );
        for sample in split.test.samples.iter().take(20) {
            let codes = model.quantize_input(&sample.pixels);
            let got = compiled.plain(&model, &codes).unwrap();
            assert_eq!(got, expected(&model, &codes, outputs));
        }
    }
}

#[test]
fn random_models_match_integer_inference() {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_c0de);
    let mut widest = 0;
    for _ in 0..300 {
        let model = random_model(&mut rng);
        widest = widest.max(*acc_bits(&model).iter().max().unwrap());
        let inputs = test_inputs(&mut rng, &model, 24);
        for outputs in ALL_OUTPUTS {
            let compiled = compile(&model, outputs).unwrap();
            assert_eq!(
                compiled.circuit.input_widths(),
                compiled.layout.input_widths()
            );
            assert_eq!(
                compiled.circuit.output_widths(),
                compiled.layout.output_widths()
            );
            for codes in &inputs {
                let got = compiled.plain(&model, codes).unwrap();
                assert_eq!(got, expected(&model, codes, outputs), "{model:?} {codes:?}");
            }
        }
    }
    // The biases reach beyond 32-bit accumulators.
    assert!(widest > 32, "widest accumulator {widest} bits");
}

#[test]
fn circuit_depends_only_on_the_architecture() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    // The bundled model with every row's weights shuffled: other weights, the same ranges.
    let model = bundled();
    let mut other = model.clone();
    for layer in &mut other.layers {
        let n = layer.inputs;
        for row in layer.weights.chunks_mut(n) {
            row.shuffle(&mut rng);
        }
    }
    assert_ne!(model.layers[0].weights, other.layers[0].weights);
    assert_eq!(arch_of(&model), arch_of(&other));
    for outputs in ALL_OUTPUTS {
        assert_eq!(
            compile(&model, outputs).unwrap(),
            compile(&other, outputs).unwrap()
        );
    }
    // One circuit serves both models.
    let compiled = compile(&model, Outputs::ClassAndLogits).unwrap();
    for sample in digits_split().test.samples.iter().take(30) {
        let codes = other.quantize_input(&sample.pixels);
        let got = compiled.plain(&other, &codes).unwrap();
        assert_eq!(got, expected(&other, &codes, Outputs::ClassAndLogits));
    }

    // Random models of one shape with independent weights and biases: compiled at the wider
    // accumulator widths of the two, one circuit evaluates both exactly.
    for _ in 0..50 {
        let a = random_model(&mut rng);
        let widths = a.widths();
        let shapes: Vec<(u8, Option<Requant>)> = a
            .layers
            .iter()
            .map(|l| (l.weight_bits, l.requant))
            .collect();
        let b = random_weights(&mut rng, a.input_bits, &widths, &shapes);
        let mut arch = arch_of(&a);
        for (l, (x, y)) in acc_bits(&a).into_iter().zip(acc_bits(&b)).enumerate() {
            set_acc_bits(&mut arch, l, x.max(y));
        }
        for outputs in ALL_OUTPUTS {
            let compiled = compile_architecture(&arch, outputs).unwrap();
            assert_eq!(compiled, compile_architecture(&arch, outputs).unwrap());
            for model in [&a, &b] {
                for codes in test_inputs(&mut rng, model, 4) {
                    let got = compiled.plain(model, &codes).unwrap();
                    assert_eq!(got, expected(model, &codes, outputs));
                }
            }
        }
    }
}

#[test]
fn shape_only_widths_stay_exact() {
    // 32-bit accumulators hold every model a model file can hold, and reveal nothing about the
    // weights.
    let model = bundled();
    let arch = widen(&arch_of(&model), 32);
    let compiled = compile_architecture(&arch, Outputs::ClassAndLogits).unwrap();
    let s = compiled.circuit.stats();
    println!(
        "bundled model, 32-bit accumulators, ClassAndLogits: {} AND gates, AND depth {}",
        s.and_count, s.and_depth
    );
    for sample in digits_split().test.samples.iter().take(30) {
        let codes = model.quantize_input(&sample.pixels);
        let got = compiled.plain(&model, &codes).unwrap();
        assert_eq!(got, expected(&model, &codes, Outputs::ClassAndLogits));
    }
}

/// The circuit's input values for `model` and `codes`, written from the module documentation
/// alone.
fn encode_from_documentation(
    arch: &Architecture,
    model: &QuantModel,
    codes: &[u8],
) -> Vec<Vec<bool>> {
    let bit = |v: i64, t: usize| (v >> t.min(63)) & 1 == 1;
    let ib = usize::from(arch.input_bits);
    let mut values = vec![vec![false; codes.len() * ib]];
    for (i, &c) in codes.iter().enumerate() {
        for t in 0..ib {
            values[0][i * ib + t] = bit(i64::from(c), t);
        }
    }
    let widths: Vec<(u8, u32)> = arch.ops.iter().filter_map(Op::widths).collect();
    for ((weight_bits, acc_bits), layer) in widths.into_iter().zip(&model.layers) {
        let (n, m) = (layer.inputs, layer.outputs);
        let wb = usize::from(weight_bits);
        let ab = acc_bits as usize;
        let mut v = vec![false; m * (n * wb + ab)];
        for j in 0..m {
            for i in 0..n {
                for t in 0..wb {
                    v[(j * n + i) * wb + t] = bit(i64::from(layer.weights[j * n + i]), t);
                }
            }
            for t in 0..ab {
                v[m * n * wb + j * ab + t] = bit(i64::from(layer.bias[j]), t);
            }
        }
        values.push(v);
    }
    values
}

#[test]
fn layout_matches_an_independent_encoder() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let mut models = vec![bundled()];
    models.extend((0..20).map(|_| random_model(&mut rng)));
    for model in &models {
        let compiled = compile(model, Outputs::Logits).unwrap();
        let layout = &compiled.layout;
        let layers = model.layers.len();
        let mut values = vec![InputValue::Codes];
        values.extend((0..layers).map(InputValue::Layer));
        assert_eq!(layout.input_values, values);
        assert_eq!(layout.output_values, vec![OutputValue::Logits]);
        for codes in test_inputs(&mut rng, model, 2) {
            let merged = compiled
                .merge_inputs(
                    compiled.server(model).unwrap(),
                    compiled.client_inputs(&codes).unwrap(),
                )
                .unwrap();
            assert_eq!(
                merged,
                encode_from_documentation(&layout.architecture, model, &codes)
            );
        }
        // The position helpers agree with the encoding.
        let server = compiled.server(model).unwrap();
        let last = layers - 1;
        let l = &model.layers[last];
        let (j, i) = (l.outputs - 1, l.inputs - 1);
        let (value, at) = layout.weight_position(last, j * l.inputs + i);
        let wb = usize::from(l.weight_bits);
        let w = &server[value - 1][at..at + wb];
        assert_eq!(
            veil_circuit::bits::bits_to_i128(w),
            i128::from(l.weights[j * l.inputs + i])
        );
        let (value, at) = layout.bias_position(last, j);
        let ab = acc_bits(model)[last] as usize;
        assert_eq!(at + ab, layout.input_width(InputValue::Layer(last)));
        let b = &server[value - 1][at..at + ab];
        assert_eq!(veil_circuit::bits::bits_to_i128(b), i128::from(l.bias[j]));
        assert_eq!(
            layout.code_position(3),
            (0, 3 * usize::from(model.input_bits))
        );
    }
}

#[test]
fn server_inputs_reject_mismatched_models() {
    let model = bundled();
    let compiled = compile(&model, Outputs::Class).unwrap();
    assert_eq!(compiled.server(&model).unwrap().len(), 2);
    let mismatch =
        |m: &QuantModel| matches!(compiled.server(m), Err(CompileError::ModelMismatch(_)));

    let mut m = model.clone();
    m.input_bits = 5;
    assert!(mismatch(&m));
    let mut m = model.clone();
    m.layers[0].weight_bits = 5;
    assert!(mismatch(&m));
    let mut m = model.clone();
    m.layers[1].weight_bits = 3;
    m.layers[1]
        .weights
        .iter_mut()
        .for_each(|w| *w = (*w).clamp(-3, 3));
    assert!(mismatch(&m));
    let mut m = model.clone();
    if let Some(r) = &mut m.layers[0].requant {
        r.shift += 1;
    }
    assert!(mismatch(&m));
    let mut m = model.clone();
    if let Some(r) = &mut m.layers[0].requant {
        r.out_bits += 1;
    }
    assert!(mismatch(&m));
    // A bias beyond the compiled accumulator width.
    let mut m = model.clone();
    m.layers[1].bias[3] = 1 << 20;
    assert!(mismatch(&m));
    // Another shape: one output fewer, or one more layer.
    let mut m = model.clone();
    let l = &mut m.layers[1];
    l.outputs -= 1;
    l.weights.truncate(l.outputs * l.inputs);
    l.bias.pop();
    assert!(mismatch(&m));
    let mut m = model.clone();
    let mut extra = m.layers[1].clone();
    extra.inputs = 10;
    extra.weights = vec![1; 100];
    extra.bias = vec![0; 10];
    m.layers[1].requant = m.layers[0].requant;
    m.layers.push(extra);
    assert!(mismatch(&m));
    // Malformed models.
    let mut m = model.clone();
    m.layers[0].weights[5] = 8;
    assert!(matches!(
        compiled.server(&m),
        Err(CompileError::InvalidModel(_))
    ));
    let mut m = model.clone();
    m.layers[0].weights.pop();
    assert!(matches!(
        compiled.server(&m),
        Err(CompileError::InvalidModel(_))
    ));

    // Narrower accumulators fit: the same shape with all-zero weights and biases.
    let mut m = model.clone();
    for l in &mut m.layers {
        l.weights.iter_mut().for_each(|w| *w = 0);
        l.bias.iter_mut().for_each(|b| *b = 0);
    }
    let codes = vec![3; 64];
    assert_eq!(
        compiled.plain(&m, &codes).unwrap(),
        expected(&m, &codes, Outputs::Class)
    );
}

#[test]
fn client_inputs_reject_bad_codes() {
    let model = bundled();
    let compiled = compile(&model, Outputs::Class).unwrap();
    let ok = compiled.client_inputs(&[15; 64]).unwrap();
    assert_eq!(ok, vec![vec![true; 256]]);
    assert!(matches!(
        compiled.client_inputs(&[0; 63]),
        Err(CompileError::CodeCount {
            expected: 64,
            got: 63
        })
    ));
    assert!(matches!(
        compiled.client_inputs(&[0; 65]),
        Err(CompileError::CodeCount { .. })
    ));
    let mut codes = vec![0u8; 64];
    codes[17] = 16;
    assert!(matches!(
        compiled.client_inputs(&codes),
        Err(CompileError::CodeRange {
            index: 17,
            code: 16,
            max: 15
        })
    ));
    // Merging checks the number and widths of the values.
    let server = compiled.server(&model).unwrap();
    assert!(matches!(
        compiled.merge_inputs(server.clone(), vec![]),
        Err(CompileError::Inputs(_))
    ));
    assert!(matches!(
        compiled.merge_inputs(server, vec![vec![false; 255]]),
        Err(CompileError::Inputs(_))
    ));
}

#[test]
fn decode_rejects_malformed_outputs() {
    let model = bundled();
    let compiled: CompiledModel = compile(&model, Outputs::ClassAndLogits).unwrap();
    let widths = compiled.layout.output_widths();
    assert_eq!(widths[0], 4);
    assert_eq!(
        widths[1],
        10 * compiled.layout.architecture.logit_bits() as usize
    );
    let zeros: Vec<Vec<bool>> = widths.iter().map(|&w| vec![false; w]).collect();
    let p = compiled.decode(&zeros).unwrap();
    assert_eq!(p.class, Some(0));
    assert_eq!(p.logits, Some(vec![0; 10]));
    assert!(matches!(
        compiled.decode(&zeros[..1]),
        Err(CompileError::Outputs(_))
    ));
    let mut short = zeros.clone();
    short[1].pop();
    assert!(matches!(
        compiled.decode(&short),
        Err(CompileError::Outputs(_))
    ));
    // Class 15 of 10.
    let mut bad = zeros;
    bad[0] = vec![true; 4];
    assert!(matches!(
        compiled.decode(&bad),
        Err(CompileError::Outputs(_))
    ));
}

#[test]
fn compile_rejects_invalid_models() {
    let model = bundled();
    let invalid = |m: &QuantModel| {
        matches!(
            compile(m, Outputs::Class),
            Err(CompileError::InvalidModel(_))
        )
    };
    assert!(invalid(&QuantModel {
        input_bits: 4,
        layers: vec![]
    }));
    let mut m = model.clone();
    m.input_bits = 9;
    assert!(invalid(&m));
    let mut m = model.clone();
    m.layers[0].requant = None;
    assert!(invalid(&m));
    let mut m = model.clone();
    m.layers[1].requant = m.layers[0].requant;
    assert!(invalid(&m));
    let mut m = model.clone();
    m.layers[0].bias.push(0);
    assert!(invalid(&m));

    let mut arch = arch_of(&model);
    set_acc_bits(&mut arch, 0, 0);
    assert!(matches!(
        compile_architecture(&arch, Outputs::Class),
        Err(CompileError::InvalidArchitecture(_))
    ));
    set_acc_bits(&mut arch, 0, 65);
    assert!(matches!(
        compile_architecture(&arch, Outputs::Class),
        Err(CompileError::InvalidArchitecture(_))
    ));
}
