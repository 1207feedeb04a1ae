//! Shares of `W·r` for a matrix `W` held by one party (the *sender*, the model's owner) and a
//! vector `r ∈ Z_2^k^n` held by the other (the *receiver*), by oblivious transfer.
//!
//! Gilboa's product (CRYPTO 1999, section 3), one OT per bit: for column `i` of `W` and bit
//! `b` of `r_i`, the receiver takes part in a random OT with choice bit `r_i[b]` and gets the
//! key `K_{r_i[b]}` of the sender's pair `(K0, K1)`. The sender expands both keys with AES in
//! counter mode ([`veil_ot::prg::AesPrg`]) into vectors `t = G(K0)` and `v = G(K1)` over the
//! rows that column `i` feeds, and sends `d = v − t − W_{·i}`; the receiver computes `G(K1) − d
//! = t + W_{·i}` when its bit is 1, and `G(K0) = t` when it is 0, so that it holds
//! `t + r_i[b]·W_{·i}`. Scaled by `2^b`, these only matter modulo `2^(k−b)` (ABY, NDSS 2015,
//! section III-C), so the values of bit `b` travel in `⌈(k−b)/8⌉` bytes. Summed over `i` and
//! `b`, the receiver's values minus the sender's `t`s are `Σ_i r_i·W_{·i} = W·r`: the sender
//! keeps `s = −Σ 2^b·t`, the receiver `c = Σ 2^b·(t + r_i[b]·W_{·i})`, and `s + c = W·r` in
//! `Z_2^k`.
//!
//! Which entries of `W` may be non-zero is a public [`Pattern`] (a dense layer: all; a
//! convolution: those its kernel reaches), so the bytes follow the model's architecture and say
//! nothing of its weights. Cost: `n·k` random OTs (16 bytes each, receiver to sender) and
//! `Σ_i |column i| · Σ_b ⌈(k−b)/8⌉` bytes from sender to receiver, in frames of at most
//! [`FRAME_BYTES`] that both sides cut the same way.
//!
//! The receiver's share is uniform whatever `W` is: `d` is masked by `G(K_{1−r_i[b]})`, a key
//! it does not hold. The sender learns nothing: it only sends. Semi-honest, as the OTs
//! underneath (unchecked); a receiver that picks any bits is only one that picks another `r`.

use std::ops::Range;

use veil_net::{Channel, NetError};
use veil_ot::prg::AesPrg;
use veil_ot::{Block, OtError, OtReceiver, OtSender};
use zeroize::Zeroizing;

use crate::ring::{bytes_for, embed, mask};

/// Largest frame of corrections, in bytes.
pub const FRAME_BYTES: usize = 1 << 20;

/// Why a shared product failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArithError {
    /// The channel failed.
    #[error("channel: {0}")]
    Net(#[from] NetError),
    /// Oblivious transfer failed.
    #[error("oblivious transfer: {0}")]
    Ot(#[from] OtError),
    /// The peer sent something this protocol does not allow.
    #[error("protocol violation by peer: {0}")]
    Protocol(String),
    /// The caller's matrix, vector or width does not fit.
    #[error("invalid input: {0}")]
    Input(String),
}

/// Which entries of a `rows × columns` matrix may be non-zero, column by column: public, and
/// the same on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pattern {
    rows: usize,
    columns: Vec<Vec<u32>>,
}

impl Pattern {
    /// Every entry of a `rows × columns` matrix (a dense layer).
    pub fn dense(rows: usize, columns: usize) -> Pattern {
        let all: Vec<u32> = (0..rows as u32).collect();
        Pattern {
            rows,
            columns: vec![all; columns],
        }
    }

    /// The rows each column feeds, each list strictly increasing and below `rows`.
    ///
    /// # Errors
    ///
    /// [`ArithError::Input`] if a list is not strictly increasing or names a row out of range.
    pub fn new(rows: usize, columns: Vec<Vec<u32>>) -> Result<Pattern, ArithError> {
        for (i, c) in columns.iter().enumerate() {
            if c.windows(2).any(|w| w[0] >= w[1]) || c.last().is_some_and(|&r| r as usize >= rows) {
                return Err(ArithError::Input(format!(
                    "column {i}: rows must increase and stay below {rows}"
                )));
            }
        }
        Ok(Pattern { rows, columns })
    }

