//! One encrypted inference of the bundled model, split as a deployment sees it: key
//! generation (once per client), encryption, server evaluation, decryption. `veil fhe eval`
//! reports the same over the whole test split with the failure rate and key sizes.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use veil::fhe::{FheClient, FhePlan, FheServer};

fn fhe(c: &mut Criterion) {
    let model = veil::nn::bundled_model().expect("bundled model").quantized;
    let plan = FhePlan::new(&model, veil::fhe::polynomial_size()).expect("plan");
    let shape = plan.public_shape();
    let codes = model.quantize_input(&veil::nn::data::digits_split().test.samples[0].pixels);
    let mut g = c.benchmark_group("tfhe_inference");
    g.sample_size(10);
    g.bench_function("keygen_client_and_evaluation_key", |b| {
        b.iter(|| FheClient::generate(black_box(shape)))
    });
    let (client, key) = FheClient::generate(shape);
    let server = FheServer::new(&model, key).expect("server");
    g.bench_function("encrypt", |b| b.iter(|| client.encrypt(black_box(&codes))));
    let input = client.encrypt(&codes).expect("encrypt");
    g.bench_function("server_eval", |b| b.iter(|| server.eval(black_box(&input))));
    let out = server.eval(&input).expect("eval");
    g.bench_function("decrypt", |b| b.iter(|| client.decrypt(black_box(&out))));
    g.finish();
}

criterion_group!(benches, fhe);
criterion_main!(benches);
