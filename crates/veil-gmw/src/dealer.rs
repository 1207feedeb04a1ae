//! Test tools: an ideal triple dealer and a driver that runs both parties' synchronous cores
//! in one thread, so that the online phase is checked without a runtime, a network or OT.
//!
//! The dealer draws each triple `(a, b, c = a ∧ b)` and its XOR shares itself: what the offline
//! phase ([`crate::triples`]) produces, without its security. Test builds only.

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::bits::BitVec;
use crate::online::{Online, Step};
use crate::party::{GmwError, PartyId, PreparedCircuit};
use crate::role::{P0, P1};
use crate::triples::TripleStore;

/// `n` triples, XOR-shared: party 0's store and party 1's.
pub fn deal(n: usize, rng: &mut impl RngCore) -> (TripleStore, TripleStore) {
    let mut s0 = [BitVec::default(), BitVec::default(), BitVec::default()];
    let mut s1 = [BitVec::default(), BitVec::default(), BitVec::default()];
    let mut left = n;
    while left > 0 {
        let k = left.min(64);
        let (a0, b0, c0, a1, b1): (u64, u64, u64, u64, u64) = (
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
            rng.random(),
        );
        let c1 = ((a0 ^ a1) & (b0 ^ b1)) ^ c0;
        for (v, x) in s0.iter_mut().zip([a0, b0, c0]) {
            v.push_bits(x, k);
        }
        for (v, x) in s1.iter_mut().zip([a1, b1, c1]) {
            v.push_bits(x, k);
        }
        left -= k;
    }
    let mut t0 = TripleStore::default();
    t0.append(&s0[0], &s0[1], &s0[2]);
    let mut t1 = TripleStore::default();
    t1.append(&s1[0], &s1[1], &s1[2]);
    (t0, t1)
}

/// Both parties' outputs and the exchanges they took.
pub type Outcome = (Option<Vec<Vec<u64>>>, Option<Vec<Vec<u64>>>, usize);