    /// Rows of the matrix (entries of the product).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns of the matrix (entries of the vector).
    pub fn columns(&self) -> usize {
        self.columns.len()
    }

    /// The rows column `i` feeds.
    pub fn column(&self, i: usize) -> &[u32] {
        &self.columns[i]
    }

    /// Bytes the sender sends for a product in `Z_2^k` (the corrections, without the OTs).
    pub fn correction_bytes(&self, k: u32) -> usize {
        let per_column: usize = (0..k).map(|b| bytes_for(k - b)).sum();
        self.columns.iter().map(|c| c.len() * per_column).sum()
    }

    /// The OT units `(column, bit)`, numbered `i·k + b`, cut into frames of at most
    /// [`FRAME_BYTES`].
    fn frames(&self, k: u32) -> Result<Vec<Range<usize>>, ArithError> {
        let k = k as usize;
        let mut frames = Vec::new();
        let (mut start, mut bytes) = (0, 0);
        for u in 0..self.columns.len() * k {
            let size = self.columns[u / k].len() * bytes_for((k - u % k) as u32);
            if size > FRAME_BYTES {
                return Err(ArithError::Input(format!(
                    "column {} feeds too many rows for one frame",
                    u / k
                )));
            }
            if bytes + size > FRAME_BYTES {
                frames.push(start..u);
                (start, bytes) = (u, 0);
            }
            bytes += size;
        }
        if start < self.columns.len() * k {
            frames.push(start..self.columns.len() * k);
        }
        Ok(frames)
    }
}

fn check_width(k: u32) -> Result<(), ArithError> {
    if (1..=64).contains(&k) {
        Ok(())
    } else {
        Err(ArithError::Input(format!("ring width {k} (1 to 64)")))
    }
}

/// Expands `key` into `n` values of `bits` bits (AES-CTR, two values per block).
fn expand(key: Block, n: usize, bits: u32, out: &mut Vec<u64>, blocks: &mut Vec<Block>) {
    blocks.clear();
    blocks.resize(n.div_ceil(2), Block::ZERO);
    AesPrg::new(key).fill(blocks);
    let m = mask(bits);
    out.clear();
    out.extend((0..n).map(|j| ((blocks[j / 2].0 >> (64 * (j % 2))) as u64) & m));
}

fn put(value: u64, width: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&value.to_le_bytes()[..width]);
}

fn get(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(bytes);
    u64::from_le_bytes(b)
}

/// The sender's side: `weights[i]` holds column `i`'s entries at the rows `pattern.column(i)`
/// names. Returns the sender's share `s` (one value per row) of `W·r` in `Z_2^k`, where `r` is
/// the receiver's vector.
///
/// # Errors
///
/// [`ArithError::Input`] if the weights do not follow the pattern or `k` is not in 1..=64;
/// channel and OT errors.
pub async fn send(
    ch: &mut Channel,
    ot: &mut OtSender,
    pattern: &Pattern,
    weights: &[Vec<i64>],
    k: u32,
) -> Result<Vec<u64>, ArithError> {
    check_width(k)?;
    if weights.len() != pattern.columns()
        || weights
            .iter()
            .zip(&pattern.columns)
            .any(|(w, c)| w.len() != c.len())
    {
        return Err(ArithError::Input(
            "the weights do not follow the pattern".into(),
        ));
    }
    let frames = pattern.frames(k)?;
    let ku = k as usize;
    let mut keys = Zeroizing::new(Vec::new());
    ot.send_random_into(ch, pattern.columns() * ku, &mut keys)
        .await?;
    let mut share = vec![0u64; pattern.rows];
    let (mut t, mut v) = (Zeroizing::new(Vec::new()), Zeroizing::new(Vec::new()));
    let mut blocks = Zeroizing::new(Vec::new());
    for frame in frames {
        let mut bytes = Vec::new();
        for u in frame {
            let (i, b) = (u / ku, (u % ku) as u32);
            let (rows, w) = (&pattern.columns[i], &weights[i]);
            let bits = k - b;
            let width = bytes_for(bits);
            expand(keys[u][0], rows.len(), bits, &mut t, &mut blocks);
            expand(keys[u][1], rows.len(), bits, &mut v, &mut blocks);
            let m = mask(bits);
            for ((&row, &wj), (&tj, &vj)) in rows.iter().zip(w).zip(t.iter().zip(v.iter())) {
                let d = vj.wrapping_sub(tj).wrapping_sub(embed(wj, bits)) & m;
                put(d, width, &mut bytes);
                let s = &mut share[row as usize];
                *s = s.wrapping_sub(tj << b);
            }
        }
        ch.send_bytes_owned(bytes).await?;
    }
    ch.flush().await?;
    let m = mask(k);
    share.iter_mut().for_each(|s| *s &= m);
    Ok(share)
}

