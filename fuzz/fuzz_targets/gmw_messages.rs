//! GMW messages: either party of a small circuit's evaluation (OT setup, triple generation,
//! input shares, AND-layer openings, output shares) against a peer that sends the fuzzer's
//! frames, batched over 1 to 64 lanes, twice on one channel.
//!
//! Input: a mode byte (party, who learns the output), a lanes byte, then the peer's frames.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_circuit::{Builder, Circuit};
use veil_fuzz::{against, encode_frames, frames, record, rng, runtime, write_seed};
use veil_gmw::{GmwParty, PartyId, Reveal, Role, P0, P1};
use veil_net::Channel;

/// A 4-bit adder and comparator: party 0's input first, then party 1's.
fn circuit() -> Circuit {
    let mut b = Builder::new();
    let x = b.input(4);
    let y = b.input(4);
    let s = b.add(&x, &y);
    let lt = b.lt_unsigned(&x, &y);
    b.output(&s);
    b.output(&[lt]);
    b.finish()
}

const OWNERS: [PartyId; 2] = [PartyId::P0, PartyId::P1];

fn reveal(mode: u8) -> Reveal {
    match (mode >> 1) % 3 {
        0 => Reveal::P0,
        1 => Reveal::P1,
        _ => Reveal::Both,
    }
}

async fn party(ch: Channel, id: PartyId, c: &Circuit, reveal: Reveal, lanes: usize) {
    match id {
        PartyId::P0 => party_as::<P0>(ch, c, reveal, lanes).await,
        PartyId::P1 => party_as::<P1>(ch, c, reveal, lanes).await,
    }
}

async fn party_as<R: Role>(mut ch: Channel, c: &Circuit, reveal: Reveal, lanes: usize) {
    let mut p = GmwParty::<R>::new(&mut rng());
    if p.offline(&mut ch, 16).await.is_err() {
        return;
    }
    for v in [3u64, 0xA5] {
        let inputs = vec![vec![v; 4]];
        if p.run_batch(&mut ch, c, &OWNERS, &inputs, lanes, reveal)
            .await
            .is_err()
        {
            return;
        }
    }
}

fn id(mode: u8) -> (PartyId, PartyId) {
    if mode & 1 == 0 {
        (PartyId::P0, PartyId::P1)
    } else {
        (PartyId::P1, PartyId::P0)
    }
}

fn write_seeds() {
    let rt = runtime();
    let c = circuit();
    for mode in 0..6u8 {
        for lanes in [1u8, 64] {
            let r = reveal(mode);
            let (me, peer) = id(mode);
            let l = usize::from(lanes);
            let f = rt.block_on(record(
                |ch| party(ch, me, &c, r, l),
                |ch| party(ch, peer, &c, r, l),
            ));
            write_seed(
                &format!("mode-{mode}-lanes-{lanes}"),
                &[&[mode, lanes][..], &encode_frames(&f)].concat(),
            );
        }
    }
}

fuzz_target!(
    init: {
        if veil_fuzz::seed_dir().is_some() {
            write_seeds();
        }
    },
    |data: &[u8]| {
        let [mode, lanes, rest @ ..] = data else {
            return;
        };
        let c = circuit();
        let r = reveal(*mode);
        let (me, _) = id(*mode);
        // 0 and 65.. exercise the lane check.
        let lanes = usize::from(*lanes % 67);
        runtime().block_on(against(frames(rest), |ch| party(ch, me, &c, r, lanes)));
    }
);
