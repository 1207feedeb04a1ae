//! BGW over loopback TCP and in memory: every result equals its plaintext twin; failures are
//! errors within the timeout.

use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use tokio::net::TcpListener;
use veil_net::{Channel, ChannelConfig};
use veil_shamir::mpc::{
    decode_int, encode_ints, establish_with_listener, linear_layer, linear_layer_plain,
    local_tcp_mesh, LinearInput, LinearLayerSpec, Party, PartyConfig,
};
use veil_shamir::{Field, MpcError, M61};

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(Duration::from_secs(5))
}

fn seeds(n: usize, base: u8) -> Option<Vec<[u8; 32]>> {
    Some((0..n).map(|i| [base.wrapping_add(i as u8); 32]).collect())
}

/// Runs `f` at every party concurrently, each in its own task.
async fn run_all<T, F, Fut>(parties: Vec<Party>, f: F) -> Vec<Result<T, MpcError>>
where
    T: Send + 'static,
    F: Fn(Party) -> Fut,
    Fut: std::future::Future<Output = Result<T, MpcError>> + Send + 'static,
{
    let handles: Vec<_> = parties.into_iter().map(|p| tokio::spawn(f(p))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

struct Case {
    a: Vec<i64>,
    b: Vec<i64>,
    rows: Vec<Vec<i64>>,
}

fn random_case(seed: u64, len: usize) -> Case {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    let mut v = |n: usize| -> Vec<i64> {
        (0..n)
            .map(|_| r.random_range(-1_000_000..=1_000_000))
            .collect()
    };
    let a = v(len);
    let b = v(len);
    let rows = (0..4).map(|_| v(len)).collect();
    Case { a, b, rows }
}

async fn arithmetic(n: usize, t: usize) {
    let case = std::sync::Arc::new(random_case(n as u64, 300));
    let parties = local_tcp_mesh(n, t, config(), seeds(n, 1)).await.unwrap();
    let results = run_all(parties, |mut p| {
        let case = case.clone();
        async move {
            let me = p.index();
            let a_in = encode_ints(&case.a)?;
            let b_in = encode_ints(&case.b)?;
            let a = p.input(0, (me == 0).then_some(&a_in[..])).await?;
            let b = p.input(1, (me == 1).then_some(&b_in[..])).await?;
            // Products, batched.
            let prod = p.mul(&a, &b).await?;
            // Products of products (degree stays t after reduction).
            let sq = p.mul(&prod, &a).await?;
            // Linear operations.
            let lin = p.add(&p.scale(&a, M61::from_i64(-3)), &b)?;
            let lin = p.add_public(&lin, &vec![M61::new(7); lin.len()])?;
            // Inner products against a shared matrix held by party n-1.
            let flat: Vec<i64> = case.rows.iter().flatten().copied().collect();
            let flat_in = encode_ints(&flat)?;
            let w = p
                .input(n - 1, (me == n - 1).then_some(&flat_in[..]))
                .await?;
            let rows: Vec<_> = (0..case.rows.len())
                .map(|r| w.slice(r * a.len()..(r + 1) * a.len()))
                .collect::<Result<_, _>>()?;
            let xs = vec![a.clone(); rows.len()];
            let ip = p.inner_products(&rows, &xs).await?;
            let mv = p.matvec(&w, case.rows.len(), &b).await?;
            let open = |v: Vec<M61>| v.into_iter().map(decode_int).collect::<Vec<i64>>();
            let prod = open(p.open(&prod).await?);
            let sq = open(p.open(&sq).await?);
            let lin = open(p.open(&lin).await?);
            let ip = p.open_to(&ip, 0).await?.map(open);
            let mv = open(p.open(&mv).await?);
            let ops = p.op_log().to_vec();
            p.finish().await?;
            Ok((prod, sq, lin, ip, mv, ops))
        }
    })
    .await;
    let c = &*case;
    let want_prod: Vec<i64> = c.a.iter().zip(&c.b).map(|(x, y)| x * y).collect();
    let want_sq: Vec<i64> = want_prod.iter().zip(&c.a).map(|(x, y)| x * y).collect();
    let want_lin: Vec<i64> = c.a.iter().zip(&c.b).map(|(x, y)| -3 * x + y + 7).collect();
    let dot = |u: &[i64], v: &[i64]| u.iter().zip(v).map(|(x, y)| x * y).sum::<i64>();
    let want_ip: Vec<i64> = c.rows.iter().map(|r| dot(r, &c.a)).collect();
    let want_mv: Vec<i64> = c.rows.iter().map(|r| dot(r, &c.b)).collect();
    for (i, r) in results.into_iter().enumerate() {
        let (prod, sq, lin, ip, mv, ops) = r.unwrap();
        assert_eq!(prod, want_prod, "party {i}");
        assert_eq!(sq, want_sq);
        assert_eq!(lin, want_lin);
        assert_eq!(mv, want_mv);
        if i == 0 {
            assert_eq!(ip.unwrap(), want_ip);
        } else {
            assert!(ip.is_none());
        }
        // One round per communicating op; inner products cost one element per row.
        let ip_op = ops.iter().find(|o| o.op == "inner_products").unwrap();
        assert_eq!(ip_op.elements, 4);
        assert!(ops.iter().all(|o| o.rounds == 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_matches_plaintext_3_parties() {
    arithmetic(3, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arithmetic_matches_plaintext_5_parties() {
    arithmetic(5, 2).await;
}

async fn linear(n: usize, t: usize, spec: LinearLayerSpec, seed: u64) {
    let mut r = ChaCha20Rng::seed_from_u64(seed);
    let (rows, cols) = (10usize, 64usize);
    // 8-bit quantized weights and activations, bias at the product scale.
    let w: Vec<i64> = (0..rows * cols)
        .map(|_| r.random_range(-128..=127))
        .collect();
    let x: Vec<i64> = (0..cols).map(|_| r.random_range(-128..=127)).collect();
    let b: Vec<i64> = (0..rows)
        .map(|_| r.random_range(-40_000..=40_000))
        .collect();
    let want = linear_layer_plain(&w, &x, &b).unwrap();
    let parties = local_tcp_mesh(n, t, config(), None).await.unwrap();
    let inputs: Vec<LinearInput> = (0..n)
        .map(|i| match (i == spec.client, i == spec.owner) {
            (true, true) => LinearInput::ClientAndOwner {
                x: x.clone(),
                weights: w.clone(),
                bias: b.clone(),
            },
            (true, false) => LinearInput::Client { x: x.clone() },
            (false, true) => LinearInput::Owner {
                weights: w.clone(),
                bias: b.clone(),
            },
            _ => LinearInput::Helper,
        })
        .collect();
    let inputs = std::sync::Arc::new(inputs);
    let results = run_all(parties, |mut p| {
        let inputs = inputs.clone();
        async move {
            let me = p.index();
            let y = linear_layer(&mut p, spec, &inputs[me]).await?;
            p.finish().await?;
            Ok(y)
        }
    })
    .await;
    for (i, res) in results.into_iter().enumerate() {
        let y = res.unwrap();
        if i == spec.client {
            assert_eq!(y.unwrap(), want);
        } else {
            assert!(y.is_none());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linear_layer_matches_plaintext() {
    linear(
        3,
        1,
        LinearLayerSpec {
            client: 0,
            owner: 1,
        },
        1,
    )
    .await;
    linear(
        5,
        2,
        LinearLayerSpec {
            client: 3,
            owner: 1,
        },
        2,
    )
    .await;
    linear(
        3,
        1,
        LinearLayerSpec {
            client: 2,
            owner: 2,
        },
        3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_party_over_fixed_ports() {
    // The multi-process demo's entry point, three parties in one process on bound ports.
    let mut listeners = Vec::new();
    for _ in 0..3 {
        listeners.push(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
    }
    let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    drop(listeners);
    let spec = LinearLayerSpec {
        client: 0,
        owner: 1,
    };
    let (w, x, b) = (vec![2, -3, 5, 7, 11, -13], vec![1, 2, 3], vec![100, -100]);
    let want = linear_layer_plain(&w, &x, &b).unwrap();
    let session = [9u8; 16];
    let inputs = [
        LinearInput::Client { x },
        LinearInput::Owner {
            weights: w,
            bias: b,
        },
        LinearInput::Helper,
    ];
    let handles: Vec<_> = inputs
        .into_iter()
        .enumerate()
        .map(|(i, input)| {
            let cfg = PartyConfig::new(i, addrs.clone(), 1)
                .with_session_id(session)
                .with_channel(config());
            tokio::spawn(veil_shamir::mpc::run_party(cfg, spec, input))
        })
        .collect();
    let mut outs = Vec::new();
    for h in handles {
        outs.push(h.await.unwrap().unwrap());
    }
    assert_eq!(outs[0].output.as_ref().unwrap(), &want);
    assert!(outs[1].output.is_none() && outs[2].output.is_none());
    assert!(outs[0].stats.bytes_received > 0);
    assert!(!outs[0].ops.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_that_drops_gives_an_error_not_a_hang() {
    let cfg = ChannelConfig::default().with_timeouts(Duration::from_millis(800));
    let parties = local_tcp_mesh(3, 1, cfg, None).await.unwrap();
    let start = Instant::now();
    let results = run_all(parties, |mut p| async move {
        let v = vec![M61::new(3); 1000];
        let me = p.index();
        let a = p.input(0, (me == 0).then_some(&v[..])).await?;
        if me == 2 {
            // Leaves mid-protocol: closes its channels without multiplying.
            drop(p);
            return Ok(());
        }
        p.mul(&a, &a).await?;
        Ok(())
    })
    .await;
    assert!(start.elapsed() < Duration::from_secs(4));
    assert!(results[2].is_ok());
    for r in &results[..2] {
        assert!(matches!(r, Err(MpcError::Net { .. })), "{r:?}");
    }

    // A party that stays connected but goes silent: the others time out.
    let parties = local_tcp_mesh(3, 1, cfg, None).await.unwrap();
    let start = Instant::now();
    let results = run_all(parties, |mut p| async move {
        let v = [M61::new(3); 10];
        let me = p.index();
        let a = p.input(0, (me == 0).then_some(&v[..])).await?;
        if me == 1 {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            return Ok(());
        }
        p.mul(&a, &a).await?;
        Ok(())
    })
    .await;
    assert!(start.elapsed() < Duration::from_secs(5));
    for r in [&results[0], &results[2]] {
        match r {
            Err(MpcError::Net { source, .. }) => {
                assert!(source.is_timeout() || source.is_peer_closed(), "{source}")
            }
            other => panic!("expected a channel error, got {other:?}"),
        }
    }
}

/// Parties 0 and 1 real, party 2's channels driven by hand to send hostile frames.
fn mesh_with_puppet() -> (Party, Party, Channel, Channel) {
    let cfg = ChannelConfig::default().with_timeouts(Duration::from_secs(2));
    let (a01, a10) = Channel::memory_pair(cfg);
    let (a02, a20) = Channel::memory_pair(cfg);
    let (a12, a21) = Channel::memory_pair(cfg);
    let addrs: Vec<std::net::SocketAddr> = (0..3).map(|_| ([127, 0, 0, 1], 0).into()).collect();
    let p0 = Party::from_channels(
        PartyConfig::new(0, addrs.clone(), 1).with_channel(cfg),
        vec![None, Some(a01), Some(a02)],
    )
    .unwrap();
    let p1 = Party::from_channels(
        PartyConfig::new(1, addrs, 1).with_channel(cfg),
        vec![Some(a10), None, Some(a12)],
    )
    .unwrap();
    (p0, p1, a20, a21)
}

fn frame(tag: u8, seq: u32, total: u32, elems: &[u64]) -> Vec<u8> {
    let mut f = vec![tag];
    f.extend_from_slice(&seq.to_le_bytes());
    f.extend_from_slice(&total.to_le_bytes());
    for e in elems {
        f.extend_from_slice(&e.to_le_bytes());
    }
    f
}

#[tokio::test]
async fn hostile_frames_give_typed_errors() {
    let p61 = (1u64 << 61) - 1;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("short", vec![1, 0]),
        ("wrong tag", frame(9, 0, 1, &[1])),
        ("wrong seq", frame(1, 5, 1, &[1])),
        ("element out of range", frame(1, 0, 1, &[p61])),
        ("ragged payload", {
            let mut f = frame(1, 0, 1, &[1]);
            f.pop();
            f
        }),
        ("more than announced", frame(1, 0, 1, &[1, 2])),
        ("huge announced length", frame(1, 0, u32::MAX, &[1])),
        ("empty frame mid-vector", frame(1, 0, 3, &[])),
    ];
    for (name, bytes) in cases {
        let (mut p0, _p1, mut c20, _c21) = mesh_with_puppet();
        // Party 2 is the input owner; party 0 expects its input.
        c20.send_bytes(&bytes).await.unwrap();
        let err = p0.input(2, None).await.unwrap_err();
        assert!(
            matches!(err, MpcError::Malformed { peer: 2, .. }),
            "{name}: {err}"
        );
    }
    // Wrong length where the protocol fixes it: a reshare of 2 elements for a batch of 3.
    let (mut p0, mut p1, mut c20, mut c21) = mesh_with_puppet();
    let v = [M61::new(1), M61::new(2), M61::new(3)];
    let in0 = async {
        let a = p0.input(0, Some(&v)).await?;
        p0.mul(&a, &a).await
    };
    let in1 = async {
        let a = p1.input(0, None).await?;
        p1.mul(&a, &a).await
    };
    let puppet = async {
        let _ = c20.recv_bytes().await.unwrap();
        c20.send_bytes(&frame(2, 1, 2, &[1, 2])).await.unwrap();
        c21.send_bytes(&frame(2, 1, 2, &[1, 2])).await.unwrap();
        // Keep the channels open until the parties are done.
        tokio::time::sleep(Duration::from_millis(200)).await;
        (c20, c21)
    };
    let (r0, r1, _) = tokio::join!(in0, in1, puppet);
    assert!(
        matches!(r0, Err(MpcError::Malformed { peer: 2, .. })),
        "{r0:?}"
    );
    assert!(
        matches!(r1, Err(MpcError::Malformed { peer: 2, .. })),
        "{r1:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_checks_session_and_parameters() {
    let cfg = ChannelConfig::default().with_timeouts(Duration::from_secs(1));
    let l0 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let l2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = vec![
        l0.local_addr().unwrap(),
        l1.local_addr().unwrap(),
        l2.local_addr().unwrap(),
    ];
    let c = |i: usize, s: u8| {
        PartyConfig::new(i, addrs.clone(), 1)
            .with_session_id([s; 16])
            .with_channel(cfg)
    };
    let (r0, r1, r2) = tokio::join!(
        establish_with_listener(c(0, 1), l0),
        establish_with_listener(c(1, 1), l1),
        establish_with_listener(c(2, 2), l2),
    );
    assert!(r0.is_err());
    drop(r1);
    assert!(
        matches!(
            r2,
            Err(MpcError::Handshake { .. }) | Err(MpcError::SetupTimeout(_))
        ),
        "{r2:?}"
    );
    assert!(matches!(
        PartyConfig::new(0, addrs.clone(), 2).validate(),
        Err(MpcError::InvalidArgument(_))
    ));
    assert!(matches!(
        PartyConfig::new(3, addrs, 1).validate(),
        Err(MpcError::InvalidArgument(_))
    ));
}

#[tokio::test]
async fn in_memory_mesh_and_large_batches() {
    // A batch larger than one frame (small frame limit) still round-trips exactly.
    let cfg = ChannelConfig::default()
        .with_max_frame(4096)
        .with_timeouts(Duration::from_secs(5));
    let parties = Party::memory_mesh(3, 1, cfg, seeds(3, 7)).unwrap();
    let mut r = ChaCha20Rng::seed_from_u64(99);
    let a: Vec<M61> = (0..5000).map(|_| M61::random(&mut r)).collect();
    let b: Vec<M61> = (0..5000).map(|_| M61::new(r.next_u64())).collect();
    let want: Vec<M61> = a.iter().zip(&b).map(|(x, y)| *x * *y).collect();
    let (a, b) = (std::sync::Arc::new(a), std::sync::Arc::new(b));
    let results = run_all(parties, |mut p| {
        let (a, b) = (a.clone(), b.clone());
        async move {
            let me = p.index();
            let sa = p.input(0, (me == 0).then_some(&a[..])).await?;
            let sb = p.input(2, (me == 2).then_some(&b[..])).await?;
            let c = p.mul(&sa, &sb).await?;
            let out = p.open(&c).await?;
            p.finish().await?;
            Ok(out)
        }
    })
    .await;
    for r in results {
        assert_eq!(r.unwrap(), want);
    }
}

#[tokio::test]
async fn wrong_weight_shape_is_reported_at_every_party() {
    let cfg = ChannelConfig::default().with_timeouts(Duration::from_secs(2));
    let parties = Party::memory_mesh(3, 1, cfg, None).unwrap();
    let spec = LinearLayerSpec {
        client: 0,
        owner: 1,
    };
    let results = run_all(parties, move |mut p| async move {
        let input = match p.index() {
            0 => LinearInput::Client { x: vec![1, 2, 3] },
            1 => LinearInput::Owner {
                weights: vec![1; 5],
                bias: vec![0, 0],
            },
            _ => LinearInput::Helper,
        };
        linear_layer(&mut p, spec, &input).await
    })
    .await;
    for r in results {
        assert!(matches!(r, Err(MpcError::InvalidArgument(_))), "{r:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_mesh_computes_and_refuses_a_stranger() {
    use std::sync::Arc;
    use veil_net::Identity;
    use veil_shamir::mpc::MeshSecurity;

    let ids: Vec<Arc<Identity>> = (0..3).map(|_| Arc::new(Identity::generate())).collect();
    let keys: Vec<_> = ids.iter().map(|id| id.public()).collect();
    let spec = LinearLayerSpec {
        client: 0,
        owner: 1,
    };
    let (w, x, b) = (vec![4, -1, 0, 9, 3, -8], vec![7, -2, 5], vec![-3, 12]);
    let want = linear_layer_plain(&w, &x, &b).unwrap();
    let inputs = || {
        [
            LinearInput::Client { x: x.clone() },
            LinearInput::Owner {
                weights: w.clone(),
                bias: b.clone(),
            },
            LinearInput::Helper,
        ]
    };
    // Each party's own view of the keys: the stranger lists its own key at its index.
    let run = |identities: Vec<Arc<Identity>>| {
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        }
        let addrs: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        drop(listeners);
        inputs()
            .into_iter()
            .zip(identities)
            .enumerate()
            .map(|(i, (input, identity))| {
                let mut keys = keys.clone();
                keys[i] = identity.public();
                let cfg = PartyConfig::new(i, addrs.clone(), 1)
                    .with_session_id([3u8; 16])
                    .with_channel(config())
                    .with_security(MeshSecurity { identity, keys });
                tokio::spawn(veil_shamir::mpc::run_party(cfg, spec, input))
            })
            .collect::<Vec<_>>()
    };
    let mut outs = Vec::new();
    for h in run(ids.clone()) {
        outs.push(h.await.unwrap().unwrap());
    }
    assert_eq!(outs[0].output.as_ref().unwrap(), &want);

    // Party 2 replaced by a stranger with another key: parties 0 and 1 pin the real party 2's
    // key, so their handshakes with it fail, and no party finishes.
    let mut wrong = ids.clone();
    wrong[2] = Arc::new(Identity::generate());
    let results: Vec<_> = {
        let mut r = Vec::new();
        for h in run(wrong) {
            r.push(h.await.unwrap());
        }
        r
    };
    assert!(results.iter().all(|r| r.is_err()), "{results:?}");
}
