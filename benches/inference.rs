//! Plaintext inference cost of the bundled model: float and exact integer paths. This is the
//! baseline every private protocol is compared with.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use veil::nn::data::digits_split;

fn inference(c: &mut Criterion) {
    let model = veil::nn::bundled_model().expect("bundled model");
    let sample = digits_split().test.samples[0].clone();
    let codes = model.quantized.quantize_input(&sample.pixels);
    c.bench_function("float_predict", |b| {
        b.iter(|| model.predict_float(black_box(&sample.pixels)))
    });
    c.bench_function("integer_predict", |b| {
        b.iter(|| model.quantized.predict_codes(black_box(&codes)))
    });
}

criterion_group!(benches, inference);
criterion_main!(benches);