/// Runs both parties' cores on `prepared` in lockstep, each with its inputs and its triples,
/// passing each message to the other, and returns both parties' outputs and the number of
/// exchanges.
pub fn run_pair(
    prepared: &PreparedCircuit,
    inputs: [&[Vec<u64>]; 2],
    lanes: usize,
    triples: [&mut TripleStore; 2],
    seed: u64,
) -> Result<Outcome, GmwError> {
    let [t0, t1] = triples;
    let mut r0 = ChaCha20Rng::seed_from_u64(seed);
    let mut r1 = ChaCha20Rng::seed_from_u64(seed ^ 1);
    let (mut c0, mut s0) = Online::<P0>::start(prepared, inputs[0], lanes, t0, &mut r0)?;
    let (mut c1, mut s1) = Online::<P1>::start(prepared, inputs[1], lanes, t1, &mut r1)?;
    let mut exchanges = 0;
    loop {
        (s0, s1) = match (s0, s1) {
            (Step::Done(o0), Step::Done(o1)) => return Ok((o0, o1, exchanges)),
            (Step::Exchange(m0), Step::Exchange(m1)) => {
                exchanges += 1;
                (c0.receive(&m1, t0)?, c1.receive(&m0, t1)?)
            }
            (Step::SendLast(m0), Step::ReceiveLast) => {
                exchanges += 1;
                (Step::Done(None), c1.receive(&m0, t1)?)
            }
            (Step::ReceiveLast, Step::SendLast(m1)) => {
                exchanges += 1;
                (c0.receive(&m1, t0)?, Step::Done(None))
            }
            (a, b) => {
                return Err(GmwError::Protocol(format!(
                    "the parties disagree on the next step: {a:?} and {b:?}"
                )))
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::party::Reveal;
    use veil_circuit::testing::{check_gadgets, check_sample_circuits};
    use veil_circuit::{parse_bristol, Circuit};

    /// Evaluates `c` with the first input value party 0's and the rest party 1's, both
    /// learning the output, on triples from the dealer; both parties must agree.
    fn run(c: &Circuit, inputs: &[Vec<bool>], seed: u64) -> Vec<Vec<bool>> {
        let owners: Vec<PartyId> = (0..inputs.len())
            .map(|v| if v == 0 { PartyId::P0 } else { PartyId::P1 })
            .collect();
        let prepared = PreparedCircuit::new(c, &owners, Reveal::Both).unwrap();
        let words: Vec<Vec<u64>> = inputs
            .iter()
            .map(|v| v.iter().map(|&b| u64::from(b)).collect())
            .collect();
        let k = 1.min(words.len());
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (mut t0, mut t1) = deal(prepared.and_gates(), &mut rng);
        let (o0, o1, _) = run_pair(
            &prepared,
            [&words[..k], &words[k..]],
            1,
            [&mut t0, &mut t1],
            seed,
        )
        .unwrap();
        assert_eq!(o0, o1);
        o0.unwrap()
            .iter()
            .map(|v| v.iter().map(|w| w & 1 == 1).collect())
            .collect()
    }

    #[test]
    fn dealt_triples_multiply() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (mut t0, mut t1) = deal(200, &mut rng);
        for _ in 0..3 {
            let (a0, b0, c0) = t0.take(64).unwrap();
            let (a1, b1, c1) = t1.take(64).unwrap();
            assert_eq!(c0 ^ c1, (a0 ^ a1) & (b0 ^ b1));
        }
        let (a0, b0, c0) = t0.take(8).unwrap();
        let (a1, b1, c1) = t1.take(8).unwrap();
        assert_eq!(c0 ^ c1, (a0 ^ a1) & (b0 ^ b1));
        assert!(t0.take(1).is_none());
    }

    #[test]
    fn every_gadget_at_every_width_on_the_synchronous_core() {
        let mut seed = 0;
        check_gadgets(
            |c, inputs| {
                seed += 1;
                run(c, inputs, seed)
            },
            1..=64,
            1,
            21,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn sample_circuits_on_the_synchronous_core() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits");
        let mut seed = 100;
        check_sample_circuits(
            |c, inputs| {
                seed += 1;
                run(c, inputs, seed)
            },
            dir,
            2,
            23,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn exchanges_are_the_and_depth_plus_inputs_and_outputs_and_lanes_are_independent() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits/aes_128.txt");
        let c = parse_bristol(&std::fs::read_to_string(path).unwrap()).unwrap();
        let prepared = PreparedCircuit::new(&c, &[PartyId::P0, PartyId::P1], Reveal::P1).unwrap();
        let depth = c
            .layers()
            .iter()
            .filter(|l| !l.and_gates.is_empty())
            .count();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let key: Vec<u64> = (0..128).map(|_| rng.random()).collect();
        let pt: Vec<u64> = (0..128).map(|_| rng.random()).collect();
        let (mut t0, mut t1) = deal(prepared.and_gates() * 64, &mut rng);
        let (o0, o1, exchanges) = run_pair(
            &prepared,
            [std::slice::from_ref(&key), std::slice::from_ref(&pt)],
            64,
            [&mut t0, &mut t1],
            5,
        )
        .unwrap();
        assert_eq!(exchanges, depth + 2);
        assert!(o0.is_none());
        let out = o1.unwrap();
        // Every lane is its own AES evaluation: check three lanes in the clear.
        for lane in [0, 17, 63] {
            let bit = |v: &[u64], i: usize| (v[i] >> lane) & 1 == 1;
            let k: Vec<bool> = (0..128).map(|i| bit(&key, i)).collect();
            let p: Vec<bool> = (0..128).map(|i| bit(&pt, i)).collect();
            let want = c.eval(&[k, p]).unwrap();
            let got: Vec<bool> = (0..128).map(|i| bit(&out[0], i)).collect();
            assert_eq!(got, want[0], "lane {lane}");
        }
    }

    #[test]
    fn a_peer_with_another_circuit_or_short_messages_is_an_error() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits/adder64.txt");
        let c = parse_bristol(&std::fs::read_to_string(path).unwrap()).unwrap();
        let p = PreparedCircuit::new(&c, &[PartyId::P0, PartyId::P1], Reveal::Both).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (t0, mut t1) = deal(p.and_gates(), &mut rng);
        let x = vec![vec![0u64; 64]];
        let (mut core, _) = Online::<P0>::start(&p, &x, 1, &t0, &mut rng).unwrap();
        // A header that is not the fingerprint of this circuit and split.
        let e = core.receive(&[0u8; 40], &mut t1).unwrap_err();
        assert!(matches!(e, GmwError::Protocol(_)), "{e}");
        // And nothing more is accepted.
        assert!(core.receive(&[0u8; 40], &mut t1).is_err());
        // Too few triples for the lanes asked is refused before anything is sent.
        let e = Online::<P0>::start(&p, &x, 2, &t0, &mut rng).unwrap_err();
        assert!(matches!(e, GmwError::Input(_)), "{e}");
    }
}
