//! Yao over real loopback TCP, the garbler and the evaluator in separate tasks, checked
//! against the plaintext evaluator and against FIPS-197.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_circuit::bits::{bits_from_hex, bits_to_hex};
use veil_circuit::{parse_bristol, Circuit};
use veil_gc::garble::{EvalState, GarbleState, Plan};
use veil_gc::protocol::POOL_BATCH;
use veil_gc::{Evaluator, Garbler, GcError, Party, PreparedCircuit, Reveal};
use veil_net::{tcp_pair, Channel, ChannelConfig};
use veil_ot::Block;

fn circuit(name: &str) -> Circuit {
    let path = format!("{}/../../circuits/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    parse_bristol(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Runs `c` with the given owners over TCP; returns (garbler's, evaluator's) outputs.
async fn yao(
    c: &Circuit,
    owners: &[Party],
    inputs: &[Vec<bool>],
    reveal: Reveal,
) -> (Option<Vec<Vec<bool>>>, Option<Vec<Vec<bool>>>) {
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let split = |p: Party| -> Vec<Vec<bool>> {
        owners
            .iter()
            .zip(inputs)
            .filter(|(o, _)| **o == p)
            .map(|(_, v)| v.clone())
            .collect()
    };
    let (gi, ei) = (split(Party::Garbler), split(Party::Evaluator));
    let (c2, o2) = (c.clone(), owners.to_vec());
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(1));
        g.run(&mut a, &c2, &o2, &gi, reveal).await.unwrap()
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(2));
    let eo = e.run(&mut b, c, owners, &ei, reveal).await.unwrap();
    (g.await.unwrap(), eo)
}

#[tokio::test]
async fn aes128_gives_the_fips197_ciphertext() {
    let c = circuit("aes_128");
    let key = bits_from_hex("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let pt = bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
    let (g, e) = yao(
        &c,
        &[Party::Garbler, Party::Evaluator],
        &[key, pt],
        Reveal::Both,
    )
    .await;
    let want = "69c4e0d86a7b0430d8cdb78070b4c55a";
    assert_eq!(bits_to_hex(&e.unwrap()[0]), want);
    assert_eq!(bits_to_hex(&g.unwrap()[0]), want);
}

#[tokio::test]
async fn sample_circuits_match_the_plaintext_evaluator() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for name in [
        "adder64",
        "sub64",
        "neg64",
        "mult64",
        "zero_equal",
        "aes_256",
        "sha256",
    ] {
        let c = circuit(name);
        for round in 0..2 {
            let inputs: Vec<Vec<bool>> = c
                .inputs
                .iter()
                .map(|w| {
                    w.iter()
                        .map(|_| round == 1 && rng.random::<bool>())
                        .collect()
                })
                .collect();
            let want = c.eval(&inputs).unwrap();
            // The first input to the evaluator, the rest to the garbler.
            let owners: Vec<Party> = (0..c.inputs.len())
                .map(|v| {
                    if v == 0 {
                        Party::Evaluator
                    } else {
                        Party::Garbler
                    }
                })
                .collect();
            let (_, e) = yao(&c, &owners, &inputs, Reveal::Evaluator).await;
            assert_eq!(e.unwrap(), want, "{name} round {round}");
        }
    }
}

#[tokio::test]
async fn outputs_go_only_where_asked() {
    let c = circuit("adder64");
    let inputs = vec![vec![true; 64], vec![true; 64]];
    let owners = [Party::Garbler, Party::Evaluator];
    let (g, e) = yao(&c, &owners, &inputs, Reveal::Garbler).await;
    assert_eq!(g.unwrap(), c.eval(&inputs).unwrap());
    assert!(e.is_none());
    let (g, e) = yao(&c, &owners, &inputs, Reveal::Evaluator).await;
    assert!(g.is_none());
    assert_eq!(e.unwrap(), c.eval(&inputs).unwrap());
}

#[test]
fn exactly_32_bytes_per_and_and_none_per_xor_or_inv() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for name in ["aes_128", "neg64", "adder64"] {
        let c = circuit(name);
        let stats = c.stats();
        let zero: Vec<Vec<Block>> = c
            .inputs
            .iter()
            .map(|w| w.iter().map(|_| Block::random(&mut rng)).collect())
            .collect();
        let plan = Plan::new(&c);
        let mut g = GarbleState::new(&plan, Block(rng.random::<u128>() | 1), &zero, 0);
        let mut tables = Vec::new();
        g.garble(usize::MAX, &mut tables);
        assert_eq!(tables.len() * 16, 32 * stats.and_count, "{name}");
        assert!(stats.xor_count + stats.inv_count > 0);
    }
}

