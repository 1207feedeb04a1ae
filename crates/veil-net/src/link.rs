//! Link emulation: a proxy that gives a loopback connection the round-trip time and the
//! bandwidth of a real network, so that Veil's protocols can be compared where rounds and
//! bytes cost what they cost between two machines.
//!
//! The kernel's `netem` is not always available (an unprivileged container has no `tc`), so the
//! shaping is done here, in user space, as a TCP proxy between the two parties: the same code
//! serves `veil bench` in one process and `veil link` between separate processes, and any
//! transport, sealed or not, runs through it unchanged.
//!
//! # Model
//!
//! Each direction is a first-in first-out link of rate `R` bits per second and one-way delay
//! `D` (half the round-trip time), as a router's queue in front of a wire: bytes read from the
//! sending side at time `t` *leave* at `d = max(t, d_prev) + 8·len / R`, where `d_prev` is when
//! the previous bytes left (serialization behind whatever is queued), and are *written* to the
//! receiving side at `d + D` (propagation). What is queued is bounded: past the link's
//! bandwidth-delay product plus 4 MiB the proxy stops reading, and the sender's TCP window
//! closes, as behind a real bottleneck. The round-trip time of a short message is `2·D` plus
//! the loopback's own (tens of microseconds; the proxy takes its own cost off `D`); a bulk
//! transfer runs at `R`.
//!
//! Times are kept with a thread per direction and a sleep that hands over to a short spin for
//! its last 200 µs: an async timer's millisecond granularity would double a 1 ms round trip.
//! `tests/link.rs` measures both figures within 10% of the set values from 1 to 100 ms and from
//! 10 Mbit/s to 1 Gbit/s.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Bytes the proxy reads and forwards at once.
const CHUNK: usize = 16 << 10;
/// Bytes a direction may hold beyond its bandwidth-delay product before it stops reading.
const QUEUE_SLACK: u64 = 4 << 20;
/// Longest a direction may hold, whatever its rate and delay.
const QUEUE_MAX: u64 = 256 << 20;
/// What one pass through the proxy costs by itself on an idle machine (two thread hand-offs
/// and a write): taken off each direction's delay, so that a short message's round trip is
/// the one set rather than that plus the proxy's own.
const HOP_COST: Duration = Duration::from_micros(35);
/// Below this much waiting left, the writer spins instead of sleeping (a sleep overshoots by
/// 50 to 100 µs).
const SPIN: Duration = Duration::from_micros(200);

/// A link's figures: round-trip time and rate each way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkProfile {
    /// Round-trip time of a short message (each direction delays by half of it).
    pub rtt: Duration,
    /// Client-to-server rate, in bits per second.
    pub up_bits_per_s: u64,
    /// Server-to-client rate, in bits per second.
    pub down_bits_per_s: u64,
}

/// A link description that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("link: {0}")]
pub struct LinkError(pub String);

impl LinkProfile {
    /// A link of round-trip time `rtt` and `bits_per_s` each way.
    ///
    /// # Errors
    ///
    /// A rate of zero, or a round-trip time above ten seconds.
    pub fn new(rtt: Duration, bits_per_s: u64) -> Result<LinkProfile, LinkError> {
        LinkProfile::asymmetric(rtt, bits_per_s, bits_per_s)
    }

    /// A link with a different rate each way.
    ///
    /// # Errors
    ///
    /// As [`LinkProfile::new`].
    pub fn asymmetric(rtt: Duration, up: u64, down: u64) -> Result<LinkProfile, LinkError> {
        if up == 0 || down == 0 {
            return Err(LinkError("a rate of zero".into()));
        }
        if rtt > Duration::from_secs(10) {
            return Err(LinkError(format!("a round-trip time of {rtt:?}")));
        }
        Ok(LinkProfile {
            rtt,
            up_bits_per_s: up,
            down_bits_per_s: down,
        })
    }

    /// The named profiles: `lan` (0.5 ms, 1 Gbit/s), `wan` (40 ms, 100 Mbit/s), `mobile`
    /// (80 ms, 20 Mbit/s).
    pub fn named(name: &str) -> Option<LinkProfile> {
        let (rtt_us, mbit) = match name {
            "lan" => (500, 1000),
            "wan" => (40_000, 100),
            "mobile" => (80_000, 20),
            _ => return None,
        };
        Some(LinkProfile {
            rtt: Duration::from_micros(rtt_us),
            up_bits_per_s: mbit * 1_000_000,
            down_bits_per_s: mbit * 1_000_000,
        })
    }

