//! Privacy accounting of 100 000 DP-SGD steps (noise multiplier 1.1, delta 1e-5) with the RDP
//! and the PLD accountant, at Poisson rate 0.01 and at 256/60000 (a batch of 256 from MNIST's
//! 60 000 images, the setting `dp_accounting` is timed on in `crates/veil-dp/README.md`).

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use veil::dp::{dp_sgd_epsilon, AccountantKind, Delta, NoiseMultiplier, SamplingRate};

fn accounting(c: &mut Criterion) {
    let noise = NoiseMultiplier::new(1.1).expect("noise");
    let delta = Delta::new(1e-5).expect("delta");
    let mut g = c.benchmark_group("dp_sgd_100k_steps");
    g.sample_size(10);
    for (rate_name, q) in [("q0.01", 0.01), ("q256of60000", 256.0 / 60000.0)] {
        let q = SamplingRate::new(q).expect("rate");
        for (name, kind) in [
            ("rdp", AccountantKind::Rdp),
            ("pld", AccountantKind::Pld(Default::default())),
        ] {
            g.bench_function(format!("{name}/{rate_name}"), |b| {
                b.iter(|| {
                    dp_sgd_epsilon(noise, q, black_box(100_000), delta, &kind).expect("epsilon")
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, accounting);
criterion_main!(benches);