#[tokio::test]
async fn several_evaluations_share_one_ot_setup_and_wire_bytes_add_up() {
    let c = circuit("aes_128");
    let and_count = c.stats().and_count as u64;
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let owners = [Party::Garbler, Party::Evaluator];
    let c2 = c.clone();
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(5));
        for k in 0..3u8 {
            let key = vec![k % 2 == 0; 128];
            g.run(&mut a, &c2, &owners, &[key], Reveal::Evaluator)
                .await
                .unwrap();
        }
        a.stats()
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(6));
    let mut per_run = Vec::new();
    for k in 0..3u8 {
        let before = b.stats();
        let pt = vec![k == 1; 128];
        let key = vec![k % 2 == 0; 128];
        let out = e
            .run(
                &mut b,
                &c,
                &owners,
                std::slice::from_ref(&pt),
                Reveal::Evaluator,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, c.eval(&[key, pt]).unwrap());
        per_run.push(b.stats().since(&before));
    }
    g.await.unwrap();
    // The first run holds the base OTs and fills the pool: at least 31 bits per OT of the
    // refill go out (SoftSpokenOT with random choice bits).
    assert!(per_run[0].bytes_sent >= 31 * POOL_BATCH as u64 / 8);
    // After it, each evaluation draws from the pool: it sends the query (fingerprint and a
    // zero refill count and the mode, 41 bytes) and 128 derandomization bits (16 bytes); it receives the
    // header (40 bytes), 128 garbler labels, 128 label offsets, the tables (32 bytes per AND in
    // one frame) and 16 bytes of decoding bits; each frame with a 4-byte header.
    for d in &per_run[1..] {
        assert_eq!(
            d.bytes_received,
            (4 + 40) + (4 + 16 * 128) + (4 + 16 * 128) + (4 + 32 * and_count) + (4 + 16)
        );
        assert_eq!(d.bytes_sent, (4 + 41) + (4 + 16));
    }
}

/// A circuit of `n` AND gates over two inputs of `n` bits (Bristol Fashion, made here).
fn wide_and(n: usize) -> Circuit {
    let mut text = format!("{n} {}\n2 {n} {n}\n1 {n}\n\n", 3 * n);
    for j in 0..n {
        text.push_str(&format!("2 1 {j} {} {} AND\n", n + j, 2 * n + j));
    }
    parse_bristol(&text).unwrap()
}

/// With many evaluator bits per evaluation the pool runs dry every few evaluations: each
/// refill is the rule's size, the evaluations in between run no extension, and every output
/// is right across the refills.
#[tokio::test]
async fn the_pool_refills_when_it_runs_dry_and_outputs_stay_right() {
    let m = 3000;
    let c = wide_and(m);
    let owners = [Party::Garbler, Party::Evaluator];
    let mut rng = ChaCha20Rng::seed_from_u64(50);
    let runs = 9;
    let xs: Vec<Vec<bool>> = (0..runs)
        .map(|_| (0..m).map(|_| rng.random()).collect())
        .collect();
    let ys: Vec<Vec<bool>> = (0..runs)
        .map(|_| (0..m).map(|_| rng.random()).collect())
        .collect();
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let (c2, xs2) = (c.clone(), xs.clone());
    let g = tokio::spawn(async move {
        let prepared = PreparedCircuit::new(&c2, &owners, Reveal::Evaluator).unwrap();
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(51));
        for x in xs2 {
            g.run_prepared(&mut a, &prepared, &[x]).await.unwrap();
        }
    });
    let prepared = PreparedCircuit::new(&c, &owners, Reveal::Evaluator).unwrap();
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(52));
    let mut sent = Vec::new();
    for (x, y) in xs.iter().zip(&ys) {
        let before = b.stats();
        let out = e
            .run_prepared(&mut b, &prepared, std::slice::from_ref(y))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, c.eval(&[x.clone(), y.clone()]).unwrap());
        sent.push(b.stats().since(&before).bytes_sent);
    }
    g.await.unwrap();
    // A refill extends 4m = 12 000 OTs (31 bits each), enough for four evaluations: the
    // first, fifth and ninth refill, the others send only the query and m bits.
    let plain = (4 + 41) + (4 + m.div_ceil(8) as u64);
    for (k, s) in sent.iter().enumerate() {
        if k % 4 == 0 {
            assert!(*s > 31 * 4 * m as u64 / 8, "evaluation {k}: {s} bytes");
        } else {
            assert_eq!(*s, plain, "evaluation {k}");
        }
    }
}

