//! `veil bench`: the flags, and the tables of the measurements that `veil_harness::bench`
//! makes (or their JSON).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use veil_harness::bench::{
    self, GcReport, GmwReport, OtExtensionFigures, OtReport, ProtocolRow, SweepAxis, SweepReport,
};
use veil_harness::link::LinkProfile;
use veil_harness::machine::Machine;

use super::{load_model, print_json, Lines};

/// `veil bench [PART]`.
#[derive(Args, Debug)]
pub struct BenchAll {
    #[command(subcommand)]
    part: Option<BenchCommand>,
    /// Print a JSON list of objects (one per protocol) instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write an SVG chart of the comparison to this file.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Model file (default: `models/digits.json` or the bundled copy).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Test digits for Yao (one query each) and for the GMW batch; HE uses a twentieth of them
    /// (at least 3).
    #[arg(long, default_value_t = 100)]
    digits: usize,
    /// Run every session through an emulated link: `lan` (0.5 ms RTT, 1 Gbit/s), `wan`
    /// (40 ms, 100 Mbit/s), `mobile` (80 ms, 20 Mbit/s), or `RTT_MS,MBIT` (such as `10,500`);
    /// without it, plain loopback.
    #[arg(long, value_parser = LinkProfile::parse, conflicts_with = "sweep")]
    network: Option<LinkProfile>,
    /// Measure every protocol through a series of links instead: round-trip times from 0.5 to
    /// 80 ms at 100 Mbit/s (`rtt`), or rates from 10 Mbit/s to 1 Gbit/s at 40 ms (`rate`);
    /// prints each protocol's online latency at each point and where HE's curve crosses the
    /// others (--svg draws the curves). Without the plaintext twins.
    #[arg(long, value_enum)]
    sweep: Option<SweepAxis>,
}

