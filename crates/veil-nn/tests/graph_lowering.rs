//! Every lowering of random model graphs against an integer reference written here from the
//! semantics of `QUANTIZATION.md` ("Model graph") alone: nested loops over channels, rows and
//! columns, `i128` arithmetic, no use of `graph.rs`'s sparse rows or tensors.
//!
//! - `QuantGraph::tensors` equals the reference on every tensor, on random and extreme inputs,
//!   and `QuantGraph::ranges` bounds every value seen;
//! - the boolean circuit (`compile`, every `Outputs`) evaluated in the clear gives the
//!   reference's class and logits; its input and output widths are its layout's; it depends on
//!   the architecture only (two graphs of one architecture compile to one circuit), and the
//!   circuit of the architecture widened to 32-bit accumulators is still exact.

#[path = "common/random_graph.rs"]
mod random_graph;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use random_graph::{inputs, random_params, shapes, valid_graphs};
use veil_nn::compile::{compile, compile_architecture, widen, CompiledModel, Outputs, Prediction};
use veil_nn::graph::{Op, QuantGraph};

const ALL_OUTPUTS: [Outputs; 3] = [Outputs::Class, Outputs::Logits, Outputs::ClassAndLogits];

/// Candidate graphs per test, and the fewest of them that must validate.
const CANDIDATES: usize = 400;
const MIN_VALID: usize = 200;

/// Every tensor of the integer inference of `g` on `codes`, input first, computed from the
/// definitions.
fn reference(g: &QuantGraph, codes: &[u8]) -> Vec<Vec<i128>> {
    let a = &g.architecture;
    let shapes = shapes(a).expect("the shapes chain");
    let mut t: Vec<i128> = codes.iter().map(|&c| i128::from(c)).collect();
    assert_eq!(t.len(), shapes[0].0 * shapes[0].1 * shapes[0].2);
    let mut out = vec![t.clone()];
    let mut params = g.params.iter();
    for (k, op) in a.ops.iter().enumerate() {
        let (c, h, w) = shapes[k];
        let (oc, oh, ow) = shapes[k + 1];
        let at = |t: &[i128], ch: usize, y: usize, x: usize| t[(ch * h + y) * w + x];
        t = match *op {
            Op::Dense { outputs, .. } => {
                let p = params.next().expect("parameters");
                let n = c * h * w;
                (0..outputs)
                    .map(|j| {
                        let mut acc = i128::from(p.bias[j]);
                        for ch in 0..c {
                            for y in 0..h {
                                for x in 0..w {
                                    let i = (ch * h + y) * w + x;
                                    acc += i128::from(p.weights[j * n + i]) * at(&t, ch, y, x);
                                }
                            }
                        }
                        acc
                    })
                    .collect()
            }
            Op::Conv2d {
                kernel,
                stride,
                padding,
                ..
            } => {
                let p = params.next().expect("parameters");
                let mut v = Vec::with_capacity(oc * oh * ow);
                for o in 0..oc {
                    for y in 0..oh {
                        for x in 0..ow {
                            let mut acc = i128::from(p.bias[o]);
                            for ch in 0..c {
                                for ky in 0..kernel {
                                    for kx in 0..kernel {
                                        let iy = (y * stride + ky) as isize - padding as isize;
                                        let ix = (x * stride + kx) as isize - padding as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize
                                        {
                                            continue; // a zero of the padding
                                        }
                                        let wt =
                                            p.weights[((o * c + ch) * kernel + ky) * kernel + kx];
                                        acc +=
                                            i128::from(wt) * at(&t, ch, iy as usize, ix as usize);
                                    }
                                }
                            }
                            v.push(acc);
                        }
                    }
                }
                v
            }
            Op::AvgPool { kernel, stride } => {
                let mut v = Vec::with_capacity(oc * oh * ow);
                for ch in 0..c {
                    for y in 0..oh {
                        for x in 0..ow {
                            let mut sum = 0i128;
                            for ky in 0..kernel {
                                for kx in 0..kernel {
                                    sum += at(&t, ch, y * stride + ky, x * stride + kx);
                                }
                            }
                            v.push(sum);
                        }
                    }
                }
                v
            }
            Op::Flatten => t,
            Op::Relu { shift, out_bits } => {
                let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
                let top = (1i128 << out_bits) - 1;
                t.iter()
                    .map(|&v| ((v + half) >> shift).clamp(0, top))
                    .collect()
            }
        };
        assert_eq!(t.len(), oc * oh * ow, "op {k}");
        out.push(t.clone());
    }
    assert!(params.next().is_none(), "unused parameters");
    out
}