#[tokio::test]
async fn one_prepared_circuit_serves_every_evaluation_of_a_session() {
    let c = circuit("aes_128");
    let owners = [Party::Garbler, Party::Evaluator];
    let mut rng = ChaCha20Rng::seed_from_u64(40);
    let keys: Vec<Vec<bool>> = (0..4)
        .map(|_| (0..128).map(|_| rng.random()).collect())
        .collect();
    let pts: Vec<Vec<bool>> = (0..4)
        .map(|_| (0..128).map(|_| rng.random()).collect())
        .collect();
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let garbler_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    let evaluator_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    assert_eq!(garbler_side.fingerprint(), evaluator_side.fingerprint());
    let g_keys = keys.clone();
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(41));
        let mut outs = Vec::new();
        for key in g_keys {
            let out = g.run_prepared(&mut a, &garbler_side, &[key]).await.unwrap();
            outs.push(out.unwrap());
        }
        outs
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(42));
    for (key, pt) in keys.iter().zip(&pts) {
        let out = e
            .run_prepared(&mut b, &evaluator_side, std::slice::from_ref(pt))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, c.eval(&[key.clone(), pt.clone()]).unwrap());
    }
    for (out, (key, pt)) in g.await.unwrap().iter().zip(keys.iter().zip(&pts)) {
        assert_eq!(*out, c.eval(&[key.clone(), pt.clone()]).unwrap());
    }
    // A preparation with another output choice is another fingerprint.
    let other = PreparedCircuit::new(&c, &owners, Reveal::Evaluator).unwrap();
    assert_ne!(
        other.fingerprint(),
        PreparedCircuit::new(&c, &owners, Reveal::Both)
            .unwrap()
            .fingerprint()
    );
    assert!(matches!(
        PreparedCircuit::new(&c, &owners[..1], Reveal::Both),
        Err(GcError::Input(_))
    ));
}

#[tokio::test]
async fn mismatched_circuits_are_refused() {
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let g = tokio::spawn(async move {
        let c = circuit("adder64");
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(7));
        g.run(
            &mut a,
            &c,
            &[Party::Garbler, Party::Evaluator],
            &[vec![false; 64]],
            Reveal::Evaluator,
        )
        .await
    });
    let c = circuit("sub64");
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(8));
    let err = e
        .run(
            &mut b,
            &c,
            &[Party::Garbler, Party::Evaluator],
            &[vec![false; 64]],
            Reveal::Evaluator,
        )
        .await
        .unwrap_err();
    // The garbler sees the other fingerprint in the query and ends the session; the evaluator
    // finds the channel closed.
    assert!(matches!(err, GcError::Net(_) | GcError::Ot(_)), "{err}");
    drop(b);
    let g_err = g.await.unwrap().unwrap_err();
    assert!(
        matches!(g_err, GcError::Protocol(ref m) if m.contains("different circuit")),
        "{g_err}"
    );
}

#[tokio::test]
async fn truncated_tables_and_early_close_are_errors() {
    let c = circuit("aes_128");
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let c2 = c.clone();
    // A garbler that sends everything up to the tables honestly, then half a table and leaves.
    let g = tokio::spawn(async move {
        let owners = [Party::Garbler, Party::Evaluator];
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let ot = veil_ot::OtSender::setup(&mut a, &mut rng).await.unwrap();
        let mut ot = ot.with_kos_check(&mut rng);
        // The query, the pool's first refill and the derandomization bits, as the protocol has
        // them.
        assert_eq!(a.recv_bytes().await.unwrap().len(), 41);
        ot.send_random_choices_into(&mut a, POOL_BATCH, &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(a.recv_bytes().await.unwrap().len(), 16);
        let mut header = veil_gc::protocol::fingerprint(&c2, &owners, Reveal::Evaluator).to_vec();
        header.extend_from_slice(&0u64.to_le_bytes());
        a.send_bytes(&header).await.unwrap();
        a.send_bytes(&[0u8; 16 * 128]).await.unwrap();
        a.send_bytes(&[0u8; 16 * 128]).await.unwrap();
        a.send_bytes(&[0u8; 24]).await.unwrap();
        a.flush().await.unwrap();
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(10));
    let err = e
        .run(
            &mut b,
            &c,
            &[Party::Garbler, Party::Evaluator],
            &[vec![true; 128]],
            Reveal::Evaluator,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, GcError::Protocol(_)), "{err}");
    g.await.unwrap();
    let err = e
        .run(
            &mut b,
            &c,
            &[Party::Garbler, Party::Evaluator],
            &[vec![true; 128]],
            Reveal::Evaluator,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, GcError::Net(ref n) if n.is_peer_closed()),
        "{err}"
    );
}

