//! Every word-level gadget of veil-circuit, garbled, against plaintext integer arithmetic at
//! every width from 1 to 64; a subset also through the full two-party protocol over TCP.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use veil_circuit::testing::{check_gadgets, check_sample_circuits};
use veil_circuit::Circuit;
use veil_gc::{garble_and_evaluate, Evaluator, Garbler, Party, Reveal};
use veil_net::{tcp_pair, Channel, ChannelConfig};

#[test]
fn every_gadget_garbled_at_every_width() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let report = check_gadgets(
        |c, inputs| garble_and_evaluate(c, inputs, &mut rng),
        1..=64,
        4,
        7,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(report.evaluations > 10_000, "{report:?}");
}

/// A garbler and an evaluator connected once over loopback TCP, reused for every circuit: the
/// first input value comes from the garbler, the others from the evaluator.
struct Session {
    rt: tokio::runtime::Runtime,
    garbler: Option<(Garbler, Channel)>,
    evaluator: Evaluator,
    ch: Channel,
}

impl Session {
    fn new() -> Session {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (a, b) = rt.block_on(tcp_pair(ChannelConfig::default())).unwrap();
        Session {
            rt,
            garbler: Some((Garbler::new(&mut ChaCha20Rng::seed_from_u64(2)), a)),
            evaluator: Evaluator::new(&mut ChaCha20Rng::seed_from_u64(3)),
            ch: b,
        }
    }

    fn run(&mut self, c: &Circuit, inputs: &[Vec<bool>]) -> Vec<Vec<bool>> {
        let owners: Vec<Party> = (0..inputs.len())
            .map(|v| {
                if v == 0 {
                    Party::Garbler
                } else {
                    Party::Evaluator
                }
            })
            .collect();
        let (mut g, mut a) = self.garbler.take().unwrap();
        let (c2, o2) = (c.clone(), owners.clone());
        let mine = inputs[..1.min(inputs.len())].to_vec();
        let (ev, ch) = (&mut self.evaluator, &mut self.ch);
        let (out, back) = self.rt.block_on(async move {
            let task = tokio::spawn(async move {
                g.run(&mut a, &c2, &o2, &mine, Reveal::Evaluator)
                    .await
                    .unwrap();
                (g, a)
            });
            let out = ev
                .run(
                    ch,
                    c,
                    &owners,
                    &inputs[1.min(inputs.len())..],
                    Reveal::Evaluator,
                )
                .await
                .unwrap()
                .unwrap();
            (out, task.await.unwrap())
        });
        self.garbler = Some(back);
        out
    }
}

#[test]
fn gadgets_through_the_protocol_over_tcp() {
    let mut s = Session::new();
    check_gadgets(|c, inputs| s.run(c, inputs), [1, 2, 7, 16, 33, 64], 1, 11)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn sample_circuits_through_the_protocol_over_tcp() {
    let mut s = Session::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits");
    check_sample_circuits(|c, inputs| s.run(c, inputs), dir, 2, 13)
        .unwrap_or_else(|e| panic!("{e}"));
}
