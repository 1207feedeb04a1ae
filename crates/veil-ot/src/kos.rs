//! The consistency check that makes IKNP secure against a malicious receiver: Keller, Orsini
//! and Scholl, "Actively secure OT extension with optimal overhead" (CRYPTO 2015, section 3,
//! figure 7), with the random challenge `χ_1 … χ_m` taken as the powers of one random field
//! element, i.e. a polynomial hash, as in the universal-hash form of the check in Roy,
//! "SoftSpokenOT" (CRYPTO 2022, section 5). The hash is POLYVAL (RFC 8452), computed with the
//! carry-less multiplier of the CPU by the `polyval` crate.
//!
//! After the receiver has sent every column `u^i`, the sender draws a hash key `η` and the
//! receiver answers with
//!
//! - `T = Σ_j χ_j · t_j` over its rows `t_j`, and
//! - `X = Σ_j χ_j · r_j` over its choice bits `r_j`,
//!
//! where `χ_j = η^(m+1-j)` (Horner order). The sender checks `Σ_j χ_j · q_j ⊕ T = X · Δ`,
//! which holds when `q_j = t_j ⊕ r_j·Δ` for every row, that is when the receiver used one
//! choice vector in all 128 columns. A receiver that used different choice bits in some columns
//! passes only by guessing the bits of `Δ` in those columns, each guess failing with probability
//! 1/2, and a failed check ends the session; a polynomial of degree `m` in `η` vanishes by
//! chance with probability at most `m / 2^128`. [`PAD_OTS`] extra OTs with random choice bits
//! (KOS's `κ + s`, rounded up to whole 128-row blocks) are added to every call and thrown away,
//! so that `X` and `T` say nothing of the real choice bits.
//!
//! The receiver's answer also carries a checksum of the columns exactly as sent
//! ([`ColumnDigest`]: the XOR of the column blocks, block `b` rotated by `b mod 128` bits). It
//! ties the answer to the bytes that travelled, so that a column changed on the way fails the
//! check even where the sender's rows never read it (the columns `i` with `Δ_i = 0`); any
//! change of one bit, or within one block, is caught. It is no MAC and no defence against a
//! receiver that deviates, which checksums what it sends: against that receiver the KOS
//! equation is the defence, and on the wire the Noise channel authenticates every frame.

//! POLYVAL's product is `dot(a, b) = a·b·x^-128`, and `POLYVAL_H` multiplies by
//! `η = H·x^-128` at each step. Writing `E = x^128`, the receiver sends `X` as the POLYVAL of
//! the blocks `r_j·E`, which makes `dot(Δ, X)` the field product `Δ·Σ_j χ_j r_j`. It computes
//! `X` eight rows at a time: a byte of choice bits selects the XOR of some of
//! `E·η^1 … E·η^8` (which are `H`, `dot(H, H)`, … in POLYVAL's Montgomery form) from a
//! 256-entry table, and these sums are hashed with multiplier `η^8`. Hashing the rows with
//! eight zero blocks appended scales `T` and `Q` by the same `η^8`, so no inverse is needed.
//! The number of rows is a multiple of 128 ([`padding`]).

use polyval::universal_hash::UniversalHash;
use polyval::Polyval;

use crate::block::Block;

/// Extra OTs per checked call, with random choice bits, discarded after the check: at least
/// `κ + s = 128 + 40` (KOS, section 3), rounded up to two 128-row blocks.
pub const PAD_OTS: usize = 256;

/// The padding OTs of a checked call of `n` OTs: at least [`PAD_OTS`], up to the next
/// multiple of 128 rows (rows the extension computes in any case).
pub fn padding(n: usize) -> usize {
    PAD_OTS + (128 - n % 128) % 128
}

/// `x^128 mod p` in POLYVAL's representation (`p = x^128 + x^127 + x^126 + x^121 + 1`): the
/// block whose POLYVAL product with `a` is `a`.
pub const X128: Block = Block(0xC200_0000_0000_0000_0000_0000_0000_0001);

/// Bytes of the receiver's answer: `X`, `T` and the digest of the columns.
pub const ANSWER_BYTES: usize = 3 * Block::BYTES;

/// Blocks converted at a time into POLYVAL's input type.
const BATCH: usize = 256;

/// A running POLYVAL hash over blocks (Horner's rule: `acc = (acc ⊕ b)·η`).
pub struct PolyHash {
    inner: Polyval,
    buf: [polyval::Block; BATCH],
    len: usize,
}