#[derive(Subcommand, Debug)]
enum BenchCommand {
    /// Oblivious transfer: 128 base OTs, IKNP correlated and random OT in memory and over
    /// loopback TCP, bytes per OT.
    Ot(BenchArgs),
    /// Garbled circuits: garbling and evaluation throughput on one core, AES-128 end to end
    /// over loopback TCP, bytes per AND gate.
    Gc(BenchArgs),
    /// GMW: offline triples per second, online AND gates per second for 64 batched AES-128,
    /// AES-128 online latency and rounds over loopback TCP, bytes per AND.
    Gmw(BenchArgs),
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Runs behind each median.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Runs `veil bench`.
pub fn run(a: BenchAll) -> Result<()> {
    match a.part {
        None => match a.sweep {
            Some(axis) => sweep(a.model, a.digits, axis, a.json, a.svg),
            None => protocols(a.model, a.digits, a.network, a.json, a.svg),
        },
        Some(BenchCommand::Ot(b)) => part(b, bench::ot, print_ot),
        Some(BenchCommand::Gc(b)) => part(b, bench::gc, print_gc),
        Some(BenchCommand::Gmw(b)) => part(b, bench::gmw, print_gmw),
    }
}

/// One building block: its measurements, printed as a table or as JSON.
fn part<R: serde::Serialize>(
    a: BenchArgs,
    measure: fn(usize, &mut dyn veil_harness::Progress) -> Result<R>,
    print: fn(&R),
) -> Result<()> {
    let report = measure(a.runs, &mut Lines::new("measuring ", a.json))?;
    if a.json {
        print_json(&report)
    } else {
        print(&report);
        Ok(())
    }
}

/// Every protocol side by side.
fn protocols(
    model: Option<PathBuf>,
    digits: usize,
    network: Option<LinkProfile>,
    json: bool,
    svg: Option<PathBuf>,
) -> Result<()> {
    let (m, _) = load_model(model.as_deref())?;
    let rows = bench::protocols(&m, digits, network, &mut Lines::new("measuring ", json))?;
    if let Some(path) = svg {
        std::fs::write(&path, bench::svg_chart(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        print_json(&rows)
    } else {
        print_protocols(&rows);
        Ok(())
    }
}

/// Every protocol through a series of links.
fn sweep(
    model: Option<PathBuf>,
    digits: usize,
    axis: SweepAxis,
    json: bool,
    svg: Option<PathBuf>,
) -> Result<()> {
    let (m, source) = load_model(model.as_deref())?;
    let report = bench::sweep(&m, digits, axis, &mut Lines::new("measuring ", json))?;
    if let Some(path) = svg {
        let title = format!("Veil: online latency per input against the network, {source}");
        std::fs::write(&path, bench::sweep_svg(&report, &title))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        return print_json(&report);
    }
    print_sweep(&report);
    Ok(())
}

/// Prints a sweep: one line per protocol, one column per point, then the crossovers.
fn print_sweep(r: &SweepReport) {
    println!("online ms per input against {}", r.axis.unit());
    print!("{:<18}", "");
    for x in &r.x {
        print!(" {x:>10}");
    }
    println!();
    for s in &r.series {
        print!("{:<18}", s.name);
        for v in &s.online_ms {
            print!(" {v:>10.2}");
        }
        println!();
    }
    for c in &r.crossovers {
        println!(
            "HE and {} cross at {:.2} {}; beyond it {} is faster",
            c.against,
            c.at,
            r.axis.unit(),
            c.faster_beyond
        );
    }
    if r.crossovers.is_empty() {
        println!("HE crosses no other protocol on this range");
    }
}

/// Prints the processor line of a report.
fn print_machine(m: &Machine) {
    println!(
        "  processor: {}; AES: {}{}",
        m.cpu_model,
        m.aes_path,
        if m.cpu_has_vaes && m.aes_path != "vaes-avx512" {
            " (VAES available, unused)"
        } else {
            ""
        }
    );
}

/// A row of the OT table: its label and the figure it reads.
type OtRow = (&'static str, fn(&OtExtensionFigures) -> f64);

/// The rows of the OT table, in order; the bytes rows are printed as numbers, the others as
/// rates.
const OT_RATES: [OtRow; 19] = [
    ("correlated OT, memory, 1 thread, 2^20", |e| {
        e.cot_per_s_memory
    }),
    ("correlated OT, memory, 1 thread, 2^23", |e| {
        e.cot_per_s_memory_2_23
    }),
    ("correlated OT, loopback TCP, 2^20", |e| e.cot_per_s_tcp),
    ("correlated OT, loopback TCP, 2^23", |e| {
        e.cot_per_s_tcp_2_23
    }),
    ("correlated OT, wan (40 ms, 100 Mbit/s)", |e| {
        e.cot_per_s_wan
    }),
    ("random correlated OT, loopback TCP, 2^20", |e| {
        e.rcot_per_s_tcp
    }),
    ("random correlated OT, wan", |e| e.rcot_per_s_wan),
    ("random correlated OT, lan (0.5 ms, 1 Gbit/s)", |e| {
        e.rcot_per_s_lan
    }),
    ("random OT, memory, 1 thread, 2^20", |e| e.rot_per_s_memory),
    ("random OT, memory, 1 thread, 2^23", |e| {
        e.rot_per_s_memory_2_23
    }),
    ("random OT, loopback TCP, 2^20", |e| e.rot_per_s_tcp),
    ("random OT, loopback TCP, 2^23", |e| e.rot_per_s_tcp_2_23),
    ("chosen OT, memory, 1 thread, 2^20", |e| {
        e.chosen_per_s_memory
    }),
    ("chosen OT, memory, 1 thread, 2^23", |e| {
        e.chosen_per_s_memory_2_23
    }),
    ("chosen OT, loopback TCP, 2^20", |e| e.chosen_per_s_tcp),
    ("chosen OT, loopback TCP, 2^23", |e| e.chosen_per_s_tcp_2_23),
    ("KOS-checked correlated OT, memory, 2^20", |e| {
        e.cot_per_s_memory_checked
    }),
    ("KOS-checked correlated OT, TCP, 2^20", |e| {
        e.cot_per_s_tcp_checked
    }),
    ("KOS-checked random OT, TCP, 2^20", |e| {
        e.rot_per_s_tcp_checked
    }),
];

const OT_BYTES: [OtRow; 2] = [
    ("bytes per correlated OT (receiver->sender)", |e| {
        e.bytes_per_cot
    }),
    ("bytes per random correlated OT", |e| e.bytes_per_rcot),
];

/// Prints the OT table: one column per extension.
fn print_ot(r: &OtReport) {
    println!("oblivious transfer (medians of {} runs)", r.runs);
    print_machine(&r.machine);
    println!(
        "  128 base OTs (Chou-Orlandi, TCP)          {:>10.2} ms",
        r.base_ot_128_ms
    );
    print!("  {:<42}", "");
    for e in &r.extensions {
        print!("{:>18}", e.extension);
    }
    println!();
    for (what, f) in OT_RATES {
        print!("  {what:<42}");
        for e in &r.extensions {
            match f(e) {
                0.0 => print!("{:>18}", "-"),
                x => print!("{:>18}", format!("{:.1} M/s", x / 1e6)),
            }
        }
        println!();
    }
    for (what, f) in OT_BYTES {
        print!("  {what:<42}");
        for e in &r.extensions {
            print!("{:>18.3}", f(e));
        }
        println!();
    }
    println!(
        "  SoftSpokenOT k=4 over IKNP, random correlated OT: {:.2}x OTs/s over loopback TCP, \
         {:.2}x through lan, {:.2}x through wan, {:.2}x fewer bytes",
        r.softspoken_over_iknp_tcp,
        r.softspoken_over_iknp_lan,
        r.softspoken_over_iknp_wan,
        r.iknp_bytes_over_softspoken
    );
}

/// Prints the garbled-circuit table.
fn print_gc(r: &GcReport) {
    println!("garbled circuits, half-gates (medians of {} runs)", r.runs);
    print_machine(&r.machine);
    println!(
        "  garbling, 1 core, in memory      {:>10.1} M AND/s",
        r.garble_and_per_s / 1e6
    );
    println!(
        "  evaluation, 1 core, in memory    {:>10.1} M AND/s",
        r.eval_and_per_s / 1e6
    );
    println!(
        "  AES-128 over loopback TCP        {:>10.2} ms ({:.2} ms with OT setup)",
        r.aes128_ms, r.aes128_first_ms
    );
    println!(
        "  garbled table per AND gate       {:>10.1} bytes",
        r.bytes_per_and
    );
    println!(
        "  AES-128 traffic                  {:>10} bytes ({} AND gates)",
        r.aes128_bytes, r.aes128_and_gates
    );
}

/// Prints the GMW table.
fn print_gmw(r: &GmwReport) {
    println!("GMW (medians of {} runs)", r.runs);
    println!(
        "  offline triples, loopback TCP            {:>10.2} M/s",
        r.triples_per_s / 1e6
    );
    println!(
        "  offline triples, loopback TCP, on IKNP   {:>10.2} M/s",
        r.iknp_triples_per_s / 1e6
    );
    println!(
        "  offline triples, memory, 1 thread        {:>10.2} M/s",
        r.triples_per_s_memory / 1e6
    );
    println!(
        "  online AND gates, 64 AES-128, memory     {:>10.1} M/s",
        r.online_and_per_s / 1e6
    );
    println!(
        "  online AES-128, loopback TCP             {:>10.2} ms",
        r.aes128_ms
    );
    println!(
        "  online 64 AES-128 batched, loopback TCP  {:>10.2} ms",
        r.aes128_batch64_ms
    );
    println!(
        "  online rounds per party, AES-128         {:>10}",
        r.rounds_aes128
    );
    println!(
        "  bytes per AND offline (both ways)        {:>10.2}  (IKNP {:.2})",
        r.offline_bytes_per_and, r.iknp_offline_bytes_per_and
    );
    println!(
        "  bytes per AND online, single (both ways) {:>10.3}",
        r.online_bytes_per_and
    );
    println!(
        "  bytes per AND online, batch of 64        {:>10.3}",
        r.online_bytes_per_and_batch64
    );
    println!(
        "  64 AES-128 through wan, triples + online {:>10.2} s  (IKNP {:.2} s, {:.2}x)",
        r.wan_batch64_s,
        r.wan_batch64_s_iknp,
        r.wan_batch64_s_iknp / r.wan_batch64_s
    );
}

/// Prints the comparison table.
fn print_protocols(rows: &[ProtocolRow]) {
    if let Some(link) = rows.first().and_then(|r| r.network.as_ref()) {
        println!("network: {link} (every session through an emulated link)");
    }
    println!(
        "{:<6} {:>6} {:>20} {:>12} {:>11} {:>12} {:>12} {:>13} {:>13} {:>13} {:>8} {:>9} {:>10} {:>9} {:>11} {:>10}",
        "",
        "digits",
        "mode",
        "online ms",
        "p95 ms",
        "setup ms",
        "prep ms/dig",
        "prep KiB/dig",
        "KiB/digit up",
        "KiB/digit dn",
        "flights",
        "agreement",
        "plain ms",
        "enc cost",
        "x clear ms",
        "x clear B"
    );
    for r in rows {
        if let Some(e) = &r.error {
            println!(
                "{:<6} {:>6} {:>20} failed: {e}",
                r.protocol, r.digits, r.mode
            );
            continue;
        }
        println!(
            "{:<6} {:>6} {:>20} {:>12.2} {:>11.2} {:>12.1} {:>12.2} {:>13.1} {:>13.1} {:>13.1} {:>8.1} {:>8.1}% {:>10.2} {:>8.1}% {:>11.1} {:>10.1}",
            r.protocol,
            r.digits,
            r.mode,
            r.online_ms_median,
            r.online_ms_p95,
            r.offline_ms,
            r.prepare_ms_per_digit,
            r.prepare_bytes_per_digit / 1024.0,
            r.bytes_to_server / 1024.0,
            r.bytes_to_client / 1024.0,
            r.rounds,
            100.0 * r.agreement,
            r.plaintext_online_ms_median,
            r.encryption_cost_pct,
            r.online_vs_clear,
            r.bytes_vs_clear
        );
    }
    println!("(online ms: median per digit; for the GMW batch, batch time divided by the digits)");
    println!(
        "(setup ms: the session's setup; prep ms/dig and KiB/dig: each query's offline phase, run \
         before its input is used: Yao's evaluation garbled ahead, GMW's triples, the mixed \
         protocol's shared products and garbled activations; a \"per digit\" row of Yao or mixed \
         runs that phase inside the query, on the spot; KiB and flights are online)"
    );
    let find = |p: &str, prepared: bool| {
        rows.iter()
            .find(|r| r.protocol == p && r.prepared == prepared)
    };
    if let Some(m) = find("mixed", true) {
        for (y, what) in [
            (find("yao", true), "yao prepared"),
            (find("yao", false), "yao on the spot"),
        ] {
            let Some(y) = y else { continue };
            let online = |r: &ProtocolRow| r.bytes_total;
            let total = |r: &ProtocolRow| r.bytes_total + r.prepare_bytes_per_digit;
            println!(
                "(mixed against {what}: online bytes / {:.1}, online latency / {:.1}, online \
                 and offline bytes together / {:.1})",
                online(y) / online(m).max(1.0),
                y.online_ms_median / m.online_ms_median.max(1e-9),
                total(y) / total(m).max(1.0)
            );
        }
    }
    println!(
        "(clear is the INSECURE baseline: the input in the clear, the plaintext model's answer; \
         x clear is each protocol's online latency and bytes over clear's)"
    );
    println!(
        "(every session is encrypted and authenticated, Noise IK with AES-256-GCM; plain ms is \
         the same run on an --insecure-plaintext channel, enc cost what encryption adds)"
    );
}
