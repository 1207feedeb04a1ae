//! `veil link`: a link emulator between separate processes, by `veil_net::link`. Listens,
//! forwards every connection to one address (a `veil serve`), and gives each direction the
//! round-trip time and rate asked for, so that `veil infer` against it measures a protocol as
//! between two machines. The first line printed names the address to connect to.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use veil_harness::link::{parse_duration, parse_rate, Link, LinkProfile};

/// `veil link` flags.
#[derive(Args, Debug)]
pub struct LinkArgs {
    /// Address to listen on (port 0 picks a free port; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Address every connection is forwarded to, such as a `veil serve`.
    #[arg(long)]
    forward: String,
    /// Round-trip time the link adds, half each way: `40ms`, `250us`, `1s`.
    #[arg(long, value_parser = parse_duration)]
    rtt: Duration,
    /// Rate of each direction (of the client-to-server one when --rate-down is given):
    /// `100mbit`, `1gbit`, `512kbit`.
    #[arg(long, value_parser = parse_rate)]
    rate: u64,
    /// Rate from the server to the client, when it differs from --rate.
    #[arg(long, value_parser = parse_rate)]
    rate_down: Option<u64>,
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} names no address"))
}

/// Runs `veil link` until killed.
pub fn run(a: LinkArgs) -> Result<()> {
    super::init_logs();
    let profile = LinkProfile::asymmetric(a.rtt, a.rate, a.rate_down.unwrap_or(a.rate))?;
    let forward = resolve(&a.forward)?;
    let link = Link::start(resolve(&a.listen)?, forward, profile)
        .with_context(|| format!("listening on {}", a.listen))?;
    super::print_banner(&format!(
        "listening on {}\nlink {profile} to {forward}\n",
        link.addr()
    ));
    loop {
        std::thread::park();
    }
}
