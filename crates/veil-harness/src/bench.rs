//! The measurements behind Veil's performance figures (what `veil bench` reports): oblivious
//! transfer, garbled circuits and GMW on their own, and every inference protocol side by side
//! against in-process servers. Each figure is the median of several runs; the machine is
//! assumed noisy. Each function returns a report that serializes to the documented JSON.

use std::time::Instant;

use anyhow::{Context, Result};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use veil_gmw::{GmwParty, PartyId, Reveal as GmwReveal, P0, P1};
use veil_net::{linked_tcp_pair, tcp_pair, Channel, ChannelConfig};
use veil_ot::base::{BaseOtReceiver, BaseOtSender};
use veil_ot::{ChouOrlandi, Extension, OtReceiver, OtSender};

use crate::machine::Machine;
use crate::progress::Progress;
use crate::runtime::{current_thread, multi_thread, two_threads};
use crate::stats::median;

/// The OT figures: the base OTs, then each extension ([`OtExtensionFigures`]): IKNP, the
/// baseline, and SoftSpokenOT at `k = 2, 4, 8`, with SoftSpokenOT's `k = 4` (Veil's default)
/// set beside IKNP.
#[derive(Debug, Serialize)]
pub struct OtReport {
    /// Median latency of 128 Chou-Orlandi base OTs over loopback TCP, in milliseconds.
    pub base_ot_128_ms: f64,
    /// The figures of each extension, IKNP first.
    pub extensions: Vec<OtExtensionFigures>,
    /// SoftSpokenOT k = 4 over IKNP, random correlated OTs per second over loopback TCP
    /// (2^20).
    pub softspoken_over_iknp_tcp: f64,
    /// The same through the `wan` link (40 ms, 100 Mbit/s).
    pub softspoken_over_iknp_wan: f64,
    /// The same through the `lan` link (0.5 ms, 1 Gbit/s).
    pub softspoken_over_iknp_lan: f64,
    /// IKNP's bytes per random correlated OT over SoftSpokenOT k = 4's.
    pub iknp_bytes_over_softspoken: f64,
    /// Runs behind each median.
    pub runs: usize,
    /// The processor measured on.
    #[serde(flatten)]
    pub machine: Machine,
}

/// One extension's figures. Each is the median over runs of one session, after its setup and
/// one untimed extension of the same size, with the outputs written to buffers that the
/// session reuses (as a pool of OTs extended ahead of queries holds them). The extensions
/// measured only for their correlated OT over TCP and their bytes (SoftSpokenOT `k = 2, 8`)
/// have zero in the other fields.
#[derive(Debug, Serialize)]
pub struct OtExtensionFigures {
    /// `IKNP` or `SoftSpokenOT k=K`.
    pub extension: String,
    /// Median correlated OTs per second, both roles on one thread, in memory (2^20 per run).
    pub cot_per_s_memory: f64,
    /// The same for 2^23 OTs per run.
    pub cot_per_s_memory_2_23: f64,
    /// Median correlated OTs per second over loopback TCP, one thread per role (2^20 per run).
    pub cot_per_s_tcp: f64,
    /// The same for 2^23 OTs per run.
    pub cot_per_s_tcp_2_23: f64,
    /// Median correlated OTs per second through the `wan` link (40 ms round trip,
    /// 100 Mbit/s each way), 2^20 per run.
    pub cot_per_s_wan: f64,
    /// Median random correlated OTs per second (choice bits drawn by the extension) over
    /// loopback TCP, 2^20 per run: what GMW's triples and Yao's pool use.
    pub rcot_per_s_tcp: f64,
    /// The same through the `wan` link.
    pub rcot_per_s_wan: f64,
    /// The same through the `lan` link (0.5 ms, 1 Gbit/s).
    pub rcot_per_s_lan: f64,
    /// Bytes on the wire per random correlated OT, receiver to sender.
    pub bytes_per_rcot: f64,
    /// Median random OTs per second over loopback TCP (2^20 per run).
    pub rot_per_s_tcp: f64,
    /// The same for 2^23 OTs per run.
    pub rot_per_s_tcp_2_23: f64,
    /// Median random OTs per second, both roles on one thread, in memory (2^20 per run).
    pub rot_per_s_memory: f64,
    /// The same for 2^23 OTs per run.
    pub rot_per_s_memory_2_23: f64,
    /// Median chosen-message OTs per second (two 16-byte messages each, the size of a wire
    /// label), both roles on one thread, in memory (2^20 per run).
    pub chosen_per_s_memory: f64,
    /// The same for 2^23 OTs per run.
    pub chosen_per_s_memory_2_23: f64,
    /// Median chosen-message OTs per second over loopback TCP (2^20 per run).
    pub chosen_per_s_tcp: f64,
    /// The same for 2^23 OTs per run.
    pub chosen_per_s_tcp_2_23: f64,
    /// Correlated OTs per second in memory, one thread, with the KOS check against a malicious
    /// receiver (2^20 per run).
    pub cot_per_s_memory_checked: f64,
    /// Correlated OTs per second over loopback TCP with the KOS check (2^20 per run).
    pub cot_per_s_tcp_checked: f64,
    /// Random OTs per second over loopback TCP with the KOS check (2^20 per run): what Yao's
    /// evaluator inputs use.
    pub rot_per_s_tcp_checked: f64,
    /// Bytes on the wire per correlated OT, receiver to sender.
    pub bytes_per_cot: f64,
    /// Bytes on the wire per correlated OT, sender to receiver (zero after setup).
    pub bytes_per_cot_sender_to_receiver: f64,
}

/// Which OT a timing runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OtKind {
    Correlated,
    /// Correlated OT whose choice bits the extension draws.
    RandomCorrelated,
    Random,
    /// Chosen-message OT of two 16-byte messages.
    Chosen,
}

fn rng() -> ChaCha20Rng {
    veil_ot::secure_rng()
}

async fn base_ot_once() -> Result<f64> {
    let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await?;
    let choices = vec![true; 128];
    let t0 = Instant::now();
    let s = tokio::spawn(async move { ChouOrlandi::new(rng()).send_random(&mut a, 128).await });
    ChouOrlandi::new(rng())
        .receive_random(&mut b, &choices)
        .await?;
    s.await??;
    Ok(t0.elapsed().as_secs_f64())
}

async fn ext_setup(
    a: Channel,
    mut b: Channel,
    ext: Extension,
    checked: bool,
) -> Result<(OtSender, Channel, OtReceiver, Channel)> {
    let s = tokio::spawn(async move {
        let mut a = a;
        let snd = OtSender::setup_extension(&mut a, &mut rng(), ext).await;
        snd.map(|s| {
            let s = if checked {
                s.with_kos_check(&mut rng())
            } else {
                s
            };
            (s, a)
        })
    });
    let mut rcv = OtReceiver::setup_extension(&mut b, &mut rng(), ext).await?;
    if checked {
        rcv = rcv.with_kos_check(&mut rng());
    }
    let (snd, a) = s.await??;
    Ok((snd, a, rcv, b))
}

