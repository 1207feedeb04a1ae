//! `veil link` as a process of its own: the round-trip time and the rate measured through it
//! come within 10% of the values asked for.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};

use veil_net::link::probe;

/// The link process, and its standard output held open while it runs.
struct Running(Child, #[allow(dead_code)] BufReader<ChildStdout>);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(forward: SocketAddr, args: &[&str]) -> (Running, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "link",
            "--listen",
            "127.0.0.1:0",
            "--forward",
            &forward.to_string(),
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    (Running(child, out), addr)
}

#[test]
fn veil_link_gives_the_round_trip_time_and_the_rate_asked_for() {
    let server = probe::server().unwrap();
    let (_link, addr) = start(
        server,
        &["--rtt", "20ms", "--rate", "50mbit", "--rate-down", "1gbit"],
    );
    // Up to three tries each: a busy machine only adds to a figure (see veil-net's link test).
    let rtt = (0..3)
        .map(|_| probe::rtts(addr, 15).unwrap()[0].as_secs_f64() * 1e3)
        .find(|rtt| (rtt - 20.0).abs() <= 2.0);
    assert!(rtt.is_some(), "RTT off 20 ms by more than 10% three times");
    let rate = (0..3)
        .map(|_| probe::rate(addr, 50_000_000 / 8 / 2).unwrap() / 1e6)
        .find(|rate| (rate - 50.0).abs() <= 5.0);
    assert!(
        rate.is_some(),
        "rate off 50 Mbit/s by more than 10% three times"
    );
    eprintln!("veil link: RTT {rtt:?} ms (set 20), rate {rate:?} Mbit/s (set 50)");
}

#[test]
fn veil_link_refuses_what_it_cannot_use() {
    for bad in [
        vec!["--rtt", "20", "--rate", "50mbit"],
        vec!["--rtt", "20ms", "--rate", "0mbit"],
        vec!["--rtt", "20ms", "--rate", "fast"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_veil"))
            .args(["link", "--forward", "127.0.0.1:9"])
            .args(&bad)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        assert!(!out.stderr.is_empty(), "{bad:?}");
    }
}
