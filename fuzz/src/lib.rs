//! Helpers shared by the fuzz targets: a runtime on a paused clock, a peer that plays back
//! fuzzer-chosen frames, and the recording of honest runs as seeds.
//!
//! A target that drives a protocol role reads its input as the frames the peer sends, in the
//! wire format of a TCP channel (a 4-byte little-endian length, then the payload), usually after
//! a few bytes of parameters. The seeds written by [`write_seed`] are recordings of what an
//! honest peer sent, so the fuzzer starts from well-formed sessions.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use veil_net::{Channel, ChannelConfig};

/// Largest frame a target accepts from its input (and the channels' frame limit).
pub const MAX_FRAME: usize = 4 << 20;

/// A current-thread runtime whose clock is paused: when every task waits, time jumps to the
/// next timer, so timeouts fire at once instead of after seconds of real time.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("tokio runtime")
}

/// The channel configuration of the targets: a 4 MiB frame limit and one-second timeouts (of
/// virtual time).
pub fn config() -> ChannelConfig {
    ChannelConfig::default()
        .with_max_frame(MAX_FRAME)
        .with_timeouts(Duration::from_secs(1))
}

/// Splits `data` into frames as a TCP channel would read them; what follows the first bad
/// header or a truncated frame is dropped.
pub fn frames(data: &[u8]) -> Vec<Vec<u8>> {
    veil_net::fuzzing::read_frames(data, MAX_FRAME)
        .into_iter()
        .map_while(Result::ok)
        .collect()
}

/// Encodes frames in the format [`frames`] reads.
pub fn encode_frames(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        out.extend_from_slice(&(f.len() as u32).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}

/// Runs `role` on one end of an in-memory channel while the other end sends `peer_frames`,
/// then reads (and drops) whatever the role sends until it is done.
pub async fn against<F, Fut>(peer_frames: Vec<Vec<u8>>, role: F)
where
    F: FnOnce(Channel) -> Fut,
    Fut: Future<Output = ()>,
{
    let (mine, mut peer) = Channel::memory_pair(config());
    let play = async move {
        for f in &peer_frames {
            if peer.send_bytes(f).await.is_err() {
                break;
            }
        }
        while peer.recv_bytes().await.is_ok() {}
    };
    tokio::join!(role(mine), play);
}

/// Runs two honest roles against each other through a relay and returns the frames `b` sent.
pub async fn record<FA, FutA, FB, FutB>(a: FA, b: FB) -> Vec<Vec<u8>>
where
    FA: FnOnce(Channel) -> FutA,
    FutA: Future<Output = ()>,
    FB: FnOnce(Channel) -> FutB,
    FutB: Future<Output = ()>,
{
    let (a_end, mut a_relay) = Channel::memory_pair(config());
    let (mut b_relay, b_end) = Channel::memory_pair(config());
    let relay = async move {
        let mut recorded = Vec::new();
        let (mut a_done, mut b_done) = (false, false);
        while !(a_done && b_done) {
            tokio::select! {
                r = a_relay.recv_bytes(), if !a_done => match r {
                    Ok(f) => {
                        let _ = b_relay.send_bytes(&f).await;
                    }
                    Err(_) => a_done = true,
                },
                r = b_relay.recv_bytes(), if !b_done => match r {
                    Ok(f) => {
                        let _ = a_relay.send_bytes(&f).await;
                        recorded.push(f);
                    }
                    Err(_) => b_done = true,
                },
            }
            if a_done && !b_done {
                // Nobody reads what b still sends; drain it.
                while let Ok(f) = b_relay.recv_bytes().await {
                    recorded.push(f);
                }
                b_done = true;
            }
            if b_done && !a_done {
                while a_relay.recv_bytes().await.is_ok() {}
                a_done = true;
            }
        }
        recorded
    };
    let ((), (), recorded) = tokio::join!(a(a_end), b(b_end), relay);
    recorded
}

/// Where seeds go: the directory named by `VEIL_FUZZ_SEEDS`, if set (`fuzz/run.sh` points it
/// at the target's corpus).
pub fn seed_dir() -> Option<PathBuf> {
    std::env::var_os("VEIL_FUZZ_SEEDS").map(PathBuf::from)
}

/// Writes one seed file into [`seed_dir`], if set.
pub fn write_seed(name: &str, bytes: &[u8]) {
    if let Some(dir) = seed_dir() {
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join(format!("seed-{name}")), bytes);
    }
}

/// A small CSPRNG with a fixed seed (the targets need randomness, not secrecy).
pub fn rng() -> rand_chacha::ChaCha20Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::seed_from_u64(7)
}