/// Times `runs` extensions of `n` OTs of `kind` in one session, after its setup and one
/// untimed extension of the same size, with or without the KOS check; returns (seconds of each
/// run, receiver->sender bytes of the last, sender->receiver bytes of the last). The outputs
/// go to buffers reused from run to run, as a session that extends ahead of its queries (a
/// pool) holds them: the figure is the OT work, not the first touch of fresh memory.
#[allow(clippy::too_many_arguments)]
async fn cot_session(
    a: Channel,
    b: Channel,
    ext: Extension,
    n: usize,
    kind: OtKind,
    checked: bool,
    runs: usize,
) -> Result<(Vec<f64>, u64, u64)> {
    let (mut snd, mut a, mut rcv, mut b) = ext_setup(a, b, ext, checked).await?;
    let choices: Vec<bool> = (0..n).map(|j| j % 3 == 0).collect();
    // Chosen messages are made before the clock starts.
    let messages: Vec<[u8; 32]> = if kind == OtKind::Chosen {
        (0..n).map(|j| [(j % 251) as u8; 32]).collect()
    } else {
        Vec::new()
    };
    // The sender runs in its own task (its own core over TCP) and reports when each run ends.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Result<Instant, veil_ot::OtError>>();
    let sender = tokio::spawn(async move {
        let (mut q, mut keys) = (Vec::new(), Vec::new());
        for _ in 0..=runs {
            let r = match kind {
                OtKind::Random => snd.send_random_into(&mut a, n, &mut keys).await,
                OtKind::Correlated => snd.send_correlated_into(&mut a, n, &mut q).await,
                OtKind::RandomCorrelated => {
                    snd.send_correlated_random_into(&mut a, n, &mut q).await
                }
                OtKind::Chosen => {
                    let pairs: Vec<(&[u8], &[u8])> =
                        messages.iter().map(|m| (&m[..16], &m[16..])).collect();
                    snd.send_chosen(&mut a, &pairs).await
                }
            };
            let failed = r.is_err();
            if tx.send(r.map(|()| Instant::now())).is_err() || failed {
                break;
            }
        }
    });
    let mut t = Vec::new();
    let mut drawn = Vec::new();
    let mut choice_rng = rng();
    let mut secs = Vec::new();
    let mut bytes = (0, 0);
    for run in 0..=runs {
        let before_r = b.stats();
        let t0 = Instant::now();
        let got = match kind {
            OtKind::Random => rcv
                .receive_random_into(&mut b, &choices, &mut t)
                .await
                .map(|()| t.len()),
            OtKind::Correlated => rcv
                .receive_correlated_into(&mut b, &choices, &mut t)
                .await
                .map(|()| t.len()),
            OtKind::RandomCorrelated => rcv
                .receive_correlated_random_into(&mut b, n, &mut choice_rng, &mut drawn, &mut t)
                .await
                .map(|()| t.len()),
            OtKind::Chosen => rcv.receive_chosen(&mut b, &choices).await.map(|v| v.len()),
        }?;
        let receiver_done = Instant::now();
        let sender_done = rx.recv().await.context("the OT sender stopped")??;
        anyhow::ensure!(got == n, "OT count mismatch");
        if run > 0 {
            secs.push((receiver_done.max(sender_done) - t0).as_secs_f64());
        }
        let d = b.stats().since(&before_r);
        bytes = (d.bytes_sent, d.bytes_received);
    }
    sender.await?;
    Ok((secs, bytes.0, bytes.1))
}

/// Runs the OT measurements, `runs` runs behind each median (at least one), starting a
/// progress phase before each.
pub fn ot(runs: usize, progress: &mut dyn Progress) -> Result<OtReport> {
    let runs = runs.max(1);
    let mt = two_threads()?;
    let st = current_thread()?;

    progress.phase("128 base OTs over loopback TCP", None);
    let mut base = Vec::new();
    for _ in 0..runs * 3 {
        base.push(mt.block_on(base_ot_once())?);
    }
    let soft = Extension::SoftSpoken { k: 4 };
    let mut extensions = vec![
        ot_extension(Extension::Iknp, runs, true, &mt, &st, progress)?,
        ot_extension(soft, runs, true, &mt, &st, progress)?,
    ];
    for k in [2, 8] {
        let ext = Extension::SoftSpoken { k };
        extensions.push(ot_extension(ext, runs, false, &mt, &st, progress)?);
    }
    let (iknp, ss) = (&extensions[0], &extensions[1]);
    Ok(OtReport {
        base_ot_128_ms: median(base) * 1e3,
        softspoken_over_iknp_tcp: ss.rcot_per_s_tcp / iknp.rcot_per_s_tcp,
        softspoken_over_iknp_wan: ss.rcot_per_s_wan / iknp.rcot_per_s_wan,
        softspoken_over_iknp_lan: ss.rcot_per_s_lan / iknp.rcot_per_s_lan,
        iknp_bytes_over_softspoken: iknp.bytes_per_rcot / ss.bytes_per_rcot,
        extensions,
        runs,
        machine: Machine::detect(),
    })
}

