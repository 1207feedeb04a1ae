//! OT extension: Ishai, Kilian, Nissim and Petrank, "Extending oblivious transfers
//! efficiently" (CRYPTO 2003, section 3), semi-honest, with κ = 128.
//!
//! Setup (roles reversed): the extension *sender* picks `Δ ∈ {0,1}^128` and learns, by 128
//! random base OTs in which it is the receiver with choice bits `Δ_i`, the seed `k_i^{Δ_i}` of
//! each pair `(k_i^0, k_i^1)` the extension *receiver* holds.
//!
//! Extension of `m` OTs with choice bits `r`: the receiver expands `t^i = G(k_i^0)` and sends
//! `u^i = t^i ⊕ G(k_i^1) ⊕ r` for each of the 128 columns (16 bytes per OT, the whole
//! communication); the sender computes `q^i = G(k_i^{Δ_i}) ⊕ Δ_i·u^i = t^i ⊕ Δ_i·r`. After
//! transposing, row `j` gives `q_j = t_j ⊕ r_j·Δ`:
//!
//! - **correlated OT** (what garbled circuits need): the sender holds `q_j` and `q_j ⊕ Δ`, the
//!   receiver `t_j`, the one of the two selected by `r_j`;
//! - **random OT**: both hash with `tccr(j, ·)` (Guo, Katz, Wang and Yu 2019, section 7.4), the
//!   OT index as tweak: the sender holds `H(j, q_j)` and `H(j, q_j ⊕ Δ)`, the receiver
//!   `H(j, t_j)`;
//! - **chosen-message OT**: the sender masks each message with a pad expanded from its random
//!   OT key and sends both; the receiver can unmask only the one it chose.
//!
//! **Malicious receivers.** Plain IKNP trusts the receiver to use one choice vector in all 128
//! columns; a receiver that flips bit `j` of column `i` of `u` learns, from whether its OT
//! output is right, the bit `Δ_i` (Keller, Orsini and Scholl 2015, section 1). Both roles can
//! be switched to the KOS consistency check ([`crate::kos`], [`IknpSender::with_kos_check`],
//! [`IknpReceiver::with_kos_check`]): every call then carries [`crate::kos::PAD_OTS`] or a few
//! more extra OTs and two
//! more messages (the sender's hash key after the columns, the receiver's 48-byte answer), and
//! a receiver that deviates fails with [`OtError::ConsistencyCheck`] before the sender uses any
//! output of the call. Random and chosen-message OT hash the checked rows, so the few bits of
//! `Δ` a cheating receiver may guess without being caught do not reveal the other message.
//!
//! `G` is AES-CTR under the seed ([`crate::prg`]), transposition is [`crate::transpose`].
//! The math lives in the synchronous `*_core` functions; the async methods only move their
//! bytes over a [`Channel`], in frames of at most [`CHUNK_OTS`] OTs, so the receiver streams
//! while the sender works.

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use subtle::ConstantTimeEq;
use veil_net::Channel;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aes_hash::fixed_key_aes;
use crate::base::{BaseOtReceiver, BaseOtSender, ChouOrlandi};
use crate::block::{pack_bits_blocks, Block};
use crate::error::OtError;
use crate::kos::{ColumnDigest, ANSWER_BYTES};
use crate::prg::AesPrg;
use crate::transpose::transpose128;

/// Security parameter: number of base OTs and width of each OT row.
pub const KAPPA: usize = 128;
/// OTs per frame of the extension matrix (a 1 MiB frame).
pub const CHUNK_OTS: usize = 1 << 16;
/// Largest number of OTs in one call (a bound on what a peer can make us compute).
pub const MAX_OTS_PER_CALL: usize = 1 << 30;

const CHUNK_BLOCKS: usize = CHUNK_OTS / 128;

