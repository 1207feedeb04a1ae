//! GMW against the plaintext evaluator over real channels and real OT: the gadgets, the sample
//! circuits, AES-128 against FIPS-197, batches of 64, round counts, and misbehaving peers.
//! (Every gadget at every width runs on the synchronous core with dealt triples, without a
//! runtime: `src/dealer.rs`.)

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_circuit::bits::{bits_from_hex, bits_to_hex};
use veil_circuit::testing::{check_gadgets, check_sample_circuits};
use veil_circuit::{parse_bristol, Circuit};
use veil_gmw::{GmwError, GmwParty, PartyId, PreparedCircuit, Reveal, P0, P1};
use veil_net::{tcp_pair, Channel, ChannelConfig};

fn circuit(name: &str) -> Circuit {
    let path = format!("{}/../../circuits/{name}.txt", env!("CARGO_MANIFEST_DIR"));
    parse_bristol(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn owners_first_to_p0(n: usize) -> Vec<PartyId> {
    (0..n)
        .map(|v| if v == 0 { PartyId::P0 } else { PartyId::P1 })
        .collect()
}

/// Two parties connected once and reused: P0 supplies the first input value.
struct Session {
    rt: tokio::runtime::Runtime,
    p0: Option<(GmwParty<P0>, Channel)>,
    p1: GmwParty<P1>,
    ch: Channel,
}

impl Session {
    fn new(tcp: bool) -> Session {
        // In memory both parties share one thread; over TCP each has its own.
        let rt = if tcp {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        };
        let (a, b) = if tcp {
            rt.block_on(tcp_pair(ChannelConfig::default())).unwrap()
        } else {
            Channel::memory_pair(ChannelConfig::default())
        };
        Session {
            rt,
            p0: Some((GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(1)), a)),
            p1: GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(2)),
            ch: b,
        }
    }

    fn run(&mut self, c: &Circuit, inputs: &[Vec<bool>]) -> Vec<Vec<bool>> {
        let owners = owners_first_to_p0(inputs.len());
        let (mut p0, mut a) = self.p0.take().unwrap();
        let (c2, o2) = (c.clone(), owners.clone());
        let k = 1.min(inputs.len());
        let mine = inputs[..k].to_vec();
        let (p1, ch) = (&mut self.p1, &mut self.ch);
        let (out0, out1, back) = self.rt.block_on(async move {
            let task = tokio::spawn(async move {
                let o = p0.run(&mut a, &c2, &o2, &mine, Reveal::Both).await.unwrap();
                (o, p0, a)
            });
            let o1 = p1
                .run(ch, c, &owners, &inputs[k..], Reveal::Both)
                .await
                .unwrap();
            let (o0, p0, a) = task.await.unwrap();
            (o0, o1, (p0, a))
        });
        self.p0 = Some(back);
        assert_eq!(out0, out1);
        out1.unwrap()
    }
}