/// One extension's figures; `full` false measures only correlated OT over loopback TCP and
/// through `wan`.
fn ot_extension(
    ext: Extension,
    runs: usize,
    full: bool,
    mt: &tokio::runtime::Runtime,
    st: &tokio::runtime::Runtime,
    progress: &mut dyn Progress,
) -> Result<OtExtensionFigures> {
    let mem = |n: usize, kind: OtKind, checked: bool| -> Result<(Vec<f64>, u64, u64)> {
        let (a, b) = Channel::memory_pair(ChannelConfig::default());
        st.block_on(cot_session(a, b, ext, n, kind, checked, runs))
            .map(|(secs, r2s, s2r)| (secs.iter().map(|s| n as f64 / s).collect(), r2s, s2r))
    };
    let tcp = |n: usize, kind: OtKind, checked: bool| -> Result<(Vec<f64>, u64, u64)> {
        let (secs, r2s, s2r) = mt.block_on(async {
            let (a, b) = tcp_pair(ChannelConfig::default()).await?;
            cot_session(a, b, ext, n, kind, checked, runs).await
        })?;
        Ok((secs.iter().map(|s| n as f64 / s).collect(), r2s, s2r))
    };
    let linked = |name: &str, n: usize, kind: OtKind| -> Result<Vec<f64>> {
        let profile = veil_net::LinkProfile::named(name).context("a named link profile")?;
        let (secs, _, _) = mt.block_on(async {
            let (a, b, _link) = linked_tcp_pair(ChannelConfig::default(), profile).await?;
            cot_session(a, b, ext, n, kind, false, runs).await
        })?;
        Ok(secs.iter().map(|s| n as f64 / s).collect())
    };
    let phase = |p: &mut dyn Progress, what: &str| p.phase(&format!("{ext}: {what}"), None);
    let n = (1u64 << 20) as f64;
    phase(progress, "2^20 correlated OTs over loopback TCP");
    let (t20, r2s, s2r) = tcp(1 << 20, OtKind::Correlated, false)?;
    phase(progress, "2^20 random correlated OTs over loopback TCP");
    let (rt20, rr2s, _) = tcp(1 << 20, OtKind::RandomCorrelated, false)?;
    phase(
        progress,
        "2^20 correlated and random correlated OTs through wan and lan links",
    );
    let w20 = linked("wan", 1 << 20, OtKind::Correlated)?;
    let rw20 = linked("wan", 1 << 20, OtKind::RandomCorrelated)?;
    let rl20 = linked("lan", 1 << 20, OtKind::RandomCorrelated)?;
    let mut f = OtExtensionFigures {
        extension: ext.to_string(),
        cot_per_s_tcp: median(t20),
        cot_per_s_wan: median(w20),
        rcot_per_s_tcp: median(rt20),
        rcot_per_s_wan: median(rw20),
        rcot_per_s_lan: median(rl20),
        bytes_per_rcot: rr2s as f64 / n,
        bytes_per_cot: r2s as f64 / n,
        bytes_per_cot_sender_to_receiver: s2r as f64 / n,
        cot_per_s_memory: 0.0,
        cot_per_s_memory_2_23: 0.0,
        cot_per_s_tcp_2_23: 0.0,
        rot_per_s_tcp: 0.0,
        rot_per_s_tcp_2_23: 0.0,
        rot_per_s_memory: 0.0,
        rot_per_s_memory_2_23: 0.0,
        chosen_per_s_memory: 0.0,
        chosen_per_s_memory_2_23: 0.0,
        chosen_per_s_tcp: 0.0,
        chosen_per_s_tcp_2_23: 0.0,
        cot_per_s_memory_checked: 0.0,
        cot_per_s_tcp_checked: 0.0,
        rot_per_s_tcp_checked: 0.0,
    };
    if !full {
        return Ok(f);
    }
    let m = |r: Result<(Vec<f64>, u64, u64)>| r.map(|(v, _, _)| median(v));
    phase(
        progress,
        "2^20 and 2^23 correlated OTs in memory, one thread",
    );
    f.cot_per_s_memory = m(mem(1 << 20, OtKind::Correlated, false))?;
    f.cot_per_s_memory_2_23 = m(mem(1 << 23, OtKind::Correlated, false))?;
    phase(
        progress,
        "2^20 checked correlated OTs in memory, one thread",
    );
    f.cot_per_s_memory_checked = m(mem(1 << 20, OtKind::Correlated, true))?;
    phase(progress, "2^20 and 2^23 random OTs in memory, one thread");
    f.rot_per_s_memory = m(mem(1 << 20, OtKind::Random, false))?;
    f.rot_per_s_memory_2_23 = m(mem(1 << 23, OtKind::Random, false))?;
    phase(
        progress,
        "2^20 and 2^23 chosen-message OTs in memory, one thread",
    );
    f.chosen_per_s_memory = m(mem(1 << 20, OtKind::Chosen, false))?;
    f.chosen_per_s_memory_2_23 = m(mem(1 << 23, OtKind::Chosen, false))?;
    phase(progress, "2^23 correlated OTs over loopback TCP");
    f.cot_per_s_tcp_2_23 = m(tcp(1 << 23, OtKind::Correlated, false))?;
    phase(progress, "2^20 and 2^23 random OTs over loopback TCP");
    f.rot_per_s_tcp = m(tcp(1 << 20, OtKind::Random, false))?;
    f.rot_per_s_tcp_2_23 = m(tcp(1 << 23, OtKind::Random, false))?;
    phase(
        progress,
        "2^20 and 2^23 chosen-message OTs over loopback TCP",
    );
    f.chosen_per_s_tcp = m(tcp(1 << 20, OtKind::Chosen, false))?;
    f.chosen_per_s_tcp_2_23 = m(tcp(1 << 23, OtKind::Chosen, false))?;
    phase(
        progress,
        "2^20 checked correlated and random OTs over loopback TCP",
    );
    f.cot_per_s_tcp_checked = m(tcp(1 << 20, OtKind::Correlated, true))?;
    f.rot_per_s_tcp_checked = m(tcp(1 << 20, OtKind::Random, true))?;
    Ok(f)
}

/// The garbled-circuit figures.
#[derive(Debug, Serialize)]
pub struct GcReport {
    /// Median AND gates garbled per second on one core, in memory (AES-128 circuits,
    /// XOR and INV gates included in the time).
    pub garble_and_per_s: f64,
    /// Median AND gates evaluated per second on one core, in memory.
    pub eval_and_per_s: f64,
    /// Median wall time of one AES-128 evaluation over loopback TCP after the session's setup
    /// (a session's later queries: the circuit prepared once, the evaluator's input labels
    /// drawn from the session's pool of random OTs), in milliseconds.
    pub aes128_ms: f64,
    /// The session's first evaluation: 128 base OTs, the pool's first fill
    /// (`veil_gc::protocol::POOL_BATCH` checked random OTs) and the evaluation.
    pub aes128_first_ms: f64,
    /// Garbled-table bytes per AND gate.
    pub bytes_per_and: f64,
    /// All bytes of one AES-128 evaluation (both directions, after setup).
    pub aes128_bytes: u64,
    /// AND gates in the AES-128 circuit.
    pub aes128_and_gates: usize,
    /// Runs behind each median.
    pub runs: usize,
    /// The processor measured on.
    #[serde(flatten)]
    pub machine: Machine,
}

const AES128_BRISTOL: &str = include_str!("../../../circuits/aes_128.txt");

/// The bundled AES-128 Bristol circuit.
pub fn aes128_circuit() -> Result<veil_circuit::Circuit> {
    Ok(veil_circuit::parse_bristol(AES128_BRISTOL)?)
}