/// The extension sender: holds `Δ` and one seed per column.
///
/// Zeroized on drop: `Δ`, the seeds (as AES round keys, erased by `aes`) and the column matrix
/// `q` of the last chunk, kept as scratch so that no chunk leaves one behind.
pub struct IknpSender {
    delta: Block,
    prgs: Vec<AesPrg>,
    /// Index of the next OT, the tweak of its hash.
    next_index: u128,
    /// The columns `q^i` of the chunk being extended, reused from chunk to chunk.
    scratch: Vec<Block>,
    /// With the KOS check: the generator of the check's keys.
    check: Option<ChaCha20Rng>,
}

/// The extension receiver: holds both seeds of every column.
///
/// Zeroized on drop: the seeds (AES round keys) and the column matrix `t` of the last chunk.
pub struct IknpReceiver {
    prgs: Vec<[AesPrg; 2]>,
    next_index: u128,
    /// The columns `t^i` of the chunk being extended, reused from chunk to chunk.
    scratch: Vec<Block>,
    /// With the KOS check: the generator of the padding OTs' choice bits.
    check: Option<ChaCha20Rng>,
}

impl Zeroize for IknpSender {
    /// Erases `Δ` and the column scratch, and drops the generators (whose AES round keys the
    /// `aes` crate zeroizes). The sender is unusable afterwards.
    fn zeroize(&mut self) {
        self.delta.zeroize();
        crate::block::zeroize_blocks(&mut self.scratch);
        self.prgs.clear();
        if let Some(rng) = self.check.as_mut() {
            crate::erase_rng(rng);
        }
    }
}

impl Drop for IknpSender {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for IknpSender {}

impl Zeroize for IknpReceiver {
    /// Erases the column scratch and drops the generators (AES round keys zeroized by `aes`).
    /// The receiver is unusable afterwards.
    fn zeroize(&mut self) {
        crate::block::zeroize_blocks(&mut self.scratch);
        self.prgs.clear();
        if let Some(rng) = self.check.as_mut() {
            crate::erase_rng(rng);
        }
    }
}

impl Drop for IknpReceiver {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for IknpReceiver {}

fn check_count(n: usize) -> Result<(), OtError> {
    if n > MAX_OTS_PER_CALL {
        return Err(OtError::InvalidArgument(format!(
            "{n} OTs in one call (at most {MAX_OTS_PER_CALL})"
        )));
    }
    Ok(())
}

/// Transposes `cols` (128 columns of `nb` blocks each, column-major) into rows, appending the
/// first `take` rows to `out`.
fn columns_to_rows(cols: &[Block], nb: usize, take: usize, out: &mut Vec<Block>) {
    let mut m = [Block::ZERO; 128];
    let mut left = take;
    for b in 0..nb {
        for i in 0..KAPPA {
            m[i] = cols[i * nb + b];
        }
        transpose128(&mut m);
        let k = left.min(128);
        out.extend_from_slice(&m[..k]);
        left -= k;
    }
}

impl IknpSender {
    /// Sets up with Chou-Orlandi base OTs and a random `Δ`.
    pub async fn setup<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
    ) -> Result<Self, OtError> {
        let delta = Block::random(rng);
        Self::setup_with_delta(ch, rng, delta).await
    }

    /// Sets up with Chou-Orlandi base OTs and the caller's `Δ` (a garbler passes its free-XOR
    /// offset, whose least significant bit is 1). `Δ` must be secret and uniformly random but
    /// for such public constraints.
    pub async fn setup_with_delta<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
        delta: Block,
    ) -> Result<Self, OtError> {
        let mut base = ChouOrlandi::new(ChaCha20Rng::from_rng(rng));
        Self::setup_with_base(ch, &mut base, delta).await
    }

    /// Sets up with any base OT.
    pub async fn setup_with_base<B: BaseOtReceiver>(
        ch: &mut Channel,
        base: &mut B,
        delta: Block,
    ) -> Result<Self, OtError> {
        let choices: Vec<bool> = (0..KAPPA).map(|i| delta.bit(i)).collect();
        let mut seeds = base.receive_random(ch, &choices).await?;
        if seeds.len() != KAPPA {
            return Err(OtError::Malformed(format!(
                "base OT gave {} seeds",
                seeds.len()
            )));
        }
        let prgs = seeds.iter().map(|s| AesPrg::new(*s)).collect();
        seeds.zeroize();
        Ok(IknpSender {
            delta,
            prgs,
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        })
    }