/// The first index of the largest value.
fn first_argmax(v: &[i128]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

fn expected(g: &QuantGraph, codes: &[u8], outputs: Outputs) -> Prediction {
    let logits = reference(g, codes).pop().unwrap();
    Prediction {
        class: outputs.has_class().then(|| first_argmax(&logits)),
        logits: outputs
            .has_logits()
            .then(|| logits.iter().map(|&v| i64::try_from(v).unwrap()).collect()),
    }
}

fn describe(g: &QuantGraph) -> String {
    format!(
        "{} (input_bits {}, ops {:?})",
        g.architecture.describe(),
        g.architecture.input_bits,
        g.architecture.ops
    )
}

#[test]
fn generator_makes_enough_valid_graphs_of_every_kind() {
    let graphs = valid_graphs(1, CANDIDATES);
    println!("{} of {CANDIDATES} candidate graphs validate", graphs.len());
    assert!(
        graphs.len() >= MIN_VALID,
        "only {} valid graphs",
        graphs.len()
    );
    let count = |f: &dyn Fn(&QuantGraph) -> bool| graphs.iter().filter(|g| f(g)).count();
    let has = |g: &QuantGraph, f: fn(&Op) -> bool| g.architecture.ops.iter().any(f);
    let conv = count(&|g| has(g, |o| matches!(o, Op::Conv2d { .. })));
    let pool = count(&|g| has(g, |o| matches!(o, Op::AvgPool { .. })));
    let deep = count(&|g| {
        g.architecture
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Relu { .. }))
            .count()
            >= 2
    });
    let conv_head = count(&|g| !matches!(g.architecture.ops.last(), Some(Op::Dense { .. })));
    let pool_head = count(&|g| matches!(g.architecture.ops.last(), Some(Op::AvgPool { .. })));
    // Sum pools of unsigned values (activations): their sums stay unsigned.
    let unsigned_pool = count(&|g| {
        let types = g.architecture.validate().unwrap();
        g.architecture
            .ops
            .iter()
            .enumerate()
            .any(|(k, o)| matches!(o, Op::AvgPool { .. }) && !types[k + 1].1.signed)
    });
    let padded = count(&|g| has(g, |o| matches!(o, Op::Conv2d { padding: 1, .. })));
    let strided = count(&|g| has(g, |o| matches!(o, Op::Conv2d { stride: 2, .. })));
    println!(
        "with a conv {conv}, a pool {pool}, >= 2 relus {deep}, a conv/pool head {conv_head} \
         (pooled {pool_head}), a pool of activations {unsigned_pool}, padding {padded}, stride 2 {strided}"
    );
    for n in [
        conv,
        pool,
        deep,
        conv_head,
        pool_head,
        unsigned_pool,
        padded,
        strided,
    ] {
        assert!(n >= 10, "too few graphs of some kind: {n}");
    }
}

