//! The FHE plan of random model graphs (convolutions, pools, any depth) against veil-nn's
//! integer reference, without keys: the stages' affine rows, requantizations and output rows
//! evaluated on integers, and the server's torus arithmetic and lookup tables simulated without
//! noise. Then a small CNN with real TFHE keys, end to end, with two hidden stages and cut
//! after its first (one stage), each printing the noise it measures at every stage.

#[path = "../../veil-nn/tests/common/random_graph.rs"]
mod random_graph;

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use random_graph::{inputs, valid_graphs};
use veil_fhe::plan::{input_delta, output_delta, slot};
use veil_fhe::{decode_logit, AffineRow, FheClient, FhePlan, FheServer, PlanError, PublicShape};
use veil_nn::graph::{Architecture, LayerParams, Op, QuantGraph, Shape};

/// The polynomial size of the keys (tfhe's `PARAM_MESSAGE_2_CARRY_2_KS_PBS`).
const N: usize = 2048;

fn eval_rows(rows: &[AffineRow], x: &[i64]) -> Vec<i64> {
    rows.iter()
        .map(|r| r.constant + r.terms.iter().map(|&(i, c)| c * x[i as usize]).sum::<i64>())
        .collect()
}

/// The torus value a programmable bootstrap returns for `phase` with table `lut` (negacyclic:
/// the upper half of the torus reads the table negated).
fn bootstrap(phase: u64, lut: &[u64]) -> u64 {
    let n = lut.len() as u64;
    let s = slot(lut.len());
    let idx = (phase.wrapping_add(s / 2) / s) % (2 * n);
    if idx < n {
        lut[idx as usize]
    } else {
        lut[(idx - n) as usize].wrapping_neg()
    }
}

/// Checks `plan` against `g` on `codes`: the integer stages, and (for an exact plan) the
/// noiseless torus arithmetic of the server. Returns the number of bootstraps simulated.
fn check_plan(plan: &FhePlan, g: &QuantGraph, codes: &[u8], what: &str) -> usize {
    let tensors = g.tensors(codes);
    let relus: Vec<usize> = g
        .architecture
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, Op::Relu { .. }))
        .map(|(k, _)| k)
        .collect();
    assert_eq!(plan.stages.len(), relus.len(), "{what}: one stage per relu");

    // Integers.
    let mut x: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
    for (s, (stage, &k)) in plan.stages.iter().zip(&relus).enumerate() {
        let acc = eval_rows(&stage.rows, &x);
        assert_eq!(
            acc, tensors[k],
            "{what}: stage {s} accumulators (input of op {k})"
        );
        assert_eq!(Some(stage.requant), g.architecture.ops[k].requant());
        for (j, (&a, n)) in acc.iter().zip(&stage.neurons).enumerate() {
            assert!(
                (n.lo..=n.hi).contains(&a),
                "{what}: stage {s} neuron {j}: {a} outside {}..={}",
                n.lo,
                n.hi
            );
        }
        x = acc.iter().map(|&a| stage.requant.apply(a)).collect();
        assert_eq!(x, tensors[k + 1], "{what}: stage {s} activations");
    }
    let logits = eval_rows(&plan.output, &x);
    assert_eq!(logits, g.logits(codes), "{what}: logits");

    // The server's arithmetic on the torus, without noise.
    if !plan.exact() {
        return 0;
    }
    let mut cts: Vec<u64> = codes
        .iter()
        .map(|&c| u64::from(c).wrapping_mul(input_delta(N)))
        .collect();
    let mut x: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
    let mut bootstraps = 0;
    for (s, stage) in plan.stages.iter().enumerate() {
        let acc = eval_rows(&stage.rows, &x);
        let mut next = Vec::with_capacity(acc.len());
        for (j, n) in stage.neurons.iter().enumerate() {
            let mut phase = n.offset;
            for &(i, c) in &stage.mults[j] {
                phase = phase.wrapping_add(cts[i as usize].wrapping_mul(c as u64));
            }
            assert_eq!(
                phase,
                plan.phase(s, j, acc[j]),
                "{what}: stage {s} neuron {j}"
            );
            let y = bootstrap(phase, &plan.lookup_table(s, j));
            assert_eq!(
                y,
                (stage.requant.apply(acc[j]) as u64).wrapping_mul(stage.out_scale[j]),
                "{what}: stage {s} neuron {j}: the table at accumulator {}",
                acc[j]
            );
            next.push(y);
            bootstraps += 1;
        }
        cts = next;
        x = acc.iter().map(|&a| stage.requant.apply(a)).collect();
    }
    let d = output_delta(plan.output_bits);
    assert!(plan
        .stages
        .last()
        .unwrap()
        .out_scale
        .iter()
        .all(|&s| s == d));
    for (j, row) in plan.output.iter().enumerate() {
        let mut phase = (row.constant as u64).wrapping_mul(d);
        for &(i, c) in &row.terms {
            phase = phase.wrapping_add(cts[i as usize].wrapping_mul(c as u64));
        }
        assert_eq!(
            decode_logit(phase, plan.output_bits),
            logits[j],
            "{what}: logit {j}"
        );
    }
    bootstraps
}