impl PolyHash {
    /// A hash under key `key`.
    pub fn new(key: Block) -> PolyHash {
        PolyHash {
            inner: Polyval::new(&key.to_bytes().into()),
            buf: [polyval::Block::default(); BATCH],
            len: 0,
        }
    }

    /// Absorbs `blocks`, in order.
    pub fn update(&mut self, blocks: &[Block]) {
        for b in blocks {
            self.buf[self.len] = b.to_bytes().into();
            self.len += 1;
            if self.len == BATCH {
                self.inner.update(&self.buf);
                self.len = 0;
            }
        }
    }

    /// The hash of everything absorbed.
    pub fn finalize(mut self) -> Block {
        if self.len > 0 {
            self.inner.update(&self.buf[..self.len]);
        }
        let tag: [u8; 16] = self.inner.clone().finalize().into();
        self.buf.fill(polyval::Block::default());
        Block::from_bytes(tag)
    }
}

/// POLYVAL's product `a·b·x^-128` (RFC 8452, section 3): the POLYVAL hash of the one block
/// `a` under key `b`, computed with the carry-less multiplier in constant time.
pub fn dot(a: Block, b: Block) -> Block {
    hash(b, &[a])
}

/// The POLYVAL hash of `blocks` under `key`.
pub fn hash(key: Block, blocks: &[Block]) -> Block {
    let mut h = PolyHash::new(key);
    h.update(blocks);
    h.finalize()
}

/// `T` or `Q`: the POLYVAL hash of the rows under `key`, followed by eight zero blocks
/// (which scales it by `η^8`, the factor [`choices_hash`] carries).
pub fn rows_hash(key: Block, rows: &[Block]) -> Block {
    let mut h = PolyHash::new(key);
    h.update(rows);
    h.update(&[Block::ZERO; 8]);
    h.finalize()
}

/// `X`: `η^8` times the POLYVAL hash under `key` of the blocks `r_j·x^128`, for the `count`
/// choice bits packed in `bits` (bit `j` of block `j / 128`); `count` must be a multiple of 8.
/// Eight bits cost one table look-up and one POLYVAL block.
pub fn choices_hash(key: Block, bits: &[Block], count: usize) -> Block {
    debug_assert_eq!(count % 8, 0);
    // basis[i] = E·η^(8-i) for the row at bit i of a byte, in POLYVAL's form: η^p·E is the
    // p-th Montgomery power of the key.
    let mut powers = [key; 8];
    for p in 1..8 {
        powers[p] = dot(powers[p - 1], key);
    }
    let mut table = [Block::ZERO; 256];
    for v in 1..256usize {
        let i = v.trailing_zeros() as usize;
        table[v] = table[v & (v - 1)] ^ powers[7 - i];
    }
    let mut h = PolyHash::new(powers[7]);
    let mut group = [Block::ZERO; BATCH];
    let bytes = count / 8;
    let mut k = 0;
    while k < bytes {
        let n = (bytes - k).min(BATCH);
        for (g, slot) in group[..n].iter_mut().enumerate() {
            let byte = (bits[(k + g) / 16].0 >> (8 * ((k + g) % 16))) as u8;
            *slot = table[usize::from(byte)];
        }
        h.update(&group[..n]);
        k += n;
    }
    crate::block::wipe_blocks(&mut table);
    h.finalize()
}

/// The checksum of the extension columns as sent: `⊕_b rotl(u_b, b mod 128)` over the blocks
/// of a call in order, computed as the columns stream (each block is XORed into one of 128
/// lanes, which are rotated once at the end).
pub struct ColumnDigest {
    lanes: [u128; 128],
    next: usize,
}

impl Default for ColumnDigest {
    fn default() -> ColumnDigest {
        ColumnDigest {
            lanes: [0; 128],
            next: 0,
        }
    }
}

impl ColumnDigest {
    /// An empty checksum.
    pub fn new() -> ColumnDigest {
        ColumnDigest::default()
    }

    /// Absorbs the next blocks of columns.
    pub fn update(&mut self, blocks: &[Block]) {
        for b in blocks {
            self.lanes[self.next] ^= b.0;
            self.next = (self.next + 1) % 128;
        }
    }

    /// Absorbs the next blocks of columns, as the little-endian bytes that travel (a multiple
    /// of 16).
    pub fn update_bytes(&mut self, bytes: &[u8]) {
        debug_assert_eq!(bytes.len() % Block::BYTES, 0);
        for c in bytes.chunks_exact(Block::BYTES) {
            let mut a = [0u8; 16];
            a.copy_from_slice(c);
            self.lanes[self.next] ^= u128::from_le_bytes(a);
            self.next = (self.next + 1) % 128;
        }
    }