#[test]
fn evaluation_resumes_across_table_chunks() {
    let c = circuit("sha256");
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let inputs: Vec<Vec<bool>> = c
        .inputs
        .iter()
        .map(|w| w.iter().map(|_| rng.random()).collect())
        .collect();
    let delta = Block(rng.random::<u128>() | 1);
    let zero: Vec<Vec<Block>> = inputs
        .iter()
        .map(|v| v.iter().map(|_| Block::random(&mut rng)).collect())
        .collect();
    let active: Vec<Vec<Block>> = zero
        .iter()
        .zip(&inputs)
        .map(|(z, v)| {
            z.iter()
                .zip(v)
                .map(|(l, b)| *l ^ delta.and_bit(*b))
                .collect()
        })
        .collect();
    let plan = Plan::new(&c);
    let mut g = GarbleState::new(&plan, delta, &zero, 0);
    let mut e = EvalState::new(&plan, &active, 0);
    let mut chunks = 0;
    while !g.is_done() {
        let mut t = Vec::new();
        g.garble(1000, &mut t);
        assert!(t.len() <= 2000);
        assert_eq!(e.eval(&t), t.len());
        chunks += 1;
    }
    assert!(e.is_done() && chunks > 20);
    let out = veil_gc::garble::decode(&e.output_labels(), &g.decoding_bits());
    assert_eq!(out, c.eval(&inputs).unwrap());
}

/// Found by the `gc_messages` fuzz target: a header whose first AND index is `u64::MAX` made
/// the evaluator's AND-gate counter overflow (a panic) once the tables arrived; it is now a
/// protocol error, raised when the header arrives.
#[tokio::test]
async fn first_and_index_that_would_overflow_is_refused() {
    let c = circuit("adder64");
    let owners = [Party::Garbler, Party::Evaluator];
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let c2 = c.clone();
    let g = tokio::spawn(async move {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let ot = veil_ot::OtSender::setup(&mut a, &mut rng).await.unwrap();
        let mut ot = ot.with_kos_check(&mut rng);
        assert_eq!(a.recv_bytes().await.unwrap().len(), 41);
        ot.send_random_choices_into(&mut a, POOL_BATCH, &mut Vec::new())
            .await
            .unwrap();
        assert_eq!(a.recv_bytes().await.unwrap().len(), 8);
        let mut header = veil_gc::protocol::fingerprint(&c2, &owners, Reveal::Evaluator).to_vec();
        header.extend_from_slice(&u64::MAX.to_le_bytes());
        a.send_bytes(&header).await.unwrap();
        // What an honest garbler would send next: labels, offsets, tables and decoding bits.
        let _ = a.send_bytes(&[0u8; 16 * 64]).await;
        let _ = a.send_bytes(&[0u8; 16 * 64]).await;
        let ands = c2.gates.iter().filter(|g| g.is_and()).count();
        let _ = a.send_bytes(&vec![0u8; 32 * ands]).await;
        let _ = a.send_bytes(&[0u8; 8]).await;
        let _ = a.flush().await;
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(12));
    let err = e
        .run(&mut b, &c, &owners, &[vec![true; 64]], Reveal::Evaluator)
        .await
        .unwrap_err();
    assert!(
        matches!(err, GcError::Protocol(ref m) if m.contains("first AND index")),
        "{err}"
    );
    drop(b);
    g.await.unwrap();
}

#[tokio::test]
async fn yao_runs_unchanged_over_a_wrapped_transport() {
    use veil_net::transport::{Counting, MemoryTransport, TrafficCounter};
    let c = circuit("aes_128");
    let owners = [Party::Garbler, Party::Evaluator];
    let counter = TrafficCounter::new();
    let (ta, tb) = MemoryTransport::pair();
    let mut a = Channel::over(Counting::new(ta, counter.clone()), ChannelConfig::default());
    let mut b = Channel::over(tb, ChannelConfig::default());
    let key = bits_from_hex("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let pt = bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
    let c2 = c.clone();
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(9));
        g.run(&mut a, &c2, &owners, &[key], Reveal::Evaluator)
            .await
            .unwrap();
        a.stats()
    });
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(10));
    let out = e
        .run(&mut b, &c, &owners, &[pt], Reveal::Evaluator)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bits_to_hex(&out[0]), "69c4e0d86a7b0430d8cdb78070b4c55a");
    let garbler = g.await.unwrap();
    assert_eq!(counter.snapshot(), garbler);
    assert_eq!(counter.snapshot().bytes_sent, b.stats().bytes_received);
}