#[test]
fn stages_of_random_graphs_reproduce_the_integer_reference() {
    let graphs = valid_graphs(4, 240);
    let mut rng = ChaCha8Rng::seed_from_u64(40);
    let (mut planned, mut exact, mut too_wide, mut bootstraps, mut multi) = (0, 0, 0, 0, 0);
    for (n, g) in graphs.iter().enumerate() {
        let what = format!("graph {n}: {}", g.architecture.describe());
        let plan = match FhePlan::new(g, N) {
            Ok(p) => p,
            Err(PlanError::Range(why)) => {
                too_wide += 1;
                println!("not planned ({why}): {what}");
                continue;
            }
            Err(e) => panic!("{what}: {e}"),
        };
        planned += 1;
        exact += usize::from(plan.exact());
        multi += usize::from(plan.stages.len() >= 2);
        assert_eq!(
            plan.public_shape(),
            PublicShape::of(&g.architecture).unwrap(),
            "{what}"
        );
        assert_eq!(plan.inputs, g.architecture.input.len());
        assert_eq!(plan.output.len(), g.architecture.classes());
        assert_eq!(plan.bootstraps(), g.architecture.activations());
        for codes in inputs(&mut rng, &g.architecture, 4) {
            bootstraps += check_plan(&plan, g, &codes, &format!("{what}, input {codes:?}"));
        }
    }
    println!(
        "{} valid graphs: {planned} planned ({exact} exact, {multi} with >= 2 stages), \
         {too_wide} too wide for one bootstrap; {bootstraps} noiseless bootstraps simulated",
        graphs.len()
    );
    assert!(planned >= 100, "only {planned} graphs planned");
    assert!(exact >= 80 && multi >= 40, "{exact} exact, {multi} deep");
}

#[test]
fn a_graph_without_relu_has_no_plan() {
    let dense = |outputs| Op::Dense {
        outputs,
        weight_bits: 3,
        acc_bits: 8,
    };
    let conv = Op::Conv2d {
        out_channels: 2,
        kernel: 2,
        stride: 1,
        padding: 0,
        weight_bits: 3,
        acc_bits: 8,
    };
    let pool = Op::AvgPool {
        kernel: 2,
        stride: 1,
    };
    let p = |w: usize, b: usize| LayerParams {
        weights: vec![1; w],
        bias: vec![-1; b],
    };
    for (ops, params) in [
        (vec![dense(3)], vec![p(3 * 9, 3)]),
        (vec![Op::Flatten, dense(2)], vec![p(2 * 9, 2)]),
        (vec![conv], vec![p(2 * 4, 2)]),
        (vec![conv, pool], vec![p(2 * 4, 2)]),
        (vec![pool, Op::Flatten, dense(1)], vec![p(4, 1)]),
    ] {
        let g = QuantGraph {
            architecture: Architecture {
                input: Shape::image(1, 3, 3),
                input_bits: 2,
                pixel_max: 255,
                ops,
            },
            params,
            observed: None,
        };
        g.validate().unwrap();
        assert_eq!(
            FhePlan::new(&g, N).unwrap_err(),
            PlanError::NoActivation,
            "{}",
            g.architecture.describe()
        );
    }
}

/// The CNN of [`small_cnn`] cut after its first ReLU: conv -> relu -> flatten -> dense 3, one
/// stage of 32 bootstraps.
fn one_stage_cnn() -> QuantGraph {
    let mut g = small_cnn();
    g.architecture.ops.truncate(3);
    g.architecture.ops.push(Op::Dense {
        outputs: 3,
        weight_bits: 3,
        acc_bits: 32,
    });
    g.params.truncate(1);
    g.params.push(LayerParams {
        weights: (0..96).map(|i| ((i * 5) % 7) as i8 - 3).collect(),
        bias: vec![1, 2, 3],
    });
    g.fit_acc_bits();
    g.validate().unwrap();
    g
}