    /// Turns on the KOS consistency check for every later call (the receiver must do the
    /// same): a receiver that deviates is caught before any output of the call is returned.
    /// `rng` seeds the generator of the check's keys.
    #[must_use]
    pub fn with_kos_check<R: RngCore + CryptoRng>(mut self, rng: &mut R) -> Self {
        self.check = Some(ChaCha20Rng::from_rng(rng));
        self
    }

    /// Whether calls are checked against a malicious receiver.
    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    /// The correlation `Δ`.
    pub fn delta(&self) -> Block {
        self.delta
    }

    /// Computes the rows `q_j` of one chunk from the receiver's `u` columns (`128 * nb`
    /// blocks, column-major), appending the first `take` to `out`.
    pub fn extend_core(
        &mut self,
        u: &[Block],
        nb: usize,
        take: usize,
        out: &mut Vec<Block>,
    ) -> Result<(), OtError> {
        if u.len() != KAPPA * nb || take > 128 * nb {
            return Err(OtError::Malformed(format!(
                "extension chunk of {} blocks, expected {}",
                u.len(),
                KAPPA * nb
            )));
        }
        // Every block of the scratch is overwritten below: resizing is all it needs.
        let q = &mut self.scratch;
        q.resize(KAPPA * nb, Block::ZERO);
        for i in 0..KAPPA {
            let col = &mut q[i * nb..(i + 1) * nb];
            self.prgs[i].fill(col);
            // `Δ_i` is secret: mask instead of branching on it.
            let mask = Block::ONES.and_bit(self.delta.bit(i));
            col.iter_mut()
                .zip(&u[i * nb..(i + 1) * nb])
                .for_each(|(c, x)| *c ^= *x & mask);
        }
        columns_to_rows(q, nb, take, out);
        Ok(())
    }