/// Evaluations garbled ahead give the plaintext evaluator's outputs on the garbler's inputs of
/// the time they were garbled and the evaluator's of the time they are spent, interleaved with
/// evaluations garbled on the spot; spending one costs the evaluator its query and one bit per
/// input bit, and the garbler 16 bytes per input bit and the decoding bits.
#[tokio::test]
async fn evaluations_garbled_ahead_match_the_plaintext_evaluator() {
    let c = circuit("aes_128");
    let owners = [Party::Garbler, Party::Evaluator];
    let mut rng = ChaCha20Rng::seed_from_u64(60);
    let mut bits = |n: usize| -> Vec<bool> { (0..n).map(|_| rng.random()).collect() };
    // (garbled ahead?, key, plaintext) for each evaluation, in order.
    let plan: Vec<(bool, Vec<bool>, Vec<bool>)> = [true, true, false, true, true, true]
        .iter()
        .map(|&ahead| (ahead, bits(128), bits(128)))
        .collect();
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let g_plan = plan.clone();
    let g_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(61));
        let mut outs = Vec::new();
        // Two ahead at first; then each evaluation garbled ahead is garbled just before the
        // one before it is spent, so that the queue holds one or two.
        g.garble_ahead(&mut a, &g_side, std::slice::from_ref(&g_plan[0].1))
            .await
            .unwrap();
        g.garble_ahead(&mut a, &g_side, std::slice::from_ref(&g_plan[1].1))
            .await
            .unwrap();
        assert_eq!(g.ahead(), 2);
        for (i, (ahead, key, _)) in g_plan.iter().enumerate() {
            if i >= 2 && *ahead {
                g.garble_ahead(&mut a, &g_side, std::slice::from_ref(key))
                    .await
                    .unwrap();
            }
            if !ahead {
                assert_eq!(g.ahead(), 0);
            }
            // The inputs of an evaluation garbled ahead are those it was garbled with; these
            // are only checked for their shape.
            let out = g
                .run_prepared(&mut a, &g_side, &[vec![false; 128]])
                .await
                .unwrap();
            outs.push(out.unwrap());
        }
        outs
    });
    let e_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(62));
    e.receive_ahead(&mut b, &e_side).await.unwrap();
    e.receive_ahead(&mut b, &e_side).await.unwrap();
    let mut online = Vec::new();
    for (i, (ahead, _, pt)) in plan.iter().enumerate() {
        if i >= 2 && *ahead {
            e.receive_ahead(&mut b, &e_side).await.unwrap();
        }
        let before = b.stats();
        let out = e
            .run_prepared(&mut b, &e_side, std::slice::from_ref(pt))
            .await
            .unwrap()
            .unwrap();
        online.push((*ahead, b.stats().since(&before)));
        let key = if *ahead {
            plan[i].1.clone()
        } else {
            vec![false; 128]
        };
        assert_eq!(out, c.eval(&[key, pt.clone()]).unwrap(), "evaluation {i}");
    }
    let g_outs = g.await.unwrap();
    for (i, (ahead, key, pt)) in plan.iter().enumerate() {
        let key = if *ahead {
            key.clone()
        } else {
            vec![false; 128]
        };
        assert_eq!(
            g_outs[i],
            c.eval(&[key, pt.clone()]).unwrap(),
            "evaluation {i}"
        );
    }
    assert_eq!(e.ahead(), 0);
    for (ahead, s) in online {
        if ahead {
            // Query, derandomization bits, then the output's permute bits back.
            assert_eq!(s.bytes_sent, (4 + 41) + (4 + 16) + (4 + 16));
            // 16 bytes per input bit, then the decoding bits.
            assert_eq!(s.bytes_received, (4 + 16 * 128) + (4 + 16));
        } else {
            assert!(s.bytes_received > 32 * 6000, "{s:?}");
        }
    }
}