#[test]
fn gadgets_and_sample_circuits_over_tcp() {
    let mut s = Session::new(true);
    check_gadgets(|c, inputs| s.run(c, inputs), [1, 3, 8, 31, 64], 1, 22)
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits");
    check_sample_circuits(|c, inputs| s.run(c, inputs), dir, 2, 23)
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn aes128_gives_the_fips197_ciphertext_over_tcp() {
    let mut s = Session::new(true);
    let c = circuit("aes_128");
    let key = bits_from_hex("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let pt = bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
    let out = s.run(&c, &[key, pt]);
    assert_eq!(bits_to_hex(&out[0]), "69c4e0d86a7b0430d8cdb78070b4c55a");
}

async fn both<F0, F1, T0, T1>(f0: F0, f1: F1) -> (T0, T1)
where
    F0: std::future::Future<Output = T0> + Send + 'static,
    T0: Send + 'static,
    F1: std::future::Future<Output = T1>,
{
    let t = tokio::spawn(f0);
    let r1 = f1.await;
    (t.await.unwrap(), r1)
}

#[tokio::test]
async fn online_rounds_are_the_and_depth_plus_input_and_output() {
    for name in ["aes_128", "adder64", "zero_equal", "mult64"] {
        let c = circuit(name);
        let depth = u64::from(c.stats().and_depth);
        let ands = c.stats().and_count;
        let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
        let mut p0 = GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(3));
        let mut p1 = GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(4));
        let owners = owners_first_to_p0(c.inputs.len());
        let inputs: Vec<Vec<bool>> = c.inputs.iter().map(|w| vec![true; w.len()]).collect();
        let want = c.eval(&inputs).unwrap();
        let (c2, o2, mine) = (c.clone(), owners.clone(), inputs[..1].to_vec());
        let (r0, r1) = both(
            async move {
                p0.offline(&mut a, ands).await.unwrap();
                let before = a.stats();
                let out = p0.run(&mut a, &c2, &o2, &mine, Reveal::Both).await.unwrap();
                (out, a.stats().since(&before), p0.triples_available())
            },
            async {
                p1.offline(&mut b, ands).await.unwrap();
                let before = b.stats();
                let out = p1
                    .run(&mut b, &c, &owners, &inputs[1..], Reveal::Both)
                    .await
                    .unwrap();
                (out, b.stats().since(&before))
            },
        )
        .await;
        assert_eq!(r0.0.as_ref(), Some(&want));
        assert_eq!(r1.0.as_ref(), Some(&want));
        assert_eq!(r0.1.rounds, depth + 2, "{name}: party 0 rounds");
        assert_eq!(r1.1.rounds, depth + 2, "{name}: party 1 rounds");
        assert_eq!(
            r0.2, 0,
            "{name}: the precomputed triples were exactly enough"
        );
    }
}

#[tokio::test]
async fn batch_of_64_aes_evaluations() {
    let c = circuit("aes_128");
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let keys: Vec<Vec<bool>> = (0..64)
        .map(|_| (0..128).map(|_| rng.random()).collect())
        .collect();
    let pts: Vec<Vec<bool>> = (0..64)
        .map(|_| (0..128).map(|_| rng.random()).collect())
        .collect();
    let slice = |vals: &[Vec<bool>]| -> Vec<u64> {
        (0..128)
            .map(|i| (0..64).fold(0u64, |w, k| w | (u64::from(vals[k][i]) << k)))
            .collect()
    };
    let (kw, pw) = (slice(&keys), slice(&pts));
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let mut p0 = GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(6));
    let mut p1 = GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(7));
    let owners = [PartyId::P0, PartyId::P1];
    let c2 = c.clone();
    let (out0, out1) = both(
        async move {
            let before = a.stats();
            let o = p0
                .run_batch(&mut a, &c2, &owners, &[kw], 64, Reveal::P0)
                .await
                .unwrap();
            (o, a.stats().since(&before))
        },
        async {
            p1.run_batch(&mut b, &c, &owners, &[pw], 64, Reveal::P0)
                .await
                .unwrap()
        },
    )
    .await;
    assert!(out1.is_none());
    let words = out0.0.unwrap();
    for k in 0..64 {
        let got: Vec<bool> = words[0].iter().map(|w| (w >> k) & 1 == 1).collect();
        assert_eq!(
            got,
            c.eval(&[keys[k].clone(), pts[k].clone()]).unwrap()[0],
            "instance {k}"
        );
    }
}