/// A small CNN: 1x6x6 codes of 4 bits -> conv 2x3x3 -> relu (3 bits) -> flatten -> dense 4 ->
/// relu (3 bits) -> dense 3; 32 + 4 bootstraps per query. Weights in `{-1, 0, 1}`, half of them
/// or more zero, from a seeded RNG: the accumulator ranges stay narrow (a few dozen values), so
/// that each accumulator value gets tens of slots and a bootstrap's input noise (a few slots)
/// practically never moves it across a requantization boundary.
fn small_cnn() -> QuantGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut w = |n: usize, zero: f64| -> Vec<i8> {
        (0..n)
            .map(|_| {
                if rng.random_bool(zero) {
                    0
                } else if rng.random_bool(0.5) {
                    1
                } else {
                    -1
                }
            })
            .collect()
    };
    let (conv_w, dense_w, out_w) = (w(2 * 9, 0.65), w(4 * 32, 0.75), w(3 * 4, 0.0));
    let mut g = QuantGraph {
        architecture: Architecture {
            input: Shape::image(1, 6, 6),
            input_bits: 4,
            pixel_max: 255,
            ops: vec![
                Op::Conv2d {
                    out_channels: 2,
                    kernel: 3,
                    stride: 1,
                    padding: 0,
                    weight_bits: 2,
                    acc_bits: 32,
                },
                Op::Relu {
                    shift: 3,
                    out_bits: 3,
                },
                Op::Flatten,
                Op::Dense {
                    outputs: 4,
                    weight_bits: 2,
                    acc_bits: 32,
                },
                Op::Relu {
                    shift: 2,
                    out_bits: 3,
                },
                Op::Dense {
                    outputs: 3,
                    weight_bits: 2,
                    acc_bits: 32,
                },
            ],
        },
        params: vec![
            LayerParams {
                weights: conv_w,
                bias: vec![4, 8],
            },
            LayerParams {
                weights: dense_w,
                bias: vec![2, 4, 0, 6],
            },
            LayerParams {
                weights: out_w,
                bias: vec![5, -3, 0],
            },
        ],
        observed: None,
    };
    g.fit_acc_bits();
    g.validate().unwrap();
    g
}

/// Replays the server's stages on `input` with tfhe's own bootstrap and the plan's tables
/// (as `FheServer::eval_hidden` does) and measures, per stage, the largest distance in slots
/// between a bootstrap's input phase and its noiseless value `FhePlan::phase`, and the largest
/// noise of the bootstrap outputs in units of the stage's output scale.
fn trace_stages(
    plan: &FhePlan,
    client: &FheClient,
    key: &tfhe::shortint::ServerKey,
    codes: &[u8],
) -> Vec<(f64, f64)> {
    use tfhe::core_crypto::prelude::{GlweCiphertext, GlweSize};
    use tfhe::shortint::ciphertext::Degree;
    use tfhe::shortint::server_key::LookupTableOwned;
    use tfhe::shortint::Ciphertext;
    let params = veil_fhe::parameters();
    let affine = |terms: &[(u32, i64)], scale: i64, cts: &[Ciphertext], constant: u64| {
        let mut acc = cts[0].clone();
        let out = acc.ct.as_mut();
        out.fill(0);
        for &(i, c) in terms {
            let c = c.wrapping_mul(scale) as u64;
            for (o, x) in out.iter_mut().zip(cts[i as usize].ct.as_ref()) {
                *o = o.wrapping_add(x.wrapping_mul(c));
            }
        }
        let b = out.last_mut().unwrap();
        *b = b.wrapping_add(constant);
        acc
    };
    let signed = |a: u64, b: u64| (a.wrapping_sub(b) as i64) as f64;
    let mut cts = client.encrypt(codes).unwrap().cts;
    let mut x: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
    let mut out = Vec::new();
    for (s, stage) in plan.stages.iter().enumerate() {
        let accs = eval_rows(&stage.rows, &x);
        let (mut worst_in, mut worst_out) = (0f64, 0f64);
        let mut next = Vec::with_capacity(accs.len());
        for (j, n) in stage.neurons.iter().enumerate() {
            let a = affine(&stage.mults[j], 1, &cts, n.offset);
            let e = signed(client.phase(&a), plan.phase(s, j, accs[j])) / slot(N) as f64;
            worst_in = worst_in.max(e.abs());
            let mut lut = GlweCiphertext::new(
                0u64,
                GlweSize(params.glwe_dimension.0 + 1),
                params.polynomial_size,
                params.ciphertext_modulus,
            );
            lut.get_mut_body()
                .as_mut()
                .copy_from_slice(&plan.lookup_table(s, j));
            let lut = LookupTableOwned {
                acc: lut,
                degree: Degree::new(stage.requant.max_out() as u64),
            };
            let y = key.apply_lookup_table(&a, &lut);
            let want = (stage.requant.apply(accs[j]) as u64).wrapping_mul(stage.out_scale[j]);
            worst_out =
                worst_out.max(signed(client.phase(&y), want).abs() / stage.out_scale[j] as f64);
            next.push(y);
        }
        out.push((worst_in, worst_out));
        cts = next;
        x = accs.iter().map(|&a| stage.requant.apply(a)).collect();
    }
    out
}