/// The queue of evaluations garbled ahead is bounded on both sides, and a query that spends
/// one where the garbler has none, or a mode the garbler does not expect, ends the session.
#[tokio::test]
async fn evaluations_ahead_are_bounded_and_checked() {
    use veil_gc::protocol::MAX_AHEAD;
    let c = wide_and(8);
    let owners = [Party::Garbler, Party::Evaluator];
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let g_c = c.clone();
    let g = tokio::spawn(async move {
        let p = PreparedCircuit::new(&g_c, &owners, Reveal::Evaluator).unwrap();
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(70));
        for _ in 0..MAX_AHEAD {
            g.garble_ahead(&mut a, &p, &[vec![true; 8]]).await.unwrap();
        }
        let full = g.garble_ahead(&mut a, &p, &[vec![true; 8]]).await;
        assert!(matches!(full, Err(GcError::Input(_))), "{full:?}");
        for _ in 0..MAX_AHEAD {
            g.run_prepared(&mut a, &p, &[vec![true; 8]]).await.unwrap();
        }
        // The evaluator now asks to garble ahead where an evaluation is expected.
        g.run_prepared(&mut a, &p, &[vec![true; 8]]).await
    });
    let p = PreparedCircuit::new(&c, &owners, Reveal::Evaluator).unwrap();
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(71));
    for _ in 0..MAX_AHEAD {
        e.receive_ahead(&mut b, &p).await.unwrap();
    }
    let full = e.receive_ahead(&mut b, &p).await;
    assert!(matches!(full, Err(GcError::Input(_))), "{full:?}");
    let y: Vec<bool> = (0..8).map(|i| i % 3 == 0).collect();
    for _ in 0..MAX_AHEAD {
        let out = e
            .run_prepared(&mut b, &p, std::slice::from_ref(&y))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out, c.eval(&[vec![true; 8], y.clone()]).unwrap());
    }
    let _ = e.receive_ahead(&mut b, &p).await;
    drop(b);
    let err = g.await.unwrap().unwrap_err();
    assert!(
        matches!(err, GcError::Protocol(ref m) if m.contains("garble ahead where")),
        "{err}"
    );

    // A query that spends an evaluation garbled ahead where there is none.
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let g_c = c.clone();
    let g = tokio::spawn(async move {
        let p = PreparedCircuit::new(&g_c, &owners, Reveal::Evaluator).unwrap();
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(72));
        g.run_prepared(&mut a, &p, &[vec![true; 8]]).await
    });
    let mut rng = ChaCha20Rng::seed_from_u64(73);
    let _ot = veil_ot::OtReceiver::setup(&mut b, &mut rng).await.unwrap();
    let mut query = p.fingerprint().to_vec();
    query.extend_from_slice(&0u64.to_le_bytes());
    query.push(2);
    b.send_bytes(&query).await.unwrap();
    b.flush().await.unwrap();
    let err = g.await.unwrap().unwrap_err();
    assert!(
        matches!(err, GcError::Protocol(ref m) if m.contains("there is none")),
        "{err}"
    );
}

