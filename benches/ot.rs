//! Oblivious transfer: 128 Chou-Orlandi base OTs over loopback TCP, and correlated OT on IKNP
//! and on SoftSpokenOT (`k = 4`) over the in-memory channel on one thread, with given and with
//! random choice bits. `veil bench ot` reports the same figures with TCP and `wan` throughput
//! and bytes per OT.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil::net::{tcp_pair, Channel, ChannelConfig};
use veil::ot::base::{BaseOtReceiver, BaseOtSender};
use veil::ot::{secure_rng, ChouOrlandi, Extension, OtReceiver, OtSender};

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

/// Correlated OTs in memory, both roles on one thread, on each extension: given choice bits
/// without and with the KOS check, and random choice bits.
fn cot_memory(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let n = 1usize << 20;
    let choices: Vec<bool> = (0..n).map(|j| j % 2 == 0).collect();
    for (group, ext) in [
        ("iknp", Extension::Iknp),
        ("softspoken_k4", Extension::SoftSpoken { k: 4 }),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(n as u64));
        g.sample_size(10);
        for (name, checked, random) in [
            ("cot_2_20_memory", false, false),
            ("kos_cot_2_20_memory", true, false),
            ("random_cot_2_20_memory", false, true),
        ] {
            let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
            let (mut snd, mut rcv) = rt.block_on(async {
                let (mut ra, mut rb) = (secure_rng(), secure_rng());
                let s = OtSender::setup_extension(&mut a, &mut ra, ext);
                let r = OtReceiver::setup_extension(&mut b, &mut rb, ext);
                let (s, r) = tokio::join!(s, r);
                let (s, r) = (s.expect("sender"), r.expect("receiver"));
                if checked {
                    (s.with_kos_check(&mut ra), r.with_kos_check(&mut rb))
                } else {
                    (s, r)
                }
            });
            let (mut q, mut t, mut drawn, mut rng) =
                (Vec::new(), Vec::new(), Vec::new(), secure_rng());
            g.bench_function(name, |bench| {
                bench.iter(|| {
                    rt.block_on(async {
                        let (x, y) = if random {
                            tokio::join!(
                                snd.send_correlated_random_into(&mut a, n, &mut q),
                                rcv.receive_correlated_random_into(
                                    &mut b, n, &mut rng, &mut drawn, &mut t
                                )
                            )
                        } else {
                            tokio::join!(
                                snd.send_correlated_into(&mut a, n, &mut q),
                                rcv.receive_correlated_into(&mut b, &choices, &mut t)
                            )
                        };
                        x.expect("send");
                        y.expect("receive");
                        (q.len(), t.len())
                    })
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, base_ot, cot_memory);
criterion_main!(benches);