/// Encrypts 5 random queries for `g`, evaluates them with `FheServer::eval` under fresh keys
/// and counts the exact logits; prints each mismatch and, for the first query, the noise of
/// every stage ([`trace_stages`]).
fn encrypted_queries(g: &QuantGraph, name: &str) -> usize {
    let plan = FhePlan::new(g, veil_fhe::polynomial_size()).unwrap();
    assert!(plan.exact(), "{name}: the plan must be exact");
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let queries: Vec<Vec<u8>> = (0..5)
        .map(|_| (0..36).map(|_| rng.random_range(0..=15)).collect())
        .collect();
    // The activations must not be constant, or the test would prove little.
    let relus: Vec<usize> = (0..g.architecture.ops.len())
        .filter(|&k| matches!(g.architecture.ops[k], Op::Relu { .. }))
        .collect();
    let mut seen = vec![std::collections::BTreeSet::new(); relus.len()];
    for q in &queries {
        let t = g.tensors(q);
        for (s, &k) in seen.iter_mut().zip(&relus) {
            s.extend(t[k + 1].iter().copied());
        }
        check_plan(&plan, g, q, name);
    }
    let k_min = plan
        .stages
        .iter()
        .flat_map(|s| s.neurons.iter().map(|n| n.k))
        .min()
        .unwrap();
    println!(
        "{name}: {}: activations seen {seen:?}; at least {:.1} slots per accumulator value",
        g.architecture.describe(),
        k_min as f64 / veil_fhe::plan::SUBSLOT as f64
    );
    assert!(seen.iter().all(|s| s.len() >= 3), "{name}: {seen:?}");

    let start = Instant::now();
    let (client, key) = FheClient::generate(plan.public_shape());
    let server = FheServer::new(g, key.clone()).unwrap();
    println!("{name}: keys and server {:.1?}", start.elapsed());
    let mut exact = 0;
    for (i, q) in queries.iter().enumerate() {
        let t = Instant::now();
        let got = client
            .decrypt(&server.eval(&client.encrypt(q).unwrap()).unwrap())
            .unwrap();
        let want = g.logits(q);
        if got == want {
            exact += 1;
        } else {
            println!("{name}: query {i}: encrypted logits {got:?}, plaintext {want:?}");
        }
        println!(
            "{name}: query {i} ({} bootstraps) {:.1?}",
            server.bootstraps_per_query(),
            t.elapsed()
        );
    }
    for (s, (phase, out)) in trace_stages(&plan, &client, &key, &queries[0])
        .iter()
        .enumerate()
    {
        println!(
            "{name}: stage {s}: bootstrap inputs at most {phase:.2} slots from their noiseless \
             phase (margin {}); outputs at most {out:.3} output units from theirs",
            veil_fhe::plan::MARGIN_SLOTS
        );
    }
    println!("{name}: {exact} of 5 exact, {:.1?} in all", start.elapsed());
    exact
}

#[test]
fn a_small_cnn_under_real_keys_gives_the_integer_logits() {
    let g = small_cnn();
    assert_eq!(g.architecture.activations(), 36);
    let exact = encrypted_queries(&g, "two stages");
    assert!(exact >= 4, "only {exact} of 5 queries exact");
}

#[test]
fn a_one_stage_cnn_under_real_keys_gives_the_integer_logits() {
    let g = one_stage_cnn();
    assert_eq!(g.architecture.activations(), 32);
    let exact = encrypted_queries(&g, "one stage");
    assert!(exact >= 4, "only {exact} of 5 queries exact");
}