    /// A named profile, or `RTT_MS,MBIT` (`40,100`: 40 ms and 100 Mbit/s each way).
    ///
    /// # Errors
    ///
    /// Anything else, with the accepted forms.
    pub fn parse(s: &str) -> Result<LinkProfile, LinkError> {
        if let Some(p) = LinkProfile::named(s) {
            return Ok(p);
        }
        let bad = || {
            LinkError(format!(
                "{s:?}: expected lan, wan, mobile or RTT_MS,MBIT (such as 40,100)"
            ))
        };
        let (rtt, rate) = s.split_once(',').ok_or_else(bad)?;
        let rtt: f64 = rtt.trim().parse().map_err(|_| bad())?;
        let rate: f64 = rate.trim().parse().map_err(|_| bad())?;
        if !(rtt.is_finite() && rate.is_finite() && rtt >= 0.0 && rate > 0.0) {
            return Err(bad());
        }
        LinkProfile::new(
            Duration::from_secs_f64(rtt / 1e3),
            (rate * 1e6).round() as u64,
        )
    }

    /// Half the round-trip time: each direction's delay.
    pub fn one_way(&self) -> Duration {
        self.rtt / 2
    }
}

impl std::fmt::Display for LinkProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mbit = |b: u64| b as f64 / 1e6;
        write!(f, "{} ms RTT, ", self.rtt.as_secs_f64() * 1e3)?;
        if self.up_bits_per_s == self.down_bits_per_s {
            write!(f, "{} Mbit/s", mbit(self.up_bits_per_s))
        } else {
            write!(
                f,
                "{} Mbit/s up, {} Mbit/s down",
                mbit(self.up_bits_per_s),
                mbit(self.down_bits_per_s)
            )
        }
    }
}

/// A duration written `40ms`, `1.5ms`, `250us` or `2s`.
///
/// # Errors
///
/// Another form, a negative or non-finite number.
pub fn parse_duration(s: &str) -> Result<Duration, LinkError> {
    let s = s.trim();
    let (num, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return Err(LinkError(format!(
            "{s:?}: a duration such as 40ms, 250us or 2s"
        )));
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale <= 3600.0 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(LinkError(format!(
            "{s:?}: a duration such as 40ms, 250us or 2s"
        ))),
    }
}

