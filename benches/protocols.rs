//! Private inference of one test digit end to end through the protocol layer, client and
//! server over the in-memory channel: Yao per digit, GMW for a batch of 64 digits. (HE is in
//! `benches/fhe.rs`; `veil bench` measures all three over loopback TCP.)

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use veil::net::{Channel, ChannelConfig};
use veil::protocols::server::session;
use veil::protocols::{Client, ClientOptions, Protocol, Served, ServerConfig};

fn protocols(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let model = veil::nn::bundled_model().expect("bundled model").quantized;
    let served = Arc::new(Served::new(ServerConfig::new(model.clone())).expect("served"));
    let test = veil::nn::data::digits_split().test;
    let codes: Vec<Vec<u8>> = test.samples[..64]
        .iter()
        .map(|s| model.quantize_input(&s.pixels))
        .collect();
    let mut g = c.benchmark_group("private_inference");
    g.sample_size(10);
    for (protocol, batch) in [(Protocol::Yao, 1usize), (Protocol::Gmw, 64)] {
        let (a, b) = Channel::memory_pair(ChannelConfig::default());
        let srv = served.clone();
        rt.spawn(async move {
            let mut a = a;
            let _ = session(&mut a, &srv).await;
        });
        let mut client = rt
            .block_on(Client::start(b, ClientOptions::new(protocol)))
            .expect("client");
        let name = format!("{protocol}_{batch}_digits");
        g.bench_function(name, |bench| {
            bench.iter(|| {
                rt.block_on(client.classify(&codes[..batch]))
                    .expect("classify")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, protocols);
criterion_main!(benches);