/// Runs the garbled-circuit measurements, `runs` runs behind each median (at least one),
/// starting a progress phase before each.
pub fn gc(runs: usize, progress: &mut dyn Progress) -> Result<GcReport> {
    use veil_gc::garble::{EvalState, GarbleState};
    use veil_gc::{Evaluator, Garbler, Party, PreparedCircuit, Reveal};
    use veil_ot::Block;

    let runs = runs.max(1);
    let c = aes128_circuit()?;
    let ands = c.stats().and_count;
    let plan = veil_gc::garble::Plan::new(&c);
    let mut lrng = rng();
    let reps = 50;

    progress.phase("garbling and evaluating AES-128 in memory, one core", None);
    let zero: Vec<Vec<Block>> = c
        .inputs
        .iter()
        .map(|w| w.iter().map(|_| Block::random(&mut lrng)).collect())
        .collect();
    let delta = Block(rand::Rng::random::<u128>(&mut lrng) | 1);
    let mut tables = Vec::with_capacity(2 * ands);
    let (mut g_rates, mut e_rates) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t0 = Instant::now();
        for _ in 0..reps {
            tables.clear();
            let mut g = GarbleState::new(&plan, delta, &zero, 0);
            g.garble(usize::MAX, &mut tables);
        }
        g_rates.push((reps * ands) as f64 / t0.elapsed().as_secs_f64());
        let t0 = Instant::now();
        for _ in 0..reps {
            let mut e = EvalState::new(&plan, &zero, 0);
            e.eval(&tables);
        }
        e_rates.push((reps * ands) as f64 / t0.elapsed().as_secs_f64());
    }
    let bytes_per_and = (tables.len() * Block::BYTES) as f64 / ands as f64;

    progress.phase("AES-128 over loopback TCP", None);
    let mt = two_threads()?;
    let owners = [Party::Garbler, Party::Evaluator];
    let (first, later, bytes) = mt.block_on(async {
        let (mut a, mut b) = tcp_pair(ChannelConfig::default()).await?;
        let c2 = c.clone();
        let n = runs * 3 + 1;
        // Each side prepares the circuit once for the session, as a server does.
        let g = tokio::spawn(async move {
            let prepared = PreparedCircuit::new(&c2, &owners, Reveal::Evaluator)?;
            let mut g = Garbler::new(&mut rng());
            for _ in 0..n {
                g.run_prepared(&mut a, &prepared, &[vec![true; 128]])
                    .await?;
            }
            Ok::<_, veil_gc::GcError>(())
        });
        let prepared = PreparedCircuit::new(&c, &owners, Reveal::Evaluator)?;
        let mut e = Evaluator::new(&mut rng());
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..n {
            let before = b.stats();
            let t0 = Instant::now();
            e.run_prepared(&mut b, &prepared, &[vec![false; 128]])
                .await?;
            times.push(t0.elapsed().as_secs_f64());
            bytes = b.stats().since(&before).total_bytes();
        }
        g.await??;
        let first = times.remove(0);
        Ok::<_, anyhow::Error>((first, median(times), bytes))
    })?;
    Ok(GcReport {
        garble_and_per_s: median(g_rates),
        eval_and_per_s: median(e_rates),
        aes128_ms: later * 1e3,
        aes128_first_ms: first * 1e3,
        bytes_per_and,
        aes128_bytes: bytes,
        aes128_and_gates: ands,
        runs,
        machine: Machine::detect(),
    })
}

/// The GMW figures.
#[derive(Debug, Serialize)]
pub struct GmwReport {
    /// Median Beaver triples per second in the offline phase over loopback TCP (2^20 per run).
    pub triples_per_s: f64,
    /// The same in memory, both parties on one thread.
    pub triples_per_s_memory: f64,
    /// Median AND gates per second in the online phase for a batch of 64 AES-128
    /// evaluations in memory, both parties on one thread.
    pub online_and_per_s: f64,
    /// Median online time of one AES-128 evaluation over loopback TCP, triples made
    /// beforehand, in milliseconds.
    pub aes128_ms: f64,
    /// Median online time of 64 AES-128 evaluations in one batch over loopback TCP.
    pub aes128_batch64_ms: f64,
    /// Flights each party sends in the online phase of one AES-128 (AND depth + 2).
    pub rounds_aes128: u64,
    /// Bytes on the wire per triple in the offline phase, both directions.
    pub offline_bytes_per_and: f64,
    /// Bytes on the wire per AND gate in the online phase of one AES-128, both directions.
    pub online_bytes_per_and: f64,
    /// The same per AND gate and evaluation in a batch of 64.
    pub online_bytes_per_and_batch64: f64,
    /// The offline phase on IKNP instead of the default SoftSpokenOT: triples per second over
    /// loopback TCP (2^20 per run).
    pub iknp_triples_per_s: f64,
    /// Bytes per triple on IKNP, both directions.
    pub iknp_offline_bytes_per_and: f64,
    /// A batch of 64 AES-128 evaluations through the `wan` link (40 ms, 100 Mbit/s), its
    /// triples made on the spot (OT setup included) and then evaluated, on the default
    /// SoftSpokenOT: median seconds.
    pub wan_batch64_s: f64,
    /// The same on IKNP.
    pub wan_batch64_s_iknp: f64,
    /// Runs behind each median.
    pub runs: usize,
}

/// Makes `n` triples between two fresh parties; returns the parties, channels, seconds and
/// offline bytes (both directions).
async fn gmw_offline(
    a: Channel,
    b: Channel,
    n: usize,
    ext: Extension,
) -> Result<(GmwParty<P0>, Channel, GmwParty<P1>, Channel, f64, u64)> {
    let mut p0 = GmwParty::<P0>::new(&mut rng()).with_extension(ext);
    let mut p1 = GmwParty::<P1>::new(&mut rng()).with_extension(ext);
    let (mut a, mut b) = (a, b);
    // OT setup first, outside the timing.
    let t = tokio::spawn(async move { p0.offline(&mut a, 1).await.map(|_| (p0, a)) });
    p1.offline(&mut b, 1).await?;
    let (mut p0, mut a) = t.await??;
    let before = b.stats();
    let t0 = Instant::now();
    let t = tokio::spawn(async move { p0.offline(&mut a, n).await.map(|_| (p0, a)) });
    p1.offline(&mut b, n).await?;
    let (p0, a) = t.await??;
    let secs = t0.elapsed().as_secs_f64();
    let bytes = b.stats().since(&before).total_bytes();
    Ok((p0, a, p1, b, secs, bytes))
}

/// One online run (triples already made); returns seconds, party 1's online stats and the
/// outputs party 1 learns.
async fn gmw_online(
    p0: &mut GmwParty<P0>,
    a: &mut Channel,
    p1: &mut GmwParty<P1>,
    b: &mut Channel,
    c: &veil_circuit::Circuit,
    lanes: usize,
) -> Result<(f64, veil_net::Stats)> {
    let owners = [PartyId::P0, PartyId::P1];
    let key = [vec![0x0123_4567_89ab_cdefu64; 128]];
    let pt = [vec![0xfedc_ba98_7654_3210u64; 128]];
    let before = b.stats();
    let t0 = Instant::now();
    let (r0, r1) = tokio::join!(
        p0.run_batch(a, c, &owners, &key, lanes, GmwReveal::Both),
        p1.run_batch(b, c, &owners, &pt, lanes, GmwReveal::Both)
    );
    let secs = t0.elapsed().as_secs_f64();
    r0?;
    r1?;
    Ok((secs, b.stats().since(&before)))
}