    /// `n` correlated OTs: returns `q_j`; the receiver gets `q_j ⊕ r_j·Δ`. With the KOS
    /// check, fails with [`OtError::ConsistencyCheck`] when the receiver deviated.
    pub async fn send_correlated(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> Result<Vec<Block>, OtError> {
        check_count(n)?;
        // With the check, the padding OTs follow the real ones.
        let (total, mut digest) = match self.check {
            Some(_) => (n + crate::kos::padding(n), Some(ColumnDigest::new())),
            None => (n, None),
        };
        let mut out = Vec::with_capacity(total);
        let mut done = 0;
        let mut buf = Vec::new();
        let mut u = Vec::new();
        while done < total {
            let take = (total - done).min(CHUNK_OTS);
            let nb = take.div_ceil(128);
            ch.recv_bytes_into(&mut buf).await?;
            if buf.len() != KAPPA * nb * Block::BYTES {
                return Err(OtError::Malformed(format!(
                    "extension chunk of {} bytes, expected {} for {take} OTs",
                    buf.len(),
                    KAPPA * nb * Block::BYTES
                )));
            }
            u.clear();
            u.extend(buf.chunks_exact(16).map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Block::from_bytes(a)
            }));
            if let Some(d) = digest.as_mut() {
                d.update_bytes(&buf);
            }
            self.extend_core(&u, nb, take, &mut out)?;
            done += take;
        }
        if let Some(d) = digest {
            let verdict = self.verify(ch, &out, d).await;
            // The padding rows are the check's only; they go whatever the verdict.
            crate::block::wipe_blocks(&mut out[n..]);
            out.truncate(n);
            if let Err(e) = verdict {
                crate::block::zeroize_blocks(&mut out);
                return Err(e);
            }
        }
        self.next_index = self.next_index.wrapping_add(n as u128);
        Ok(out)
    }

    /// The sender's half of the KOS check on the rows `q` of one call (padding included):
    /// sends the hash key, reads `X`, `T` and the checksum of the columns, and compares both
    /// equations in constant time, with one error for either failure.
    async fn verify(
        &mut self,
        ch: &mut Channel,
        q: &[Block],
        digest: ColumnDigest,
    ) -> Result<(), OtError> {
        let rng = self
            .check
            .as_mut()
            .ok_or_else(|| OtError::InvalidArgument("no check configured".into()))?;
        let key = Block::random(rng);
        ch.send_bytes(&key.to_bytes()).await?;
        ch.flush().await?;
        // Hash the rows while the receiver hashes its own.
        let q_hash = crate::kos::rows_hash(key, q);
        let answer = ch.recv_bytes().await?;
        let fields = crate::block::blocks_from_bytes(&answer)
            .filter(|_| answer.len() == ANSWER_BYTES)
            .ok_or_else(|| {
                OtError::Malformed(format!(
                    "consistency answer of {} bytes, expected {ANSWER_BYTES}",
                    answer.len()
                ))
            })?;
        let (x, t, d) = (fields[0], fields[1], fields[2]);
        let lhs = q_hash ^ t;
        let rhs = crate::kos::dot(self.delta, x);
        let ok = lhs.ct_eq(&rhs) & d.ct_eq(&digest.finalize());
        if bool::from(ok) {
            Ok(())
        } else {
            Err(OtError::ConsistencyCheck)
        }
    }

    /// `n` random OTs: returns the pairs `(H(j, q_j), H(j, q_j ⊕ Δ))`.
    pub async fn send_random(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> Result<Vec<[Block; 2]>, OtError> {
        let first = self.next_index;
        let q = self.send_correlated(ch, n).await?;
        Ok(self.hash_pairs(first, q))
    }

    /// Hashes the rows into key pairs; the intermediate rows are erased, only the returned
    /// pairs (the caller's) remain.
    fn hash_pairs(&self, first: u128, q: Vec<Block>) -> Vec<[Block; 2]> {
        let mut k0 = Zeroizing::new(q);
        let mut k1: Zeroizing<Vec<Block>> =
            Zeroizing::new(k0.iter().map(|x| *x ^ self.delta).collect());
        fixed_key_aes().tccr_many_seq(first, &mut k0);
        fixed_key_aes().tccr_many_seq(first, &mut k1);
        k0.iter().zip(k1.iter()).map(|(a, b)| [*a, *b]).collect()
    }

    /// Chosen-message OT: the receiver learns `msgs[j].0` or `msgs[j].1` by its choice bit.
    /// The two messages of a pair must have the same length; lengths are public.
    pub async fn send_chosen(
        &mut self,
        ch: &mut Channel,
        msgs: &[(&[u8], &[u8])],
    ) -> Result<(), OtError> {
        let keys = Zeroizing::new(self.send_random(ch, msgs.len()).await?);
        let first = self.next_index - msgs.len() as u128;
        for frame in chosen_frames(msgs)? {
            let payload = encrypt_chosen_core(
                &keys[frame.clone()],
                first + frame.start as u128,
                &msgs[frame],
            );
            ch.send_bytes(&payload).await?;
        }
        ch.flush().await?;
        Ok(())
    }
}

/// Reads one 16-byte frame.
async fn recv_block(ch: &mut Channel, what: &str) -> Result<Block, OtError> {
    let bytes = ch.recv_bytes().await?;
    let arr: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| OtError::Malformed(format!("{what} of {} bytes", bytes.len())))?;
    Ok(Block::from_bytes(arr))
}

/// Splits chosen-message OTs into frames of at most about 8 MiB of payload.
fn chosen_frames(msgs: &[(&[u8], &[u8])]) -> Result<Vec<std::ops::Range<usize>>, OtError> {
    const FRAME_BYTES: usize = 8 << 20;
    let mut frames = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (j, (m0, m1)) in msgs.iter().enumerate() {
        if m0.len() != m1.len() {
            return Err(OtError::InvalidArgument(format!(
                "chosen OT {j}: messages of {} and {} bytes (a pair must have one length)",
                m0.len(),
                m1.len()
            )));
        }
        if m0.len() > u32::MAX as usize / 4 {
            return Err(OtError::InvalidArgument(format!(
                "chosen OT {j}: message too long"
            )));
        }
        let cost = 4 + 2 * m0.len();
        if j > start && bytes + cost > FRAME_BYTES {
            frames.push(start..j);
            start = j;
            bytes = 0;
        }
        bytes += cost;
    }
    if start < msgs.len() {
        frames.push(start..msgs.len());
    }
    Ok(frames)
}