#[tokio::test]
async fn one_prepared_circuit_serves_batches_of_every_size() {
    let c = circuit("adder64");
    let owners = [PartyId::P0, PartyId::P1];
    let mut rng = ChaCha20Rng::seed_from_u64(30);
    let batches: Vec<Vec<(u64, u64)>> = [1usize, 64, 7]
        .iter()
        .map(|&n| (0..n).map(|_| (rng.random(), rng.random())).collect())
        .collect();
    // Bit-slices one party's values: bit i of every lane's value in word i.
    fn words(vals: &[u64]) -> Vec<Vec<u64>> {
        vec![(0..64)
            .map(|i| {
                vals.iter()
                    .enumerate()
                    .fold(0u64, |w, (k, v)| w | (((v >> i) & 1) << k))
            })
            .collect()]
    }
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let mut p0 = GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(31));
    let mut p1 = GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(32));
    let prepared0 = PreparedCircuit::new(&c, &owners, Reveal::P1).unwrap();
    let prepared1 = PreparedCircuit::new(&c, &owners, Reveal::P1).unwrap();
    assert_eq!(prepared1.and_gates(), c.stats().and_count);
    let b0 = batches.clone();
    let ((), outs) = both(
        async move {
            for batch in b0 {
                let x: Vec<u64> = batch.iter().map(|p| p.0).collect();
                let r = p0
                    .run_batch_prepared(&mut a, &prepared0, &words(&x), x.len())
                    .await
                    .unwrap();
                assert!(r.is_none());
            }
        },
        async {
            let mut outs = Vec::new();
            for batch in &batches {
                let y: Vec<u64> = batch.iter().map(|p| p.1).collect();
                let r = p1
                    .run_batch_prepared(&mut b, &prepared1, &words(&y), y.len())
                    .await
                    .unwrap()
                    .unwrap();
                outs.push(r);
            }
            outs
        },
    )
    .await;
    for (batch, out) in batches.iter().zip(&outs) {
        for (k, (x, y)) in batch.iter().enumerate() {
            let bits = |v: u64| -> Vec<bool> { (0..64).map(|i| (v >> i) & 1 == 1).collect() };
            let got: Vec<bool> = out[0].iter().map(|w| (w >> k) & 1 == 1).collect();
            let want = c.eval(&[bits(*x), bits(*y)]).unwrap();
            assert_eq!(got, want[0], "lane {k} of a batch of {}", batch.len());
        }
    }
    assert!(matches!(
        PreparedCircuit::new(&c, &owners[..1], Reveal::P1),
        Err(GmwError::Input(_))
    ));
}

#[tokio::test]
async fn mismatched_circuits_and_bad_messages_are_errors() {
    let (mut a, mut b) = Channel::memory_pair(ChannelConfig::default());
    let mut p0 = GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(8));
    let mut p1 = GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(9));
    let owners = [PartyId::P0, PartyId::P1];
    let (r0, r1) = both(
        async move {
            let c = circuit("adder64");
            let r = p0
                .run(&mut a, &c, &owners, &[vec![true; 64]], Reveal::Both)
                .await;
            (r, a)
        },
        async {
            let c = circuit("sub64");
            p1.run(&mut b, &c, &owners, &[vec![true; 64]], Reveal::Both)
                .await
        },
    )
    .await;
    assert!(matches!(r1, Err(GmwError::Protocol(_))), "{:?}", r1.err());
    drop(b);
    let (r0, _a) = r0;
    assert!(r0.is_err());

    // A peer that answers the input round with garbage of the wrong length.
    let (mut a, mut evil) = Channel::memory_pair(ChannelConfig::default());
    let mut p0 = GmwParty::<P0>::new(&mut ChaCha20Rng::seed_from_u64(10));
    let c = circuit("adder64");
    let owners = [PartyId::P0, PartyId::P1];
    let h = tokio::spawn(async move {
        // Play along through the OT setup and triples, then send a short share message.
        let mut honest = GmwParty::<P1>::new(&mut ChaCha20Rng::seed_from_u64(11));
        honest
            .offline(&mut evil, veil_gmw::party::MIN_REFILL)
            .await
            .unwrap();
        let first = evil.recv_bytes().await.unwrap();
        let mut bad = first[..32].to_vec();
        bad.extend_from_slice(&[0u8; 3]);
        evil.send_bytes(&bad).await.unwrap();
        evil.flush().await.unwrap();
        evil
    });
    let e = p0
        .run(&mut a, &c, &owners, &[vec![false; 64]], Reveal::Both)
        .await
        .unwrap_err();
    assert!(matches!(e, GmwError::Protocol(_)), "{e}");
    let evil = h.await.unwrap();
    drop(evil);
    let e = p0
        .run(&mut a, &c, &owners, &[vec![false; 64]], Reveal::Both)
        .await
        .unwrap_err();
    assert!(
        matches!(e, GmwError::Net(ref n) if n.is_peer_closed()),
        "{e}"
    );
}