    /// The checksum.
    pub fn finalize(self) -> Block {
        Block(
            self.lanes
                .iter()
                .enumerate()
                .fold(0, |acc, (i, l)| acc ^ l.rotate_left(i as u32)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// RFC 8452, appendix A: POLYVAL(H, X_1, X_2).
    #[test]
    fn polyval_known_answer() {
        let h = Block::from_bytes(hex16("25629347589242761d31f826ba4b757b"));
        let x1 = Block::from_bytes(hex16("4f4f95668c83dfb6401762bb2d01a262"));
        let x2 = Block::from_bytes(hex16("d1a24ddd2721d006bbe45f20d3c9f362"));
        let want = Block::from_bytes(hex16("f7a3b47b846119fae5b7866cf5e5b77e"));
        assert_eq!(hash(h, &[x1, x2]), want);
    }

    fn hex16(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn x128_is_the_identity_of_dot() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..20 {
            let a = Block::random(&mut rng);
            assert_eq!(dot(a, X128), a);
            assert_eq!(dot(X128, a), a);
        }
    }

    /// The table form of `X` equals `η^8` times the POLYVAL of the blocks `r_j·x^128`.
    #[test]
    fn choices_hash_matches_the_plain_definition() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for m in [8usize, 128, 384, 1024 + 8] {
            let key = Block::random(&mut rng);
            let r: Vec<bool> = (0..m).map(|_| Block::random(&mut rng).lsb()).collect();
            let packed = crate::block::pack_bits_blocks(&r);
            let mut plain: Vec<Block> = r.iter().map(|&b| X128.and_bit(b)).collect();
            plain.extend([Block::ZERO; 8]);
            assert_eq!(choices_hash(key, &packed, m), hash(key, &plain), "m = {m}");
        }
    }

    #[test]
    fn column_digest_is_incremental_and_sees_every_bit() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let u: Vec<Block> = (0..3000).map(|_| Block::random(&mut rng)).collect();
        let mut whole = ColumnDigest::new();
        whole.update(&u);
        let whole = whole.finalize();
        let mut parts = ColumnDigest::new();
        for (k, c) in u.chunks(700).enumerate() {
            if k % 2 == 0 {
                parts.update(c);
            } else {
                let mut bytes = Vec::new();
                crate::block::blocks_to_bytes(c, &mut bytes);
                parts.update_bytes(&bytes);
            }
        }
        assert_eq!(parts.finalize(), whole);
        for (b, bit) in [(0usize, 0usize), (1500, 77), (2999, 127), (128, 0)] {
            let mut v = u.clone();
            v[b].0 ^= 1 << bit;
            let mut d = ColumnDigest::new();
            d.update(&v);
            assert_ne!(d.finalize(), whole);
        }
        // Any change within one block, too.
        let mut v = u.clone();
        v[7].0 ^= 0xffff_0000_0000_0000_0000_0000_0000_0001;
        let mut d = ColumnDigest::new();
        d.update(&v);
        assert_ne!(d.finalize(), whole);
    }

    /// The identity the sender checks, on random rows: `Q ⊕ T = dot(Δ, X)` exactly when every
    /// row satisfies `q_j = t_j ⊕ r_j·Δ`; one flipped bit breaks it.
    #[test]
    fn check_identity_holds_for_consistent_rows_only() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for m in [8usize, 64, 128, 384] {
            let delta = Block::random(&mut rng);
            let key = Block::random(&mut rng);
            let r: Vec<bool> = (0..m).map(|_| Block::random(&mut rng).lsb()).collect();
            let t: Vec<Block> = (0..m).map(|_| Block::random(&mut rng)).collect();
            let q: Vec<Block> = t
                .iter()
                .zip(&r)
                .map(|(t, &b)| *t ^ delta.and_bit(b))
                .collect();
            let packed = crate::block::pack_bits_blocks(&r);
            let x = choices_hash(key, &packed, m);
            assert_eq!(
                rows_hash(key, &q) ^ rows_hash(key, &t),
                dot(delta, x),
                "m = {m}"
            );

            let mut bad = q.clone();
            bad[m / 2].0 ^= 1 << 77;
            assert_ne!(
                rows_hash(key, &bad) ^ rows_hash(key, &t),
                dot(delta, x),
                "m = {m}"
            );
        }
    }
}