/// The pad of chosen-message OT `index` under random-OT key `key`, `len` bytes: the key
/// itself for up to 16 bytes, else the output of ChaCha20 keyed by key and index. The pad is
/// erased when dropped.
fn pad(key: Block, index: u128, len: usize) -> Zeroizing<Vec<u8>> {
    if len <= 16 {
        return Zeroizing::new(key.to_bytes()[..len].to_vec());
    }
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&key.to_bytes());
    seed[16..].copy_from_slice(&index.to_le_bytes());
    let mut rng = ChaCha20Rng::from_seed(seed);
    seed.zeroize();
    let mut out = Zeroizing::new(vec![0u8; len]);
    rng.fill_bytes(&mut out);
    crate::erase_rng(&mut rng);
    out
}

/// The sender's frame for chosen-message OTs `first ..`: each pair's length (u32 LE), then
/// for each pair `m0 ⊕ pad(k0)` and `m1 ⊕ pad(k1)`.
pub fn encrypt_chosen_core(keys: &[[Block; 2]], first: u128, msgs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(msgs.len() as u32).to_le_bytes());
    for (m0, _) in msgs {
        out.extend_from_slice(&(m0.len() as u32).to_le_bytes());
    }
    for (j, ((m0, m1), k)) in msgs.iter().zip(keys).enumerate() {
        let idx = first + j as u128;
        for (m, key) in [(m0, k[0]), (m1, k[1])] {
            let p = pad(key, idx, m.len());
            out.extend(m.iter().zip(p.iter()).map(|(a, b)| a ^ b));
        }
    }
    out
}

/// The receiver's side of [`encrypt_chosen_core`]: unmasks the chosen message of each pair.
pub fn decrypt_chosen_core(
    keys: &[Block],
    choices: &[bool],
    first: u128,
    frame: &[u8],
) -> Result<Vec<Vec<u8>>, OtError> {
    let bad = |what: String| OtError::Malformed(format!("chosen OT frame: {what}"));
    let count_bytes = frame
        .get(..4)
        .ok_or_else(|| bad("truncated count".into()))?;
    let count = u32::from_le_bytes([
        count_bytes[0],
        count_bytes[1],
        count_bytes[2],
        count_bytes[3],
    ]) as usize;
    if count != keys.len() || count != choices.len() {
        return Err(bad(format!("{count} OTs, expected {}", keys.len())));
    }
    let lens_end = 4 + 4 * count;
    let lens_bytes = frame
        .get(4..lens_end)
        .ok_or_else(|| bad("truncated lengths".into()))?;
    let lens: Vec<usize> = lens_bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let total: u128 = lens.iter().map(|&l| 2 * l as u128).sum();
    if total != (frame.len() - lens_end) as u128 {
        return Err(bad(format!(
            "{} payload bytes for messages totalling {total}",
            frame.len() - lens_end
        )));
    }
    let mut pos = lens_end;
    let mut out = Vec::with_capacity(count);
    for (j, &len) in lens.iter().enumerate() {
        // The choice bit is secret: read both ciphertexts and select with a mask rather than
        // indexing by it.
        let mask = 0u8.wrapping_sub(u8::from(choices[j]));
        let (c0, c1) = frame[pos..pos + 2 * len].split_at(len);
        let p = pad(keys[j], first + j as u128, len);
        out.push(
            c0.iter()
                .zip(c1)
                .zip(p.iter())
                .map(|((a, b), k)| ((a & !mask) | (b & mask)) ^ k)
                .collect(),
        );
        pos += 2 * len;
    }
    Ok(out)
}