/// Runs the GMW measurements, `runs` runs behind each median (at least one), starting a
/// progress phase before each.
pub fn gmw(runs: usize, progress: &mut dyn Progress) -> Result<GmwReport> {
    let runs = runs.max(1);
    let c = aes128_circuit()?;
    let stats = c.stats();
    let ands = stats.and_count;
    let mt = two_threads()?;
    let st = current_thread()?;
    let n = 1usize << 20;

    let soft = Extension::default();
    let offline_tcp = |ext: Extension| -> Result<(Vec<f64>, u64)> {
        let (mut rates, mut offline_bytes) = (Vec::new(), 0);
        for _ in 0..runs {
            let (.., secs, bytes) = mt.block_on(async {
                let (a, b) = tcp_pair(ChannelConfig::default()).await?;
                gmw_offline(a, b, n, ext).await
            })?;
            rates.push(n as f64 / secs);
            offline_bytes = bytes;
        }
        Ok((rates, offline_bytes))
    };
    progress.phase("2^20 triples over loopback TCP (SoftSpokenOT)", None);
    let (tcp_rates, offline_bytes) = offline_tcp(soft)?;
    progress.phase("2^20 triples over loopback TCP (IKNP)", None);
    let (iknp_rates, iknp_bytes) = offline_tcp(Extension::Iknp)?;
    progress.phase("2^20 triples in memory, one thread", None);
    let mut mem_rates = Vec::new();
    for _ in 0..runs {
        let (a, b) = Channel::memory_pair(ChannelConfig::default());
        let (.., secs, _) = st.block_on(gmw_offline(a, b, n, soft))?;
        mem_rates.push(n as f64 / secs);
    }

    progress.phase("online phase, 64 AES-128 in one batch, in memory", None);
    let (a, b) = Channel::memory_pair(ChannelConfig::default());
    let (mut p0, mut a, mut p1, mut b, _, _) =
        st.block_on(gmw_offline(a, b, 64 * ands * (runs + 1), soft))?;
    let mut online = Vec::new();
    let mut batch_bytes = 0;
    for _ in 0..runs + 1 {
        let (secs, d) = st.block_on(gmw_online(&mut p0, &mut a, &mut p1, &mut b, &c, 64))?;
        online.push((64 * ands) as f64 / secs);
        batch_bytes = d.total_bytes();
    }
    online.remove(0);

    progress.phase("online phase of AES-128 over loopback TCP", None);
    let (single, batch, rounds, single_bytes) = mt.block_on(async {
        let (a, b) = tcp_pair(ChannelConfig::default()).await?;
        let need = (runs * 3 + 1) * ands * 65;
        let (mut p0, mut a, mut p1, mut b, _, _) = gmw_offline(a, b, need, soft).await?;
        let (mut single, mut batch) = (Vec::new(), Vec::new());
        let (mut rounds, mut bytes) = (0, 0);
        for k in 0..runs * 3 + 1 {
            let (s1, d) = gmw_online(&mut p0, &mut a, &mut p1, &mut b, &c, 1).await?;
            let (s64, _) = gmw_online(&mut p0, &mut a, &mut p1, &mut b, &c, 64).await?;
            if k > 0 {
                single.push(s1);
                batch.push(s64);
            }
            rounds = d.rounds;
            bytes = d.total_bytes();
        }
        Ok::<_, anyhow::Error>((median(single), median(batch), rounds, bytes))
    })?;

    // Through wan: one session makes a batch's triples and evaluates it, as a client whose
    // server holds no triples for it would.
    let wan_batch = |ext: Extension| -> Result<Vec<f64>> {
        let profile = veil_net::LinkProfile::named("wan").context("the wan profile")?;
        let mut secs = Vec::new();
        for _ in 0..runs {
            secs.push(mt.block_on(async {
                let (a, b, _link) = linked_tcp_pair(ChannelConfig::default(), profile).await?;
                let t0 = Instant::now();
                let (mut p0, mut a, mut p1, mut b, _, _) =
                    gmw_offline(a, b, 64 * ands, ext).await?;
                gmw_online(&mut p0, &mut a, &mut p1, &mut b, &c, 64).await?;
                Ok::<_, anyhow::Error>(t0.elapsed().as_secs_f64())
            })?);
        }
        Ok(secs)
    };
    progress.phase(
        "64 AES-128 through wan, triples and evaluation (SoftSpokenOT)",
        None,
    );
    let wan_soft = wan_batch(soft)?;
    progress.phase(
        "64 AES-128 through wan, triples and evaluation (IKNP)",
        None,
    );
    let wan_iknp = wan_batch(Extension::Iknp)?;

    Ok(GmwReport {
        iknp_triples_per_s: median(iknp_rates),
        iknp_offline_bytes_per_and: iknp_bytes as f64 / n as f64,
        wan_batch64_s: median(wan_soft),
        wan_batch64_s_iknp: median(wan_iknp),
        triples_per_s: median(tcp_rates),
        triples_per_s_memory: median(mem_rates),
        online_and_per_s: median(online),
        aes128_ms: single * 1e3,
        aes128_batch64_ms: batch * 1e3,
        rounds_aes128: rounds,
        offline_bytes_per_and: offline_bytes as f64 / n as f64,
        online_bytes_per_and: single_bytes as f64 / ands as f64,
        online_bytes_per_and_batch64: batch_bytes as f64 / (64 * ands) as f64,
        runs,
    })
}

/// One protocol's row of the protocol comparison ([`protocols`]).
#[derive(Debug, Serialize)]
pub struct ProtocolRow {
    /// `he`, `yao`, `gmw` or `clear` (the insecure baseline).
    pub protocol: String,
    /// Test digits measured.
    pub digits: usize,
    /// How the digits were sent: one per query, or all in one batch.
    pub mode: String,
    /// Whether each query's offline phase ran ahead of it ([`veil_protocols::Client::prepare`]);
    /// when not, it ran inside the query, on the spot, and counts as online.
    pub prepared: bool,
    /// Median online latency per digit, in milliseconds (for a batch: batch time / digits).
    pub online_ms_median: f64,
    /// 95th percentile of the per-query online latency (for a batch: the batch time).
    pub online_ms_p95: f64,
    /// Online time of the whole run.
    pub online_ms_total: f64,
    /// Session setup (offline): HE key generation and upload, OT setup, GMW's first triples.
    pub offline_ms: f64,
    /// Bytes of the setup, both directions.
    pub offline_bytes: u64,
    /// Offline phase per digit, run before its query and not in its online latency: Yao's
    /// evaluation garbled ahead, GMW's triples beyond the setup's; zero for HE and `clear`.
    pub prepare_ms_per_digit: f64,
    /// Bytes of that offline phase per digit, both directions.
    pub prepare_bytes_per_digit: f64,
    /// Bytes per digit after setup, client to server.
    pub bytes_to_server: f64,
    /// Bytes per digit after setup, server to client.
    pub bytes_to_client: f64,
    /// Bytes per digit after setup, both directions.
    pub bytes_total: f64,
    /// Flights the client sends per query after setup.
    pub rounds: f64,
    /// Accuracy on the digits.
    pub accuracy: f64,
    /// Agreement with the plaintext integer model.
    pub agreement: f64,
    /// `online_ms_median` of the same run on an unencrypted channel (`--insecure-plaintext`).
    pub plaintext_online_ms_median: f64,
    /// What the encryption adds to the online latency: `online / plaintext - 1`, in percent.
    pub encryption_cost_pct: f64,
    /// Bytes per digit after setup, both directions, without encryption.
    pub plaintext_bytes_total: f64,
    /// The emulated link every session ran through (`veil_net::link`), or `None` for plain
    /// loopback.
    pub network: Option<String>,
    /// Why this protocol's run failed (its figures are then `NaN`); the others still run.
    pub error: Option<String>,
    /// `online_ms_median` over `clear`'s (the insecure baseline: the input in the clear, the
    /// plaintext model's answer, on the same encrypted channel).
    pub online_vs_clear: f64,
    /// `bytes_total` over `clear`'s.
    pub bytes_vs_clear: f64,
}

