//! Private inference of one test digit end to end through the protocol layer, client and
//! server over the in-memory channel: Yao per digit, GMW for a batch of 64 digits, each sealed
//! (the default, Noise IK with AES-256-GCM) and in plaintext, to show the cost of the
//! encryption. (HE is in `benches/fhe.rs`; `veil bench` measures all three over loopback TCP.)
//!
//! The mixed protocol apart, in its two phases, on the bundled digits model and on the
//! Fashion-MNIST CNN: `mixed_offline` times the preparation of one input (the shared products
//! and the garbling), `mixed_online` the query that spends it.

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use std::time::{Duration, Instant};
use veil::net::{Channel, ChannelConfig};
use veil::protocols::{accept, Client, ClientOptions, Protocol, Served, ServerConfig};

fn protocols(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let model = veil::nn::bundled_model().expect("bundled model").quantized;
    // The benchmark's own clients: trusted with GMW.
    let mut sealed_config = ServerConfig::new(model.clone()).without_query_budget();
    sealed_config.trust_clients = true;
    let key = sealed_config.public_key().expect("encrypted by default");
    let sealed = Arc::new(Served::new(sealed_config).expect("served"));
    let mut plain_config = ServerConfig::new(model.clone()).without_query_budget();
    plain_config.security = veil::protocols::ServerSecurity::InsecurePlaintext;
    plain_config.trust_clients = true;
    let plain = Arc::new(Served::new(plain_config).expect("served"));
    let test = veil::nn::data::digits_split().test;
    let codes: Vec<Vec<u8>> = test.samples[..64]
        .iter()
        .map(|s| model.quantize_input(&s.pixels))
        .collect();
    let mut g = c.benchmark_group("private_inference");
    g.sample_size(10);
    let runs = [(Protocol::Yao, 1usize), (Protocol::Gmw, 64)]
        .into_iter()
        .flat_map(|(p, n)| [(p, n, true), (p, n, false)]);
    for (protocol, batch, encrypted) in runs {
        let (a, b) = Channel::memory_pair(ChannelConfig::default());
        let (srv, options, mode) = if encrypted {
            (sealed.clone(), ClientOptions::new(protocol, key), "sealed")
        } else {
            let options = ClientOptions::insecure_plaintext(protocol);
            (plain.clone(), options, "plaintext")
        };
        rt.spawn(async move {
            let mut a = a;
            let _ = accept(&mut a, &srv).await;
        });
        let mut client = rt.block_on(Client::start(b, options)).expect("client");
        let name = format!("{protocol}_{batch}_digits/{mode}");
        g.bench_function(name, |bench| {
            bench.iter(|| {
                rt.block_on(client.classify(&codes[..batch]))
                    .expect("classify")
            })
        });
    }
    g.finish();
}

/// The mixed protocol's offline and online phases, timed apart, sealed, in memory.
fn mixed(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cnn = concat!(env!("CARGO_MANIFEST_DIR"), "/models/fashion_cnn.json");
    let models = [
        ("digits", veil::nn::bundled_model().expect("bundled model")),
        (
            "fashion_cnn",
            veil::nn::format::Model::load(std::path::Path::new(cnn)).expect("the CNN"),
        ),
    ];
    let mut g = c.benchmark_group("mixed");
    g.sample_size(10);
    for (name, model) in models {
        let model = model.quantized;
        let mut config = ServerConfig::new(model.clone()).without_query_budget();
        config.trust_clients = true;
        let key = config.public_key().expect("encrypted by default");
        let served = Arc::new(Served::new(config).expect("served"));
        // The cost does not depend on the pixels: a mid-grey image.
        let codes = vec![model.quantize_input(&vec![100u8; model.architecture.input_count()])];
        let (a, b) = Channel::memory_pair(ChannelConfig::default());
        rt.spawn(async move {
            let mut a = a;
            let _ = accept(&mut a, &served).await;
        });
        let options = ClientOptions::new(Protocol::Mixed, key);
        let mut client = rt.block_on(Client::start(b, options)).expect("client");
        g.bench_function(format!("{name}/offline"), |bench| {
            bench.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let t = Instant::now();
                    rt.block_on(client.prepare(1)).expect("prepare");
                    took += t.elapsed();
                    rt.block_on(client.classify(&codes)).expect("classify");
                }
                took
            })
        });
        g.bench_function(format!("{name}/online"), |bench| {
            bench.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    rt.block_on(client.prepare(1)).expect("prepare");
                    let t = Instant::now();
                    rt.block_on(client.classify(&codes)).expect("classify");
                    took += t.elapsed();
                }
                took
            })
        });
    }
    g.finish();
}

criterion_group!(benches, protocols, mixed);
criterion_main!(benches);