impl IknpReceiver {
    /// Sets up with Chou-Orlandi base OTs.
    pub async fn setup<R: RngCore + CryptoRng + Send>(
        ch: &mut Channel,
        rng: &mut R,
    ) -> Result<Self, OtError> {
        let mut base = ChouOrlandi::new(ChaCha20Rng::from_rng(rng));
        Self::setup_with_base(ch, &mut base).await
    }

    /// Sets up with any base OT.
    pub async fn setup_with_base<B: BaseOtSender>(
        ch: &mut Channel,
        base: &mut B,
    ) -> Result<Self, OtError> {
        let mut pairs = base.send_random(ch, KAPPA).await?;
        if pairs.len() != KAPPA {
            return Err(OtError::Malformed(format!(
                "base OT gave {} pairs",
                pairs.len()
            )));
        }
        let prgs = pairs
            .iter()
            .map(|[a, b]| [AesPrg::new(*a), AesPrg::new(*b)])
            .collect();
        pairs.iter_mut().for_each(|p| p.zeroize());
        Ok(IknpReceiver {
            prgs,
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        })
    }

    /// Turns on the KOS consistency check for every later call (the sender must do the same).
    /// `rng` seeds the generator of the padding OTs' choice bits.
    #[must_use]
    pub fn with_kos_check<R: RngCore + CryptoRng>(mut self, rng: &mut R) -> Self {
        self.check = Some(ChaCha20Rng::from_rng(rng));
        self
    }

    /// Whether calls carry the consistency check.
    pub fn is_checked(&self) -> bool {
        self.check.is_some()
    }

    /// Computes one chunk: the `u` columns to send (column-major, `128 * nb` blocks) and the
    /// receiver's rows `t_j`, the first `take` of which are appended to `out`.
    pub fn extend_core(
        &mut self,
        r: &[Block],
        take: usize,
        u: &mut Vec<Block>,
        out: &mut Vec<Block>,
    ) {
        let nb = r.len();
        // Every block of the scratch is overwritten below: resizing is all it needs.
        let t = &mut self.scratch;
        t.resize(KAPPA * nb, Block::ZERO);
        u.clear();
        u.resize(KAPPA * nb, Block::ZERO);
        for i in 0..KAPPA {
            let tc = &mut t[i * nb..(i + 1) * nb];
            let uc = &mut u[i * nb..(i + 1) * nb];
            self.prgs[i][0].fill(tc);
            self.prgs[i][1].fill(uc);
            for b in 0..nb {
                uc[b] ^= tc[b] ^ r[b];
            }
        }
        columns_to_rows(t, nb, take, out);
    }

    /// Correlated OTs with the given choice bits: returns `t_j = q_j ⊕ r_j·Δ`.
    pub async fn receive_correlated(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let n = choices.len();
        check_count(n)?;
        let (r, total, mut digest) = match self.check.as_mut() {
            Some(rng) => {
                let pad = crate::kos::padding(n);
                let mut all = Vec::with_capacity(n + pad);
                all.extend_from_slice(choices);
                all.extend((0..pad).map(|_| rng.next_u32() & 1 == 1));
                let r = pack_bits_blocks(&all);
                all.zeroize();
                (r, n + pad, Some(ColumnDigest::new()))
            }
            None => (pack_bits_blocks(choices), n, None),
        };
        let r = Zeroizing::new(r);
        let mut out = Vec::with_capacity(total);
        let mut u = Vec::new();
        let mut bytes = Vec::new();
        for (c, rc) in r.chunks(CHUNK_BLOCKS).enumerate() {
            let take = (total - c * CHUNK_OTS).min(CHUNK_OTS);
            self.extend_core(rc, take, &mut u, &mut out);
            bytes.clear();
            crate::block::blocks_to_bytes(&u, &mut bytes);
            if let Some(d) = digest.as_mut() {
                d.update_bytes(&bytes);
            }
            ch.send_bytes(&bytes).await?;
        }
        ch.flush().await?;
        if let Some(d) = digest {
            let key = recv_block(ch, "check key").await?;
            let x = crate::kos::choices_hash(key, &r, total);
            let t = crate::kos::rows_hash(key, &out);
            let mut answer = Vec::with_capacity(ANSWER_BYTES);
            crate::block::blocks_to_bytes(&[x, t, d.finalize()], &mut answer);
            ch.send_bytes(&answer).await?;
            ch.flush().await?;
            crate::block::wipe_blocks(&mut out[n..]);
            out.truncate(n);
        }
        self.next_index = self.next_index.wrapping_add(n as u128);
        Ok(out)
    }

