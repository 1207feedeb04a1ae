//! Oblivious transfer: 128 Chou-Orlandi base OTs over loopback TCP, and IKNP correlated OT
//! over the in-memory channel on one thread. `veil bench ot` reports the same figures with
//! TCP throughput and bytes per OT.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil::net::{tcp_pair, Channel, ChannelConfig};
use veil::ot::base::{BaseOtReceiver, BaseOtSender};
use veil::ot::{secure_rng, ChouOrlandi, IknpReceiver, IknpSender};

fn base_ot(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    c.bench_function("base_ot_128_tcp", |b| {
        b.iter(|| {
            rt.block_on(async {
                let (mut x, mut y) = tcp_pair(ChannelConfig::default()).await.expect("pair");
                let s = tokio::spawn(async move {
                    ChouOrlandi::new(secure_rng())
                        .send_random(&mut x, 128)
                        .await
                });
                ChouOrlandi::new(secure_rng())
                    .receive_random(&mut y, &[true; 128])
                    .await
                    .expect("receive");
                s.await.expect("join").expect("send");
            })
        })
    });
}

/// Correlated OTs in memory, both roles on one thread, without and with the KOS check.
fn cot_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = 1usize << 20;
    let choices: Vec<bool> = (0..n).map(|j| j % 2 == 0).collect();
    let mut g = c.benchmark_group("iknp");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    for (name, checked) in [("cot_2_20_memory", false), ("kos_cot_2_20_memory", true)] {
        let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
        let (mut snd, mut rcv) = rt.block_on(async {
            let (mut ra, mut rb) = (secure_rng(), secure_rng());
            let s = IknpSender::setup(&mut a, &mut ra);
            let r = IknpReceiver::setup(&mut b, &mut rb);
            let (s, r) = tokio::join!(s, r);
            let (s, r) = (s.expect("sender"), r.expect("receiver"));
            if checked {
                (s.with_kos_check(&mut ra), r.with_kos_check(&mut rb))
            } else {
                (s, r)
            }
        });
        g.bench_function(name, |bench| {
            bench.iter(|| {
                rt.block_on(async {
                    let (q, t) = tokio::join!(
                        snd.send_correlated(&mut a, n),
                        rcv.receive_correlated(&mut b, &choices)
                    );
                    (q.expect("send").len(), t.expect("receive").len())
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, base_ot, cot_memory);
criterion_main!(benches);