impl ProtocolRow {
    /// The row of a run that failed: its figures `NaN`, the error kept.
    fn failed(
        protocol: &str,
        digits: usize,
        mode: &str,
        prepared: bool,
        network: Option<veil_net::LinkProfile>,
        e: &anyhow::Error,
    ) -> ProtocolRow {
        ProtocolRow {
            protocol: protocol.into(),
            digits,
            mode: mode.into(),
            prepared,
            online_ms_median: f64::NAN,
            online_ms_p95: f64::NAN,
            online_ms_total: f64::NAN,
            offline_ms: f64::NAN,
            offline_bytes: 0,
            prepare_ms_per_digit: f64::NAN,
            prepare_bytes_per_digit: f64::NAN,
            bytes_to_server: f64::NAN,
            bytes_to_client: f64::NAN,
            bytes_total: f64::NAN,
            rounds: f64::NAN,
            accuracy: f64::NAN,
            agreement: f64::NAN,
            plaintext_online_ms_median: f64::NAN,
            encryption_cost_pct: f64::NAN,
            plaintext_bytes_total: f64::NAN,
            online_vs_clear: f64::NAN,
            bytes_vs_clear: f64::NAN,
            network: network.map(|n| n.to_string()),
            error: Some(format!("{e:#}")),
        }
    }
}

/// Runs every registered protocol on the first `digits` test images of the model's dataset
/// (fewer for a protocol whose queries cost seconds, as its registry entry says; all in one
/// batch for a protocol with lanes) against two in-process servers on loopback TCP:
/// the default, encrypted one, and a plaintext one to show what the encryption costs. With
/// `network`, every session runs through an emulated link (`veil_net::link`) in front of the
/// encrypted server, and the plaintext figures are `NaN`. One progress phase per protocol.
pub fn protocols(
    model: &veil_nn::Model,
    digits: usize,
    network: Option<veil_net::LinkProfile>,
    progress: &mut dyn Progress,
) -> Result<Vec<ProtocolRow>> {
    // Through an emulated link the encryption's cost is lost in the link's: no plaintext twin.
    measure_protocols(model, digits, network, network.is_none(), progress)
}

/// [`protocols`], with the plaintext twin of every run (what the encryption costs) only when
/// `twin`; without it, the plaintext figures are `NaN` (`null` in JSON).
fn measure_protocols(
    model: &veil_nn::Model,
    digits: usize,
    network: Option<veil_net::LinkProfile>,
    twin: bool,
    progress: &mut dyn Progress,
) -> Result<Vec<ProtocolRow>> {
    use veil_protocols::{Protocol, Served, ServerConfig};
    let test = crate::data::DatasetName::choose(None, Some(model)).test_set()?;
    anyhow::ensure!(!test.is_empty(), "the test split is empty");
    let digits = digits.clamp(1, test.len());
    let rt = multi_thread()?;
    // The servers' only clients are this benchmark's own: trusted with GMW.
    let mut secure_config = ServerConfig::new(model.quantized.clone()).without_query_budget();
    // A slow protocol through a slow link (GMW's triples of a CNN at 100 Mbit/s) may take
    // more than the default ten minutes.
    secure_config.session_timeout = std::time::Duration::from_secs(6 * 3600);
    secure_config.trust_clients = true;
    // Every registered protocol, the insecure baseline included: these servers' only clients
    // are this benchmark's own.
    secure_config.protocols = Protocol::ALL.to_vec();
    let key = secure_config
        .public_key()
        .context("the default server is encrypted")?;
    let mut plain_config = ServerConfig::new(model.quantized.clone()).without_query_budget();
    plain_config.security = veil_protocols::ServerSecurity::InsecurePlaintext;
    plain_config.trust_clients = true;
    plain_config.protocols = Protocol::ALL.to_vec();
    // Each server behind its own link when a network is asked for; the links live as long as
    // the measurements.
    let mut links = Vec::new();
    let mut start = |config: ServerConfig| -> Result<String> {
        let served = std::sync::Arc::new(Served::new(config)?);
        let addr = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tokio::spawn(veil_protocols::serve(listener, served));
            Ok::<_, anyhow::Error>(addr)
        })?;
        Ok(match network {
            Some(profile) => {
                let link = veil_net::Link::start("127.0.0.1:0".parse()?, addr, profile)?;
                let front = link.addr();
                links.push(link);
                front.to_string()
            }
            None => addr.to_string(),
        })
    };
    let addr = start(secure_config)?;
    let plain_addr = start(plain_config)?;
    let mut rows = Vec::new();
    // Each protocol with its per-query offline phase run ahead, then, for those that have
    // one, on the spot; on loopback, HE once more answering with the logits, beside its
    // class-only answer (the encrypted argmax), so that the argmax's cost is a figure.
    let runs = veil_protocols::registry::REGISTRY.iter().flat_map(|e| {
        let again = e.offline_per_query().then_some((e, false, false));
        let logits = (network.is_none() && e.protocol() == Protocol::He).then_some((e, true, true));
        std::iter::once((e, true, false)).chain(again).chain(logits)
    });
    for (entry, ahead, logits) in runs {
        let p = entry.protocol();
        let n = entry.bench_inputs(digits);
        let batch = entry.lanes() > 1;
        let how = match (ahead, logits) {
            (_, true) => ", answering with the logits",
            (true, false) => "",
            (false, false) => ", offline on the spot",
        };
        let twin_note = if twin {
            ", encrypted and in plaintext"
        } else {
            ""
        };
        progress.phase(&format!("{p} on {n} digits{how}{twin_note}"), None);
        let images = crate::data::from_set(&test, 0..n);
        let mode = match (batch, ahead && entry.offline_per_query(), logits) {
            (_, _, true) => "per digit, logits",
            (true, _, false) => "one batch",
            (false, true, false) => "per digit, prepared",
            (false, false, false) => "per digit",
        };
        let mut options = veil_protocols::ClientOptions::new(p, key);
        options.want_logits = logits;
        let r = match rt.block_on(crate::client::infer_session(
            &addr,
            options,
            &images,
            batch,
            ahead,
            Some(&model.quantized),
        )) {
            Ok(r) => r,
            Err(e) => {
                rows.push(ProtocolRow::failed(p.name(), n, mode, ahead, network, &e));
                continue;
            }
        };
        let plain = if twin {
            let mut options = veil_protocols::ClientOptions::insecure_plaintext(p);
            options.want_logits = logits;
            Some(rt.block_on(crate::client::infer_session(
                &plain_addr,
                options,
                &images,
                batch,
                ahead,
                Some(&model.quantized),
            ))?)
        } else {
            None
        };
        let online = r.online_ms_median.unwrap_or(r.online_ms_per_input);
        let plain_online = plain.as_ref().map_or(f64::NAN, |plain| {
            plain.online_ms_median.unwrap_or(plain.online_ms_per_input)
        });
        rows.push(ProtocolRow {
            protocol: if logits {
                format!("{}-logits", r.protocol)
            } else {
                r.protocol.clone()
            },
            digits: n,
            mode: mode.into(),
            prepared: ahead,
            online_ms_median: online,
            online_ms_p95: r.online_ms_p95.unwrap_or(r.online_ms),
            online_ms_total: r.online_ms,
            offline_ms: r.setup_ms,
            offline_bytes: r.setup_bytes,
            prepare_ms_per_digit: r.prepare_ms / n as f64,
            prepare_bytes_per_digit: r.prepare_bytes as f64 / n as f64,
            bytes_to_server: r.online_bytes_sent as f64 / n as f64,
            bytes_to_client: r.online_bytes_received as f64 / n as f64,
            bytes_total: r.bytes_per_input,
            rounds: r.rounds_per_query,
            accuracy: r.accuracy.unwrap_or(0.0),
            agreement: r.agreement.unwrap_or(0.0),
            plaintext_online_ms_median: plain_online,
            // NaN without a plaintext twin (`f64::max` would turn it into 1e-9).
            encryption_cost_pct: if plain_online.is_nan() {
                f64::NAN
            } else {
                100.0 * (online / plain_online.max(1e-9) - 1.0)
            },
            plaintext_bytes_total: plain.as_ref().map_or(f64::NAN, |p| p.bytes_per_input),
            network: network.map(|n| n.to_string()),
            error: None,
            online_vs_clear: f64::NAN,
            bytes_vs_clear: f64::NAN,
        });
    }
    let clear = rows
        .iter()
        .find(|r| r.protocol == Protocol::Clear.name())
        .map(|r| (r.online_ms_median, r.bytes_total));
    if let Some((ms, bytes)) = clear {
        for r in &mut rows {
            r.online_vs_clear = r.online_ms_median / ms.max(1e-9);
            r.bytes_vs_clear = r.bytes_total / bytes.max(1e-9);
        }
    }
    Ok(rows)
}

