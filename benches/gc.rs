//! Half-gates garbling and evaluation of the AES-128 Bristol circuit in memory on one core,
//! in AND gates per second. `veil bench gc` adds AES-128 end to end over loopback TCP.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use veil::circuit::parse_bristol;
use veil::gc::garble::{EvalState, GarbleState, Plan};
use veil::ot::Block;

fn garbling(c: &mut Criterion) {
    let circuit = parse_bristol(include_str!("../circuits/aes_128.txt")).expect("aes_128");
    let ands = circuit.stats().and_count as u64;
    let plan = Plan::new(&circuit);
    let mut rng = veil::ot::secure_rng();
    let zero: Vec<Vec<Block>> = circuit
        .inputs
        .iter()
        .map(|w| w.iter().map(|_| Block::random(&mut rng)).collect())
        .collect();
    let delta = Block(rand::Rng::random::<u128>(&mut rng) | 1);
    let mut tables = Vec::with_capacity(2 * ands as usize);
    let mut g = c.benchmark_group("half_gates_aes128");
    g.throughput(Throughput::Elements(ands));
    g.bench_function("garble", |b| {
        b.iter(|| {
            tables.clear();
            let mut st = GarbleState::new(&plan, delta, &zero, 0);
            st.garble(usize::MAX, &mut tables);
        })
    });
    g.bench_function("evaluate", |b| {
        b.iter(|| {
            let mut st = EvalState::new(&plan, &zero, 0);
            st.eval(&tables)
        })
    });
    g.finish();
}

criterion_group!(benches, garbling);
criterion_main!(benches);