/// The receiver's side: `r` holds the vector, one value of `Z_2^k` per column of the pattern.
/// Returns the receiver's share `c` (one value per row), with `s + c = W·r` in `Z_2^k`.
///
/// # Errors
///
/// [`ArithError::Input`] if `r` does not have one reduced value per column or `k` is not in
/// 1..=64; [`ArithError::Protocol`] if a frame of corrections has another size than the
/// pattern gives; channel and OT errors.
pub async fn receive(
    ch: &mut Channel,
    ot: &mut OtReceiver,
    pattern: &Pattern,
    r: &[u64],
    k: u32,
) -> Result<Vec<u64>, ArithError> {
    check_width(k)?;
    if r.len() != pattern.columns() || r.iter().any(|&x| x & !mask(k) != 0) {
        return Err(ArithError::Input(format!(
            "the vector must hold {} values of {k} bits",
            pattern.columns()
        )));
    }
    let frames = pattern.frames(k)?;
    let ku = k as usize;
    let choices: Zeroizing<Vec<bool>> = Zeroizing::new(
        r.iter()
            .flat_map(|&x| (0..k).map(move |b| (x >> b) & 1 == 1))
            .collect(),
    );
    let mut keys = Zeroizing::new(Vec::new());
    ot.receive_random_into(ch, &choices, &mut keys).await?;
    let mut share = vec![0u64; pattern.rows];
    let mut g = Zeroizing::new(Vec::new());
    let mut blocks = Zeroizing::new(Vec::new());
    let mut buf = Vec::new();
    for frame in frames {
        let want: usize = frame
            .clone()
            .map(|u| pattern.columns[u / ku].len() * bytes_for(k - (u % ku) as u32))
            .sum();
        ch.recv_bytes_into(&mut buf).await?;
        if buf.len() != want {
            return Err(ArithError::Protocol(format!(
                "a frame of {} bytes of corrections, expected {want}",
                buf.len()
            )));
        }
        let mut at = 0;
        for u in frame {
            let (i, b) = (u / ku, (u % ku) as u32);
            let rows = &pattern.columns[i];
            let bits = k - b;
            let width = bytes_for(bits);
            let m = mask(bits);
            expand(keys[u], rows.len(), bits, &mut g, &mut blocks);
            // All ones when the choice bit is 1: no branch on the secret.
            let select = 0u64.wrapping_sub(u64::from(choices[u]));
            for (&row, &gj) in rows.iter().zip(g.iter()) {
                let d = get(&buf[at..at + width]);
                at += width;
                // `t + W` when the bit is 1 (`G(K1) − d`), `t` when it is 0 (`G(K0)`).
                let value = gj.wrapping_sub(d & select) & m;
                let c = &mut share[row as usize];
                *c = c.wrapping_add(value << b);
            }
        }
    }
    let m = mask(k);
    share.iter_mut().for_each(|c| *c &= m);
    Ok(share)
}
