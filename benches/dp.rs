//! Privacy accounting of 100 000 DP-SGD steps (q = 0.01, noise multiplier 1.1, delta 1e-5)
//! with the RDP and the PLD accountant.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use veil::dp::{dp_sgd_epsilon, AccountantKind, Delta, NoiseMultiplier, SamplingRate};

fn accounting(c: &mut Criterion) {
    let noise = NoiseMultiplier::new(1.1).expect("noise");
    let q = SamplingRate::new(0.01).expect("rate");
    let delta = Delta::new(1e-5).expect("delta");
    let mut g = c.benchmark_group("dp_sgd_100k_steps");
    g.sample_size(10);
    for (name, kind) in [
        ("rdp", AccountantKind::Rdp),
        ("pld", AccountantKind::Pld(Default::default())),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| dp_sgd_epsilon(noise, q, black_box(100_000), delta, &kind).expect("epsilon"))
        });
    }
    g.finish();
}

criterion_group!(benches, accounting);
criterion_main!(benches);
