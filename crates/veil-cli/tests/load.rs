//! Load: 64 concurrent encrypted sessions (48 Yao, 16 GMW) against one `veil serve` process.
//! Every session must return the plaintext model's classes; the server's peak resident memory
//! (VmHWM, read from /proc) is printed and bounded.

use std::time::{Duration, Instant};

use veil_net::{ChannelConfig, PublicKey};
use veil_nn::data::digits_split;
use veil_protocols::{Client, ClientOptions, Protocol};

mod common;

/// Peak resident set of a process, in KiB, where /proc offers it.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn sixty_four_concurrent_sessions_against_one_server() {
    // The test's clients are trusted with GMW.
    let server = common::start_server("yao,gmw", &["--trust-clients"]);
    let addr = server.addr.clone();
    let key: PublicKey = server.key.parse().unwrap();
    let idle = peak_rss_kib(server.child.id());

    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let results = rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..64usize {
            let protocol = if i % 4 == 3 {
                Protocol::Gmw
            } else {
                Protocol::Yao
            };
            let from = (i * 5) % (test.len() - 4);
            let codes: Vec<Vec<u8>> = test.samples[from..from + 2]
                .iter()
                .map(|s| model.quantize_input(&s.pixels))
                .collect();
            let want: Vec<usize> = test.samples[from..from + 2]
                .iter()
                .map(|s| model.predict(&s.pixels))
                .collect();
            let addr = addr.clone();
            tasks.spawn(async move {
                let mut opts = ClientOptions::new(protocol, key);
                // Sessions queue behind each other on two cores: generous timeouts.
                opts.channel = ChannelConfig::default().with_timeouts(Duration::from_secs(120));
                let mut c = Client::connect(&addr, opts).await?;
                let p = c.classify(&codes).await?;
                c.close().await?;
                let got: Vec<usize> = p.iter().map(|p| p.class.unwrap_or(usize::MAX)).collect();
                Ok::<_, veil_protocols::SessionError>((protocol, got == want))
            });
        }
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.push(r.unwrap());
        }
        all
    });
    let secs = t0.elapsed().as_secs_f64();
    let peak = peak_rss_kib(server.child.id());
    drop(server);
    let mut ok = 0;
    for r in &results {
        match r {
            Ok((p, true)) => {
                ok += 1;
                let _ = p;
            }
            Ok((p, false)) => panic!("{p}: wrong classes"),
            Err(e) => panic!("session failed: {e}"),
        }
    }
    assert_eq!(ok, 64);
    eprintln!(
        "64 concurrent sessions (48 Yao, 16 GMW) in {secs:.1} s; server peak RSS {} MiB (idle {} MiB)",
        peak.map(|k| k / 1024).unwrap_or(0),
        idle.map(|k| k / 1024).unwrap_or(0)
    );
    if let Some(peak) = peak {
        assert!(peak < 2 << 20, "server peak RSS {peak} KiB");
    }
}
