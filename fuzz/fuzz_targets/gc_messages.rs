//! Yao (garbled-circuit) messages: the garbler and the evaluator of a small circuit, each run
//! against a peer that sends the fuzzer's frames (OT setup, the query, the pool's OT extension,
//! derandomization bits, header, input labels, label offsets, garbled tables, decoding or output
//! bits), twice on one channel as a session does; with bit 3 of the mode byte set, each
//! evaluation is garbled ahead first and then spent (the labels of the evaluator's inputs, the
//! decoding bits).
//!
//! Input: a mode byte (role, who learns the output, garbled ahead or not), then the peer's
//! frames.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_circuit::{Builder, Circuit};
use veil_fuzz::{against, encode_frames, frames, record, rng, runtime, write_seed};
use veil_gc::{Evaluator, Garbler, Party, PreparedCircuit, Reveal};
use veil_net::Channel;

/// An 8-bit adder and comparator: the garbler's input first, then the evaluator's.
fn circuit() -> Circuit {
    let mut b = Builder::new();
    let x = b.input(8);
    let y = b.input(8);
    let s = b.add(&x, &y);
    let lt = b.lt_unsigned(&x, &y);
    b.output(&s);
    b.output(&[lt]);
    b.finish()
}

const OWNERS: [Party; 2] = [Party::Garbler, Party::Evaluator];

fn reveal(mode: u8) -> Reveal {
    match (mode >> 1) % 3 {
        0 => Reveal::Evaluator,
        1 => Reveal::Garbler,
        _ => Reveal::Both,
    }
}

fn input(v: u8) -> Vec<Vec<bool>> {
    vec![(0..8).map(|i| (v >> i) & 1 == 1).collect()]
}

async fn garbler(mut ch: Channel, c: &Circuit, reveal: Reveal, ahead: bool) {
    let Ok(prepared) = PreparedCircuit::new(c, &OWNERS, reveal) else {
        return;
    };
    let mut g = Garbler::new(&mut rng());
    for v in [3u8, 200] {
        if ahead && g.garble_ahead(&mut ch, &prepared, &input(v)).await.is_err() {
            return;
        }
        if g.run_prepared(&mut ch, &prepared, &input(v)).await.is_err() {
            return;
        }
    }
}

async fn evaluator(mut ch: Channel, c: &Circuit, reveal: Reveal, ahead: bool) {
    let Ok(prepared) = PreparedCircuit::new(c, &OWNERS, reveal) else {
        return;
    };
    let mut e = Evaluator::new(&mut rng());
    for v in [5u8, 100] {
        if ahead && e.receive_ahead(&mut ch, &prepared).await.is_err() {
            return;
        }
        if e.run_prepared(&mut ch, &prepared, &input(v)).await.is_err() {
            return;
        }
    }
}

fn write_seeds() {
    let rt = runtime();
    let c = circuit();
    for mode in (0..6u8).chain(8..14) {
        let (r, a) = (reveal(mode), mode & 8 != 0);
        let f = if mode & 1 == 0 {
            rt.block_on(record(
                |ch| evaluator(ch, &c, r, a),
                |ch| garbler(ch, &c, r, a),
            ))
        } else {
            rt.block_on(record(
                |ch| garbler(ch, &c, r, a),
                |ch| evaluator(ch, &c, r, a),
            ))
        };
        write_seed(
            &format!("mode-{mode}"),
            &[&[mode][..], &encode_frames(&f)].concat(),
        );
    }
}

fuzz_target!(
    init: {
        if veil_fuzz::seed_dir().is_some() {
            write_seeds();
        }
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        let c = circuit();
        let (r, a) = (reveal(mode), mode & 8 != 0);
        let rt = runtime();
        if mode & 1 == 0 {
            rt.block_on(against(frames(rest), |ch| evaluator(ch, &c, r, a)));
        } else {
            rt.block_on(against(frames(rest), |ch| garbler(ch, &c, r, a)));
        }
    }
);