#[test]
fn tensors_and_ranges_match_the_reference() {
    let graphs = valid_graphs(2, CANDIDATES);
    assert!(
        graphs.len() >= MIN_VALID,
        "only {} valid graphs",
        graphs.len()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(20);
    let mut values = 0usize;
    for (n, g) in graphs.iter().enumerate() {
        let ranges = g.ranges();
        for codes in inputs(&mut rng, &g.architecture, 8) {
            let want = reference(g, &codes);
            let got = g.tensors(&codes);
            assert_eq!(got.len(), want.len());
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                let a128: Vec<i128> = a.iter().map(|&v| i128::from(v)).collect();
                assert_eq!(
                    &a128,
                    b,
                    "graph {n}: tensor {k} differs on input {codes:?}\n{}",
                    describe(g)
                );
                assert_eq!(ranges[k].len(), b.len(), "graph {n}: tensor {k}");
                for (i, (r, &v)) in ranges[k].iter().zip(b).enumerate() {
                    assert!(
                        i128::from(r.min) <= v && v <= i128::from(r.max),
                        "graph {n}: value {i} of tensor {k} is {v}, outside {}..={}\n{}",
                        r.min,
                        r.max,
                        describe(g)
                    );
                    values += 1;
                }
            }
            let class = first_argmax(want.last().unwrap());
            assert_eq!(g.predict_codes(&codes), class, "graph {n}");
        }
    }
    println!("{} graphs, {values} values checked", graphs.len());
}

/// Compiles `g` for `outputs` and checks its widths and its plaintext evaluation on `inputs`.
fn check_circuit(
    c: &CompiledModel,
    g: &QuantGraph,
    inputs: &[Vec<u8>],
    outputs: Outputs,
    what: &str,
) {
    assert_eq!(
        c.circuit.input_widths(),
        c.layout.input_widths(),
        "{what}: input widths\n{}",
        describe(g)
    );
    assert_eq!(
        c.circuit.output_widths(),
        c.layout.output_widths(),
        "{what}: output widths\n{}",
        describe(g)
    );
    for codes in inputs {
        let got = c.eval_plain(g, codes).unwrap();
        assert_eq!(
            got,
            expected(g, codes, outputs),
            "{what}, {outputs:?}, input {codes:?}\n{}",
            describe(g)
        );
    }
}