/// A rate written `100mbit`, `1gbit`, `512kbit` or `2000000bit`, in bits per second.
///
/// # Errors
///
/// Another form, or a rate that is not positive.
pub fn parse_rate(s: &str) -> Result<u64, LinkError> {
    let lower = s.trim().to_ascii_lowercase();
    let (num, scale) = [("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1.0)]
        .iter()
        .find_map(|(unit, scale)| lower.strip_suffix(unit).map(|n| (n.to_string(), *scale)))
        .ok_or_else(|| LinkError(format!("{s:?}: a rate such as 100mbit, 1gbit or 512kbit")))?;
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale >= 1.0 && v * scale <= 1e12 => {
            Ok((v * scale).round() as u64)
        }
        _ => Err(LinkError(format!(
            "{s:?}: a rate such as 100mbit, 1gbit or 512kbit"
        ))),
    }
}

/// A running link: a listening socket whose every connection is forwarded to one address
/// through the emulated link. Stops accepting when dropped; connections already forwarded run
/// until either side closes.
pub struct Link {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Link {
    /// Listens on `listen` (port 0 picks a free one) and forwards each connection to `forward`
    /// through a link of `profile`.
    ///
    /// # Errors
    ///
    /// The listening socket cannot be bound.
    pub fn start(
        listen: SocketAddr,
        forward: SocketAddr,
        profile: LinkProfile,
    ) -> std::io::Result<Link> {
        let listener = TcpListener::bind(listen)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        thread::Builder::new()
            .name("veil-link-accept".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    match conn {
                        Ok(client) => {
                            if let Err(e) = connect_through(client, forward, profile) {
                                tracing::warn!(error = %e, %forward, "link: could not forward");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "link: accept failed"),
                    }
                }
            })?;
        Ok(Link { addr, stop })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// Connects to `forward` and starts both directions between it and `client`.
fn connect_through(
    client: TcpStream,
    forward: SocketAddr,
    profile: LinkProfile,
) -> std::io::Result<()> {
    let server = TcpStream::connect_timeout(&forward, Duration::from_secs(10))?;
    for s in [&client, &server] {
        s.set_nodelay(true)?;
    }
    let delay = profile.one_way();
    pump(
        client.try_clone()?,
        server.try_clone()?,
        profile.up_bits_per_s,
        delay,
    )?;
    pump(server, client, profile.down_bits_per_s, delay)?;
    Ok(())
}

/// One direction: a reader thread that stamps each chunk with the time it is due at the far
/// side, and a writer thread that writes it then.
fn pump(from: TcpStream, to: TcpStream, bits_per_s: u64, delay: Duration) -> std::io::Result<()> {
    let bdp = (bits_per_s as f64 / 8.0 * delay.as_secs_f64() * 2.0) as u64;
    let frames = ((bdp + QUEUE_SLACK).min(QUEUE_MAX) / CHUNK as u64).max(16) as usize;
    let (tx, rx) = sync_channel::<Option<(Instant, Vec<u8>)>>(frames);
    let from_w = from.try_clone()?;
    thread::Builder::new()
        .name("veil-link-read".into())
        .spawn(move || read_side(from, tx, bits_per_s, delay))?;
    thread::Builder::new()
        .name("veil-link-write".into())
        .spawn(move || write_side(to, from_w, rx))?;
    Ok(())
}

fn read_side(
    mut from: TcpStream,
    tx: SyncSender<Option<(Instant, Vec<u8>)>>,
    bits_per_s: u64,
    delay: Duration,
) {
    let mut buf = vec![0u8; CHUNK];
    let mut left = Instant::now();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let now = Instant::now();
        let serialize = Duration::from_secs_f64(n as f64 * 8.0 / bits_per_s as f64);
        left = left.max(now) + serialize;
        let due = left + delay.saturating_sub(HOP_COST);
        if tx.send(Some((due, buf[..n].to_vec()))).is_err() {
            // The writer failed: the far side is gone.
            let _ = from.shutdown(Shutdown::Both);
            return;
        }
    }
    // End of stream (or an error) on this side: the far side sees it after the bytes in flight.
    let _ = tx.send(None);
}

fn write_side(mut to: TcpStream, from: TcpStream, rx: Receiver<Option<(Instant, Vec<u8>)>>) {
    while let Ok(Some((due, bytes))) = rx.recv() {
        wait_until(due);
        if to.write_all(&bytes).is_err() {
            // The far side is gone: stop reading from this one too.
            let _ = from.shutdown(Shutdown::Read);
            let _ = to.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Sleeps until `due`, spinning for the last [`SPIN`].
fn wait_until(due: Instant) {
    loop {
        let now = Instant::now();
        if now >= due {
            return;
        }
        let left = due - now;
        if left > SPIN {
            thread::sleep(left - SPIN);
        } else {
            // A busy wait, not a yield: on a loaded machine a yield hands the core to another
            // thread for a whole time slice (milliseconds).
            std::hint::spin_loop();
        }
    }
}

/// Measuring a link from its two ends: a probe server to put behind it, and the two figures
/// of [`LinkProfile`] measured through it.
pub mod probe {
    use super::*;

    /// Starts a probe server on a free loopback port, for the life of the process. A
    /// connection's first byte picks its mode: `e` echoes every byte back; `s` reads until the
    /// end of the stream and answers, in 16 bytes, the bytes received after its first read and
    /// the nanoseconds from that read to the last (little-endian `u64`s).
    ///
    /// # Errors
    ///
    /// The socket cannot be bound.
    pub fn server() -> std::io::Result<SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        thread::Builder::new()
            .name("veil-link-probe".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let _ = thread::Builder::new()
                        .name("veil-link-probe-conn".into())
                        .spawn(move || serve(conn));
                }
            })?;
        Ok(addr)
    }

    fn serve(mut conn: TcpStream) -> std::io::Result<()> {
        conn.set_nodelay(true)?;
        let mut mode = [0u8; 1];
        conn.read_exact(&mut mode)?;
        let mut buf = vec![0u8; 64 << 10];
        match mode[0] {
            b'e' => loop {
                let n = conn.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                conn.write_all(&buf[..n])?;
            },
            b's' => {
                let (mut first, mut last, mut after_first) =
                    (None::<Instant>, Instant::now(), 0u64);
                loop {
                    let n = conn.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    last = Instant::now();
                    match first {
                        None => first = Some(last),
                        Some(_) => after_first += n as u64,
                    }
                }
                let nanos = first.map_or(0, |f| (last - f).as_nanos() as u64);
                let mut answer = [0u8; 16];
                answer[..8].copy_from_slice(&after_first.to_le_bytes());
                answer[8..].copy_from_slice(&nanos.to_le_bytes());
                conn.write_all(&answer)
            }
            _ => Ok(()),
        }
    }

    /// The median round-trip time of `samples` 64-byte messages through `addr` to a probe
    /// server.
    ///
    /// # Errors
    ///
    /// The connection fails.
    pub fn rtt(addr: SocketAddr, samples: usize) -> std::io::Result<Duration> {
        let times = rtts(addr, samples)?;
        Ok(times[times.len() / 2])
    }

    /// The round-trip times of `samples` (at least one) 64-byte messages through `addr` to a
    /// probe server, shortest first. On a busy machine the scheduler only ever adds to a
    /// sample, so the shortest is the link's own.
    ///
    /// # Errors
    ///
    /// The connection fails.
    pub fn rtts(addr: SocketAddr, samples: usize) -> std::io::Result<Vec<Duration>> {
        let mut conn = TcpStream::connect(addr)?;
        conn.set_nodelay(true)?;
        conn.write_all(b"e")?;
        let msg = [7u8; 64];
        let mut back = [0u8; 64];
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples.max(1) {
            let t = Instant::now();
            conn.write_all(&msg)?;
            conn.read_exact(&mut back)?;
            times.push(t.elapsed());
        }
        times.sort();
        Ok(times)
    }

    /// The rate, in bits per second, at which `bytes` sent through `addr` reach a probe server
    /// (measured at the server, from its first read to its last).
    ///
    /// # Errors
    ///
    /// The connection fails, or too little arrived after the first read to measure.
    pub fn rate(addr: SocketAddr, bytes: usize) -> std::io::Result<f64> {
        let mut conn = TcpStream::connect(addr)?;
        conn.set_nodelay(true)?;
        conn.write_all(b"s")?;
        let chunk = vec![0x5au8; 64 << 10];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            conn.write_all(&chunk[..n])?;
            left -= n;
        }
        conn.shutdown(Shutdown::Write)?;
        let mut answer = [0u8; 16];
        conn.read_exact(&mut answer)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(&answer[..8]);
        let after_first = u64::from_le_bytes(word);
        word.copy_from_slice(&answer[8..]);
        let nanos = u64::from_le_bytes(word);
        if nanos == 0 || after_first == 0 {
            return Err(std::io::Error::other("too little data to measure a rate"));
        }
        Ok(after_first as f64 * 8.0 / (nanos as f64 / 1e9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_durations_and_rates_parse_or_say_what_is_expected() {
        let wan = LinkProfile::parse("wan").unwrap();
        assert_eq!(wan.rtt, Duration::from_millis(40));
        assert_eq!(wan.up_bits_per_s, 100_000_000);
        assert_eq!(
            LinkProfile::parse("lan").unwrap().rtt,
            Duration::from_micros(500)
        );
        let p = LinkProfile::parse("12.5, 30").unwrap();
        assert_eq!(p.rtt, Duration::from_micros(12_500));
        assert_eq!(p.down_bits_per_s, 30_000_000);
        for bad in ["", "wan2", "40", "40,0", "-1,10", "x,10", "40,inf"] {
            assert!(LinkProfile::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_duration("40ms").unwrap(), Duration::from_millis(40));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        for bad in ["40", "ms", "-3ms", "NaNms", "1e9s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rate("100mbit").unwrap(), 100_000_000);
        assert_eq!(parse_rate("1Gbit").unwrap(), 1_000_000_000);
        assert_eq!(parse_rate("512kbit").unwrap(), 512_000);
        for bad in ["100", "0mbit", "mbit", "-5mbit", "0.1bit"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(LinkProfile::new(Duration::from_secs(11), 1).is_err());
        assert!(LinkProfile::asymmetric(Duration::ZERO, 1, 0).is_err());
        assert_eq!(wan.to_string(), "40 ms RTT, 100 Mbit/s");
    }
}
