//! Shamir sharing and BGW arithmetic: 3-of-5 share and reconstruct of 1000 secrets over the
//! Mersenne-61 and Ristretto255 scalar fields, Feldman deal and verify, and batched shared
//! multiplications (100k per batch) between 3 and 5 parties over loopback TCP.

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil::shamir::mpc::{local_tcp_mesh, ChannelConfig, Party, SharedVec};
use veil::shamir::{deal_vec, feldman, reconstruct_vec, Field, Scalar, SharingParams, M61};

const SECRETS: usize = 1000;
const BATCH: usize = 100_000;

fn share_reconstruct<F: Field>(c: &mut Criterion, name: &str) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let params = SharingParams::threshold(3, 5).expect("params");
    let secrets: Vec<F> = (0..SECRETS).map(|_| F::random(&mut rng)).collect();
    let shares = deal_vec(&secrets, params, &mut rng).expect("deal");
    let mut g = c.benchmark_group(format!("shamir_{name}_3of5"));
    g.throughput(Throughput::Elements(SECRETS as u64));
    g.bench_function("share_1000", |b| {
        b.iter(|| deal_vec(&secrets, params, &mut rng).expect("deal"))
    });
    g.bench_function("reconstruct_1000", |b| {
        b.iter(|| reconstruct_vec(params.degree(), &shares[1..4]).expect("reconstruct"))
    });
    g.bench_function("reconstruct_checked_1000_from_5", |b| {
        b.iter(|| reconstruct_vec(params.degree(), &shares).expect("reconstruct"))
    });
    g.finish();
}

fn sharing(c: &mut Criterion) {
    share_reconstruct::<M61>(c, "m61");
    share_reconstruct::<Scalar>(c, "ristretto");
}

fn feldman_vss(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let params = SharingParams::threshold(3, 5).expect("params");
    let secrets: Vec<Scalar> = (0..32)
        .map(|_| <Scalar as Field>::random(&mut rng))
        .collect();
    let (commitments, shares) = feldman::deal(&secrets, params, &mut rng).expect("deal");
    let mut g = c.benchmark_group("feldman_3of5_32_scalars");
    g.throughput(Throughput::Elements(secrets.len() as u64));
    g.bench_function("deal", |b| {
        b.iter(|| feldman::deal(&secrets, params, &mut rng).expect("deal"))
    });
    g.bench_function("verify_one_share", |b| {
        b.iter(|| commitments.verify(&shares[0]).expect("verify"))
    });
    g.finish();
}

/// Sets up `n` parties over loopback TCP holding shares of two random vectors of `BATCH`
/// elements.
fn mesh(rt: &tokio::runtime::Runtime, n: usize, t: usize) -> Vec<(Party, SharedVec, SharedVec)> {
    rt.block_on(async {
        let parties = local_tcp_mesh(n, t, ChannelConfig::default(), None)
            .await
            .expect("mesh");
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let a: Vec<M61> = (0..BATCH).map(|_| M61::random(&mut rng)).collect();
        let b: Vec<M61> = (0..BATCH).map(|_| M61::random(&mut rng)).collect();
        let tasks: Vec<_> = parties
            .into_iter()
            .map(|mut p| {
                let (a, b) = (a.clone(), b.clone());
                tokio::spawn(async move {
                    let me = p.index();
                    let sa = p.input(0, (me == 0).then_some(&a[..])).await?;
                    let sb = p.input(1, (me == 1).then_some(&b[..])).await?;
                    Ok::<_, veil::shamir::MpcError>((p, sa, sb))
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("join").expect("input"));
        }
        out
    })
}

/// One batch of `BATCH` multiplications at every party concurrently.
async fn mul_once(
    parties: Vec<(Party, SharedVec, SharedVec)>,
) -> Vec<(Party, SharedVec, SharedVec)> {
    let tasks: Vec<_> = parties
        .into_iter()
        .map(|(mut p, a, b)| {
            tokio::spawn(async move {
                let c = p.mul(&a, &b).await?;
                assert_eq!(c.len(), BATCH);
                Ok::<_, veil::shamir::MpcError>((p, a, b))
            })
        })
        .collect();
    let mut back = Vec::new();
    for t in tasks {
        back.push(t.await.expect("join").expect("mul"));
    }
    back
}

fn multiplications(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("bgw_mul_tcp");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    for (n, t) in [(3usize, 1usize), (5, 2)] {
        let mut state = mesh(&rt, n, t);
        g.bench_function(format!("{n}_parties_100k"), |bench| {
            bench.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let parties = std::mem::take(&mut state);
                    state = rt.block_on(mul_once(parties));
                }
                start.elapsed()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, sharing, feldman_vss, multiplications);
criterion_main!(benches);
