//! `veil bench`: the measurements behind Veil's performance figures, printed as a table or as
//! JSON. Each figure is the median of several runs; the machine is assumed noisy.

use std::time::Instant;

use anyhow::Result;
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use veil_net::{tcp_pair, Channel, ChannelConfig};
use veil_ot::base::{BaseOtReceiver, BaseOtSender};
use veil_ot::{ChouOrlandi, IknpReceiver, IknpSender};

/// Median of a list of durations (in seconds).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The OT figures.
#[derive(Debug, Serialize)]
pub struct OtReport {
    /// Median latency of 128 Chou-Orlandi base OTs over loopback TCP, in milliseconds.
    pub base_ot_128_ms: f64,
    /// Median correlated OTs per second, both roles on one thread, in memory (2^20 per run).
    pub cot_per_s_memory: f64,
    /// The same for 2^23 OTs per run.
    pub cot_per_s_memory_2_23: f64,
    /// Median correlated OTs per second over loopback TCP, one thread per role (2^20 per run).
    pub cot_per_s_tcp: f64,
    /// The same for 2^23 OTs per run.
    pub cot_per_s_tcp_2_23: f64,
    /// Median random OTs per second over loopback TCP (2^20 per run).
    pub rot_per_s_tcp: f64,
    /// Bytes on the wire per correlated OT, receiver to sender.
    pub bytes_per_cot: f64,
    /// Bytes on the wire per correlated OT, sender to receiver (zero after setup).
    pub bytes_per_cot_sender_to_receiver: f64,
    /// Runs behind each median.
    pub runs: usize,
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

async fn iknp_setup(
    a: Channel,
    mut b: Channel,
) -> Result<(IknpSender, Channel, IknpReceiver, Channel)> {
    let s = tokio::spawn(async move {
        let mut a = a;
        let snd = IknpSender::setup(&mut a, &mut rng()).await;
        snd.map(|s| (s, a))
    });
    let rcv = IknpReceiver::setup(&mut b, &mut rng()).await?;
    let (snd, a) = s.await??;
    Ok((snd, a, rcv, b))
}

/// Times `n` correlated (or random) OTs after setup; returns (seconds, receiver->sender bytes,
/// sender->receiver bytes).
async fn cot_once(a: Channel, b: Channel, n: usize, random: bool) -> Result<(f64, u64, u64)> {
    let (mut snd, mut a, mut rcv, mut b) = iknp_setup(a, b).await?;
    let choices: Vec<bool> = (0..n).map(|j| j % 3 == 0).collect();
    let before_r = b.stats();
    let t0 = Instant::now();
    let s = tokio::spawn(async move {
        let r = if random {
            snd.send_random(&mut a, n).await.map(|v| v.len())
        } else {
            snd.send_correlated(&mut a, n).await.map(|v| v.len())
        };
        r
    });
    let got = if random {
        rcv.receive_random(&mut b, &choices).await?.len()
    } else {
        rcv.receive_correlated(&mut b, &choices).await?.len()
    };
    let sent = s.await??;
    let secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(got == n && sent == n, "OT count mismatch");
    let d = b.stats().since(&before_r);
    Ok((secs, d.bytes_sent, d.bytes_received))
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn two_threads() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs the OT measurements, calling `progress` with a label before each.
pub fn ot(runs: usize, mut progress: impl FnMut(&str)) -> Result<OtReport> {
    let runs = runs.max(1);
    let mt = two_threads()?;
    let st = current_thread()?;

    progress("128 base OTs over loopback TCP");
    let mut base = Vec::new();
    for _ in 0..runs * 3 {
        base.push(mt.block_on(base_ot_once())?);
    }

    let mem = |n: usize| -> Result<(Vec<f64>, u64, u64)> {
        let mut xs = Vec::new();
        let mut bytes = (0, 0);
        for _ in 0..runs {
            let (a, b) = Channel::memory_pair(ChannelConfig::default());
            let (secs, r2s, s2r) = st.block_on(cot_once(a, b, n, false))?;
            xs.push(n as f64 / secs);
            bytes = (r2s, s2r);
        }
        Ok((xs, bytes.0, bytes.1))
    };
    progress("2^20 correlated OTs in memory, one thread");
    let (m20, r2s, s2r) = mem(1 << 20)?;
    progress("2^23 correlated OTs in memory, one thread");
    let (m23, _, _) = mem(1 << 23)?;

    let tcp = |n: usize, random: bool| -> Result<Vec<f64>> {
        let mut xs = Vec::new();
        for _ in 0..runs {
            let r = mt.block_on(async {
                let (a, b) = tcp_pair(ChannelConfig::default()).await?;
                cot_once(a, b, n, random).await
            })?;
            xs.push(n as f64 / r.0);
        }
        Ok(xs)
    };
    progress("2^20 correlated OTs over loopback TCP");
    let t20 = tcp(1 << 20, false)?;
    progress("2^23 correlated OTs over loopback TCP");
    let t23 = tcp(1 << 23, false)?;
    progress("2^20 random OTs over loopback TCP");
    let r20 = tcp(1 << 20, true)?;

    let n = (1u64 << 20) as f64;
    Ok(OtReport {
        base_ot_128_ms: median(base) * 1e3,
        cot_per_s_memory: median(m20),
        cot_per_s_memory_2_23: median(m23),
        cot_per_s_tcp: median(t20),
        cot_per_s_tcp_2_23: median(t23),
        rot_per_s_tcp: median(r20),
        bytes_per_cot: r2s as f64 / n,
        bytes_per_cot_sender_to_receiver: s2r as f64 / n,
        runs,
    })
}

impl OtReport {
    /// Prints the table.
    pub fn print(&self) {
        let m = |x: f64| format!("{:.1} M/s", x / 1e6);
        println!("oblivious transfer (medians of {} runs)", self.runs);
        println!(
            "  128 base OTs (Chou-Orlandi, TCP)        {:>10.2} ms",
            self.base_ot_128_ms
        );
        println!(
            "  correlated OT, memory, 1 thread, 2^20   {:>10}",
            m(self.cot_per_s_memory)
        );
        println!(
            "  correlated OT, memory, 1 thread, 2^23   {:>10}",
            m(self.cot_per_s_memory_2_23)
        );
        println!(
            "  correlated OT, loopback TCP, 2^20       {:>10}",
            m(self.cot_per_s_tcp)
        );
        println!(
            "  correlated OT, loopback TCP, 2^23       {:>10}",
            m(self.cot_per_s_tcp_2_23)
        );
        println!(
            "  random OT, loopback TCP, 2^20           {:>10}",
            m(self.rot_per_s_tcp)
        );
        println!(
            "  bytes per correlated OT                 {:>10.3} receiver->sender, {:.3} back",
            self.bytes_per_cot, self.bytes_per_cot_sender_to_receiver
        );
    }
}