    /// Random OTs: returns `H(j, t_j)`, equal to the sender's key selected by the choice bit.
    pub async fn receive_random(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let first = self.next_index;
        let mut t = self.receive_correlated(ch, choices).await?;
        fixed_key_aes().tccr_many_seq(first, &mut t);
        Ok(t)
    }

    /// Chosen-message OT: returns the chosen message of each pair.
    pub async fn receive_chosen(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Vec<u8>>, OtError> {
        let first = self.next_index;
        let keys = Zeroizing::new(self.receive_random(ch, choices).await?);
        let mut out = Vec::with_capacity(choices.len());
        while out.len() < choices.len() {
            let frame = ch.recv_bytes().await?;
            let at = out.len();
            let count = frame
                .get(..4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
                .ok_or_else(|| OtError::Malformed("chosen OT frame: truncated count".into()))?;
            if count == 0 || count > choices.len() - at {
                return Err(OtError::Malformed(format!(
                    "chosen OT frame of {count} OTs, {} expected",
                    choices.len() - at
                )));
            }
            let end = at + count;
            out.extend(decrypt_chosen_core(
                &keys[at..end],
                &choices[at..end],
                first + at as u128,
                &frame,
            )?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::ZeroizeOnDrop;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    /// A sender and a receiver wired by hand (as base OTs with choice bits `Δ_i` would leave
    /// them), so that the synchronous cores run without a channel.
    fn pair(delta: Block) -> (IknpSender, IknpReceiver) {
        let seeds: Vec<[Block; 2]> = (0..KAPPA as u128)
            .map(|i| [Block(2 * i + 1), Block(2 * i + 2)])
            .collect();
        let sender = IknpSender {
            delta,
            prgs: (0..KAPPA)
                .map(|i| AesPrg::new(seeds[i][usize::from(delta.bit(i))]))
                .collect(),
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        };
        let receiver = IknpReceiver {
            prgs: seeds
                .iter()
                .map(|[a, b]| [AesPrg::new(*a), AesPrg::new(*b)])
                .collect(),
            next_index: 0,
            scratch: Vec::new(),
            check: None,
        };
        (sender, receiver)
    }

    #[test]
    fn zeroize_erases_delta_seeds_and_row_matrices() {
        assert_zeroize_on_drop::<IknpSender>();
        assert_zeroize_on_drop::<IknpReceiver>();
        assert_zeroize_on_drop::<AesPrg>();
        let delta = Block(0x0123_4567_89ab_cdef_fedc_ba98_7654_3211);
        let (mut sender, mut receiver) = pair(delta);
        let choices: Vec<bool> = (0..300).map(|k| k % 3 == 1).collect();
        let r = pack_bits_blocks(&choices);
        let (mut u, mut t, mut q) = (Vec::new(), Vec::new(), Vec::new());
        receiver.extend_core(&r, choices.len(), &mut u, &mut t);
        sender
            .extend_core(&u, r.len(), choices.len(), &mut q)
            .unwrap();
        for j in 0..choices.len() {
            assert_eq!(t[j], q[j] ^ delta.and_bit(choices[j]));
        }
        // The column matrices of the chunk are held, secret, until the owner goes.
        assert!(sender.scratch.iter().any(|b| *b != Block::ZERO));
        assert!(receiver.scratch.iter().any(|b| *b != Block::ZERO));

        // What `Drop` runs.
        sender.zeroize();
        receiver.zeroize();
        assert_eq!(sender.delta, Block::ZERO);
        assert!(sender.scratch.is_empty() && sender.prgs.is_empty());
        assert!(receiver.scratch.is_empty() && receiver.prgs.is_empty());
    }
}