/// A chart series: its name, how to read it from a row, its colour.
type Metric = (&'static str, fn(&ProtocolRow) -> f64, &'static str);

/// An SVG chart: online milliseconds and kilobytes per digit for each protocol, log scale.
pub fn svg_chart(rows: &[ProtocolRow]) -> String {
    let (w, h, left, top, bottom) = (720.0, 360.0, 70.0, 40.0, 60.0);
    let plot_h = h - top - bottom;
    let metrics: [Metric; 2] = [
        ("online ms per digit", |r| r.online_ms_median, "#3b6fb6"),
        ("KiB per digit", |r| r.bytes_total / 1024.0, "#d9822b"),
    ];
    let max_v = rows
        .iter()
        .flat_map(|r| metrics.iter().map(move |(_, f, _)| f(r)))
        .fold(1.0f64, f64::max);
    let decades = max_v.log10().ceil().max(1.0);
    let y = |v: f64| top + plot_h * (1.0 - (v.max(0.01).log10() + 2.0) / (decades + 2.0));
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">Veil: private inference of one digit, by protocol (log scale)</text>\n"
    );
    for d in -2..=(decades as i32) {
        let v = 10f64.powi(d);
        let yy = y(v);
        s += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            w - 20.0,
            left - 6.0,
            yy + 4.0,
            if v < 1.0 { format!("{v}") } else { format!("{}", v as u64) }
        );
    }
    let group = (w - left - 20.0) / rows.len().max(1) as f64;
    for (i, r) in rows.iter().enumerate() {
        let x0 = left + group * i as f64 + group * 0.2;
        let bw = group * 0.6 / metrics.len() as f64;
        for (k, (_, f, color)) in metrics.iter().enumerate() {
            let v = f(r);
            let (yy, base) = (y(v), y(0.01));
            s += &format!(
                "<rect x=\"{:.1}\" y=\"{yy:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{v:.2}</title></rect>\n\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"10\">{v:.1}</text>\n",
                x0 + bw * k as f64,
                bw - 2.0,
                (base - yy).max(0.0),
                x0 + bw * k as f64 + bw / 2.0,
                yy - 3.0
            );
        }
        s += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"13\">{} ({:.0}% agree)</text>\n",
            x0 + group * 0.3,
            h - bottom + 20.0,
            if r.prepared {
                r.protocol.to_uppercase()
            } else {
                format!("{}, spot", r.protocol.to_uppercase())
            },
            100.0 * r.agreement
        );
    }
    for (k, (name, _, color)) in metrics.iter().enumerate() {
        let x = left + 200.0 * k as f64;
        s += &format!(
            "<rect x=\"{x}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{name}</text>\n",
            h - 25.0,
            x + 18.0,
            h - 15.0
        );
    }
    s += "</svg>\n";
    s
}

/// What a sweep varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SweepAxis {
    /// Round-trip time, from 0.5 to 80 ms, at 100 Mbit/s.
    Rtt,
    /// Rate, from 10 Mbit/s to 1 Gbit/s, at 40 ms round-trip time.
    Rate,
}

impl SweepAxis {
    /// The links of the sweep, with the value each is drawn at (ms or Mbit/s).
    pub fn points(self) -> Vec<(f64, veil_net::LinkProfile)> {
        let link = |rtt_ms: f64, mbit: f64| {
            veil_net::LinkProfile::new(
                std::time::Duration::from_secs_f64(rtt_ms / 1e3),
                (mbit * 1e6) as u64,
            )
            .expect("valid sweep point")
        };
        match self {
            SweepAxis::Rtt => [0.5, 2.0, 5.0, 10.0, 20.0, 40.0, 80.0]
                .iter()
                .map(|&ms| (ms, link(ms, 100.0)))
                .collect(),
            SweepAxis::Rate => [10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
                .iter()
                .map(|&mbit| (mbit, link(40.0, mbit)))
                .collect(),
        }
    }

    /// The axis's unit, for labels.
    pub fn unit(self) -> &'static str {
        match self {
            SweepAxis::Rtt => "ms RTT (at 100 Mbit/s)",
            SweepAxis::Rate => "Mbit/s (at 40 ms RTT)",
        }
    }
}

/// One protocol's curve in a sweep.
#[derive(Debug, Serialize)]
pub struct SweepSeries {
    /// The protocol, and `on the spot` for a run whose per-query offline phase ran inside
    /// the query.
    pub name: String,
    /// Median online latency per input at each point, in milliseconds.
    pub online_ms: Vec<f64>,
    /// Per-query offline phase at each point, in milliseconds (run ahead of the query).
    pub prepare_ms: Vec<f64>,
}

/// Where HE's online latency crosses another protocol's.
#[derive(Debug, Serialize)]
pub struct Crossover {
    /// The other protocol's series.
    pub against: String,
    /// The value of the axis where the two curves cross (interpolated on log-log axes).
    pub at: f64,
    /// Which is faster beyond that value.
    pub faster_beyond: String,
}

/// A sweep: every protocol's latency at each link of one axis.
#[derive(Debug, Serialize)]
pub struct SweepReport {
    /// What varies.
    pub axis: SweepAxis,
    /// The axis values, in ms or Mbit/s.
    pub x: Vec<f64>,
    /// One curve per protocol run.
    pub series: Vec<SweepSeries>,
    /// Where HE overtakes or falls behind each other protocol.
    pub crossovers: Vec<Crossover>,
}