#[test]
fn circuits_match_the_reference_and_depend_on_the_architecture_only() {
    let graphs = valid_graphs(3, CANDIDATES);
    assert!(
        graphs.len() >= MIN_VALID,
        "only {} valid graphs",
        graphs.len()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(30);
    let (mut twins, mut printed) = (0, 0);
    for (n, g) in graphs.iter().enumerate() {
        let tries = inputs(&mut rng, &g.architecture, 3);
        // A second graph of the same ops with other weights; both take the wider accumulator
        // of each op, so that they share one architecture.
        let mut twin = QuantGraph {
            architecture: g.architecture.clone(),
            params: random_params(&mut rng, &g.architecture),
            observed: None,
        };
        twin.fit_acc_bits();
        let mut g = g.clone();
        let twin = twin.validate().is_ok().then(|| {
            for (a, b) in g
                .architecture
                .ops
                .iter_mut()
                .zip(&mut twin.architecture.ops)
            {
                if let (
                    Op::Dense { acc_bits: x, .. } | Op::Conv2d { acc_bits: x, .. },
                    Op::Dense { acc_bits: y, .. } | Op::Conv2d { acc_bits: y, .. },
                ) = (a, b)
                {
                    let m = (*x).max(*y);
                    (*x, *y) = (m, m);
                }
            }
            twin
        });
        if let Some(t) = &twin {
            assert_eq!(t.architecture, g.architecture);
            assert!(
                t.validate().is_ok(),
                "twin of graph {n}: {:?}",
                t.validate()
            );
        }
        assert!(
            g.validate().is_ok(),
            "graph {n} with wider accumulators: {:?}",
            g.validate()
        );
        twins += usize::from(twin.is_some());
        let wide = widen(&g.architecture, 32);
        let mut ands = Vec::new();
        for outputs in ALL_OUTPUTS {
            let c = compile(&g, outputs).unwrap();
            assert_eq!(c.layout.architecture, g.architecture);
            check_circuit(&c, &g, &tries, outputs, &format!("graph {n}"));
            ands.push(c.circuit.stats().and_count);
            if let Some(t) = &twin {
                let ct = compile(t, outputs).unwrap();
                assert!(
                    ct == c,
                    "graph {n}: two weights, two circuits\n{}",
                    describe(&g)
                );
                check_circuit(&ct, t, &tries, outputs, &format!("twin of graph {n}"));
            }
            let cw = compile_architecture(&wide, outputs).unwrap();
            check_circuit(
                &cw,
                &g,
                &tries,
                outputs,
                &format!("graph {n} widened to 32 bits"),
            );
            if let Some(t) = &twin {
                check_circuit(
                    &cw,
                    t,
                    &tries,
                    outputs,
                    &format!("twin {n} widened to 32 bits"),
                );
            }
            ands.push(cw.circuit.stats().and_count);
        }
        if printed < 8 && g.architecture.ops.len() >= 5 {
            printed += 1;
            println!(
                "{}: AND gates class {} / logits {} / both {}; at 32-bit accumulators {} / {} / {}",
                g.architecture.describe(),
                ands[0],
                ands[2],
                ands[4],
                ands[1],
                ands[3],
                ands[5]
            );
        }
    }
    println!(
        "{} graphs compiled three ways each, {twins} with a twin of other weights",
        graphs.len()
    );
    assert!(twins >= graphs.len() / 2, "only {twins} twins");
}

/// The smallest graphs seen to break the circuit: a sum pool of unsigned activations read by
/// a dense layer (the usual `relu -> pool -> dense/conv` of a CNN) or by a second ReLU. The
/// pool's sums are unsigned (`Architecture::validate` types them so); the circuit must not read
/// them as two's complement.
#[test]
fn a_pool_of_activations_feeds_a_dense_layer_or_a_relu() {
    use veil_nn::graph::{Architecture, LayerParams, Shape};
    let mut failures = Vec::new();
    // (a ReLU after the pool, the dense weight, the input, the logit)
    for (relu, dense_weight, codes, logit) in [
        (false, -3i8, [0u8; 4], 0i64),
        (false, 1, [3; 4], 12),
        (false, -3, [3, 0, 0, 0], -9),
        (true, 1, [3; 4], 12),
    ] {
        let mut ops = vec![
            Op::Conv2d {
                out_channels: 1,
                kernel: 1,
                stride: 1,
                padding: 0,
                weight_bits: 2,
                acc_bits: 32,
            },
            Op::Relu {
                shift: 0,
                out_bits: 2,
            },
            Op::AvgPool {
                kernel: 2,
                stride: 2,
            },
            Op::Flatten,
            Op::Dense {
                outputs: 1,
                weight_bits: 3,
                acc_bits: 32,
            },
        ];
        if relu {
            ops.insert(
                3,
                Op::Relu {
                    shift: 0,
                    out_bits: 4,
                },
            );
        }
        let mut g = QuantGraph {
            architecture: Architecture {
                input: Shape::image(1, 2, 2),
                input_bits: 2,
                pixel_max: 255,
                ops,
            },
            params: vec![
                LayerParams {
                    weights: vec![1],
                    bias: vec![0],
                },
                LayerParams {
                    weights: vec![dense_weight],
                    bias: vec![0],
                },
            ],
            observed: None,
        };
        g.fit_acc_bits();
        g.validate().unwrap();
        assert_eq!(
            reference(&g, &codes).pop().unwrap(),
            vec![i128::from(logit)]
        );
        assert_eq!(g.logits(&codes), vec![logit]);
        for outputs in ALL_OUTPUTS {
            let c = compile(&g, outputs).unwrap();
            let got = c.eval_plain(&g, &codes).unwrap();
            let want = expected(&g, &codes, outputs);
            if got != want {
                failures.push(format!(
                    "{} (ops {:?}), input {codes:?}: circuit {got:?}, expected {want:?}",
                    g.architecture.describe(),
                    g.architecture.ops
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