/// Evaluations garbled with the garbler's inputs deferred: the evaluator binds its plaintext
/// offline, the garbler its key online; each gives the plaintext evaluator's output, with an
/// evaluation on the spot between them, and the online phase costs the garbler 16 bytes per
/// input bit and the decoding bits in one flight, and the evaluator its output's permute bits.
#[tokio::test]
async fn evaluations_with_deferred_garbler_inputs_match_the_plaintext_evaluator() {
    let c = circuit("aes_128");
    let owners = [Party::Garbler, Party::Evaluator];
    let mut rng = ChaCha20Rng::seed_from_u64(80);
    let mut bits = |n: usize| -> Vec<bool> { (0..n).map(|_| rng.random()).collect() };
    let keys: Vec<Vec<bool>> = (0..4).map(|_| bits(128)).collect();
    let pts: Vec<Vec<bool>> = (0..4).map(|_| bits(128)).collect();
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let g_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    let g_keys = keys.clone();
    let g = tokio::spawn(async move {
        let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(81));
        for _ in 0..3 {
            g.garble_deferred(&mut a, &g_side).await.unwrap();
        }
        assert_eq!(g.deferred(), 3);
        let mut outs = Vec::new();
        for (i, key) in g_keys.iter().enumerate() {
            let out = if i == 2 {
                // On the spot between deferred ones.
                g.run_prepared(&mut a, &g_side, std::slice::from_ref(key))
                    .await
            } else {
                g.run_deferred(&mut a, &g_side, std::slice::from_ref(key))
                    .await
            };
            outs.push(out.unwrap().unwrap());
        }
        assert_eq!(g.deferred(), 0);
        outs
    });
    let e_side = PreparedCircuit::new(&c, &owners, Reveal::Both).unwrap();
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(82));
    for i in [0, 1, 3] {
        e.receive_deferred(&mut b, &e_side, std::slice::from_ref(&pts[i]))
            .await
            .unwrap();
    }
    for (i, pt) in pts.iter().enumerate() {
        let before = b.stats();
        let out = if i == 2 {
            e.run_prepared(&mut b, &e_side, std::slice::from_ref(pt))
                .await
        } else {
            e.run_deferred(&mut b, &e_side).await
        };
        let out = out.unwrap().unwrap();
        assert_eq!(out, c.eval(&[keys[i].clone(), pt.clone()]).unwrap(), "{i}");
        if i != 2 {
            let s = b.stats().since(&before);
            assert_eq!(s.bytes_received, (4 + 16 * 128) + (4 + 16), "{i}");
            assert_eq!(s.bytes_sent, 4 + 16, "{i}");
        }
    }
    let g_outs = g.await.unwrap();
    for (i, out) in g_outs.iter().enumerate() {
        assert_eq!(*out, c.eval(&[keys[i].clone(), pts[i].clone()]).unwrap());
    }
}

/// Spending a deferred evaluation of another circuit, or one that is not held, is refused on
/// both sides before anything is sent.
#[tokio::test]
async fn deferred_evaluations_are_checked() {
    let c = wide_and(8);
    let other = wide_and(9);
    let owners = [Party::Garbler, Party::Evaluator];
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let p = PreparedCircuit::new(&c, &owners, Reveal::Garbler).unwrap();
    let q = PreparedCircuit::new(&other, &owners, Reveal::Garbler).unwrap();
    let mut g = Garbler::new(&mut ChaCha20Rng::seed_from_u64(90));
    let mut e = Evaluator::new(&mut ChaCha20Rng::seed_from_u64(91));
    let none = g.run_deferred(&mut a, &p, &[vec![true; 8]]).await;
    assert!(matches!(none, Err(GcError::Input(_))), "{none:?}");
    let none = e.run_deferred(&mut b, &p).await;
    assert!(matches!(none, Err(GcError::Input(_))), "{none:?}");
    let y: Vec<bool> = (0..8).map(|i| i % 2 == 0).collect();
    let pp = PreparedCircuit::new(&c, &owners, Reveal::Garbler).unwrap();
    let yy = y.clone();
    let ev = tokio::spawn(async move {
        e.receive_deferred(&mut b, &pp, &[yy]).await.unwrap();
        (e, b)
    });
    g.garble_deferred(&mut a, &p).await.unwrap();
    let (mut e, mut b) = ev.await.unwrap();
    let wrong = g.run_deferred(&mut a, &q, &[vec![true; 9]]).await;
    assert!(matches!(wrong, Err(GcError::Input(_))), "{wrong:?}");
    let wrong = e.run_deferred(&mut b, &q).await;
    assert!(matches!(wrong, Err(GcError::Input(_))), "{wrong:?}");
    let x: Vec<bool> = (0..8).map(|i| i % 3 == 0).collect();
    let again = PreparedCircuit::new(&c, &owners, Reveal::Garbler).unwrap();
    let ev = tokio::spawn(async move { e.run_deferred(&mut b, &again).await });
    let out = g
        .run_deferred(&mut a, &p, std::slice::from_ref(&x))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out, c.eval(&[x, y]).unwrap());
    assert!(ev.await.unwrap().unwrap().is_none());
}