/// Runs [`protocols`] through each link of `axis` (without the plaintext twins) and gathers
/// the curves and HE's crossovers.
pub fn sweep(
    model: &veil_nn::Model,
    digits: usize,
    axis: SweepAxis,
    progress: &mut dyn Progress,
) -> Result<SweepReport> {
    let points = axis.points();
    let mut x = Vec::new();
    let mut series: Vec<SweepSeries> = Vec::new();
    for (value, link) in points {
        progress.phase(&format!("the protocols through {link}"), None);
        let rows = measure_protocols(model, digits, Some(link), false, progress)?;
        x.push(value);
        for r in rows.iter().filter(|r| r.protocol != "clear") {
            let name = if r.prepared {
                r.protocol.clone()
            } else {
                format!("{} on the spot", r.protocol)
            };
            let s = match series.iter_mut().position(|s| s.name == name) {
                Some(i) => &mut series[i],
                None => {
                    series.push(SweepSeries {
                        name,
                        online_ms: Vec::new(),
                        prepare_ms: Vec::new(),
                    });
                    series.last_mut().expect("just pushed")
                }
            };
            s.online_ms.push(r.online_ms_median);
            s.prepare_ms.push(r.prepare_ms_per_digit);
        }
    }
    let crossovers = crossovers(&x, &series);
    Ok(SweepReport {
        axis,
        x,
        series,
        crossovers,
    })
}

/// Where the `he` curve crosses each other curve, interpolated linearly in log-log space
/// between the two points that bracket a change of sign.
fn crossovers(x: &[f64], series: &[SweepSeries]) -> Vec<Crossover> {
    let Some(he) = series.iter().find(|s| s.name == "he") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for s in series.iter().filter(|s| s.name != "he") {
        let diff: Vec<f64> = he
            .online_ms
            .iter()
            .zip(&s.online_ms)
            .map(|(h, o)| h.max(1e-9).ln() - o.max(1e-9).ln())
            .collect();
        for i in 1..diff.len().min(x.len()) {
            let (a, b) = (diff[i - 1], diff[i]);
            if !a.is_finite() || !b.is_finite() || a == 0.0 || a.signum() == b.signum() {
                continue;
            }
            let t = a / (a - b);
            let at = (x[i - 1].ln() + t * (x[i].ln() - x[i - 1].ln())).exp();
            out.push(Crossover {
                against: s.name.clone(),
                at,
                faster_beyond: if b < 0.0 { "he".into() } else { s.name.clone() },
            });
        }
    }
    out
}

/// An SVG line chart of a sweep: online latency against the axis, log-log, one line per
/// protocol, HE's crossovers marked.
pub fn sweep_svg(report: &SweepReport, title: &str) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 190.0, 40.0, 50.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let all: Vec<f64> = report
        .series
        .iter()
        .flat_map(|s| s.online_ms.iter().copied())
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let (lo, hi) = all.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    let (ylo, yhi) = (
        lo.max(1e-3).log10().floor(),
        hi.max(1e-3).log10().ceil().max(lo.log10().floor() + 1.0),
    );
    let (xlo, xhi) = (
        report.x.first().copied().unwrap_or(1.0).log10(),
        report.x.last().copied().unwrap_or(10.0).log10(),
    );
    let px = |v: f64| left + pw * (v.log10() - xlo) / (xhi - xlo).max(1e-9);
    let py = |v: f64| top + ph * (1.0 - (v.max(1e-3).log10() - ylo) / (yhi - ylo).max(1e-9));
    let colors = [
        "#3b6fb6", "#d9822b", "#2e9e5b", "#b63b6f", "#7a5cc4", "#8c6d1f", "#444",
    ];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"22\" font-size=\"15\">{title}</text>\n"
    );
    for d in (ylo as i32)..=(yhi as i32) {
        let v = 10f64.powi(d);
        let y = py(v);
        s += &format!(
            "<line x1=\"{left}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v} ms</text>\n",
            left + pw,
            left - 6.0,
            y + 4.0
        );
    }
    for &v in &report.x {
        let x = px(v);
        s += &format!(
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{:.1}\" stroke=\"#eee\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{v}</text>\n",
            top + ph,
            top + ph + 16.0
        );
    }
    s += &format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
        left + pw / 2.0,
        h - 10.0,
        report.axis.unit()
    );
    for (i, series) in report.series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let pts: Vec<String> = report
            .x
            .iter()
            .zip(&series.online_ms)
            .filter(|(_, v)| v.is_finite() && **v > 0.0)
            .map(|(&x, &v)| format!("{:.1},{:.1}", px(x), py(v)))
            .collect();
        s += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>\n",
            pts.join(" ")
        );
        let ly = top + 18.0 * i as f64;
        s += &format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            left + pw + 14.0,
            ly + 4.0,
            left + pw + 32.0,
            ly + 9.0,
            series.name
        );
    }
    for c in &report.crossovers {
        if let Some(he) = report.series.iter().find(|s| s.name == "he") {
            // The HE curve's height at the crossover, interpolated in log-log space.
            let i = report
                .x
                .iter()
                .position(|&x| x >= c.at)
                .unwrap_or(report.x.len() - 1)
                .max(1);
            let (x0, x1) = (report.x[i - 1].ln(), report.x[i].ln());
            let t = ((c.at.ln() - x0) / (x1 - x0)).clamp(0.0, 1.0);
            let y = (he.online_ms[i - 1].max(1e-3).ln() * (1.0 - t)
                + he.online_ms[i].max(1e-3).ln() * t)
                .exp();
            s += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"5\" fill=\"none\" stroke=\"black\"><title>HE and {} cross at {:.3}</title></circle>\n",
                px(c.at),
                py(y),
                c.against,
                c.at
            );
        }
    }
    s += "</svg>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, online: &[f64]) -> SweepSeries {
        SweepSeries {
            name: name.into(),
            online_ms: online.to_vec(),
            prepare_ms: vec![0.0; online.len()],
        }
    }

    #[test]
    fn crossovers_are_found_where_the_curves_change_order() {
        let x = [1.0, 10.0, 100.0];
        // HE flat at 100 ms; Yao from 10 ms to 1 000 ms: they cross between 10 and 100, at
        // the geometric midpoint (log-log interpolation), and HE is faster beyond.
        let s = vec![
            series("he", &[100.0, 100.0, 100.0]),
            series("yao", &[10.0, 10.0, 1000.0]),
            series("gmw", &[1.0, 2.0, 3.0]),
        ];
        let c = crossovers(&x, &s);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].against, "yao");
        assert!((c[0].at - 10f64.powf(1.5)).abs() < 1e-6, "{}", c[0].at);
        assert_eq!(c[0].faster_beyond, "he");
        assert!(crossovers(&x, &s[1..]).is_empty());
        let svg = sweep_svg(
            &SweepReport {
                axis: SweepAxis::Rtt,
                x: x.to_vec(),
                series: s,
                crossovers: c,
            },
            "test",
        );
        assert!(svg.contains("<circle") && svg.contains("polyline"));
    }
}
