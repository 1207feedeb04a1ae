//! Hashing from a fixed-key AES permutation, after Guo, Katz, Wang and Yu, "Efficient and
//! secure multiparty computation from fixed-key block ciphers" (IEEE S&P 2020, ePrint
//! 2019/074), section 7.
//!
//! With `π(x) = AES_k(x)` for a fixed, public key `k`:
//! - `cr(x) = π(x) ⊕ x` is correlation robust (their section 7.1);
//! - `ccr(x) = π(σ(x)) ⊕ σ(x)`, with the linear orthomorphism
//!   `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L` on the two 64-bit halves, is circular correlation
//!   robust (section 7.3);
//! - `tccr(i, x) = π(π(x) ⊕ i) ⊕ π(x)` is tweakable circular correlation robust (section 7.4),
//!   the hash half-gates garbling and IKNP random OT need, with the gate or OT index as tweak.
//!
//! Every function has a batched form that feeds AES many blocks at a time on the widest AES
//! instructions the processor has ([`crate::wide_aes`]: VAES with AVX-512, or AES-NI).

use std::sync::LazyLock;

use crate::block::Block;
use crate::wide_aes::WideAes;

/// The fixed AES key: the first 128 bits of the fractional part of π, a constant with no
/// room for a chosen weakness.
pub const FIXED_KEY: u128 = 0x243f_6a88_85a3_08d3_1319_8a2e_0370_7344;

/// Blocks hashed per step: small enough to stay in L1 with their tweaks.
const CHUNK: usize = 64;

/// A fixed-key AES permutation and the hashes built from it.
pub struct FixedKeyAes {
    cipher: WideAes,
}

static FIXED: LazyLock<FixedKeyAes> = LazyLock::new(|| FixedKeyAes::new(Block(FIXED_KEY)));

/// The process-wide instance keyed with [`FIXED_KEY`].
pub fn fixed_key_aes() -> &'static FixedKeyAes {
    &FIXED
}

/// `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L`, with `x_L` the high 64 bits.
#[inline]
pub fn sigma(x: Block) -> Block {
    let hi = (x.0 >> 64) as u64;
    let lo = x.0 as u64;
    Block((u128::from(hi ^ lo) << 64) | u128::from(hi))
}

impl FixedKeyAes {
    /// A permutation keyed with `key` (use [`fixed_key_aes`] for the standard one).
    pub fn new(key: Block) -> FixedKeyAes {
        FixedKeyAes {
            cipher: WideAes::new(key),
        }
    }

    /// `π(x)`.
    pub fn permute(&self, x: Block) -> Block {
        self.cipher.encrypt_block(x)
    }

    /// `π` on every block, in place.
    #[inline]
    pub fn permute_many(&self, xs: &mut [Block]) {
        self.cipher.encrypt(xs);
    }

    /// `cr(x) = π(x) ⊕ x`.
    pub fn cr(&self, x: Block) -> Block {
        self.permute(x) ^ x
    }

    /// `cr` on every block, in place.
    #[inline]
    pub fn cr_many(&self, xs: &mut [Block]) {
        let mut buf = [Block::ZERO; CHUNK];
        for chunk in xs.chunks_mut(CHUNK) {
            let n = chunk.len();
            buf[..n].copy_from_slice(chunk);
            self.cipher.encrypt(&mut buf[..n]);
            chunk.iter_mut().zip(&buf).for_each(|(x, p)| *x ^= *p);
        }
    }

    /// `ccr(x) = π(σ(x)) ⊕ σ(x)`.
    pub fn ccr(&self, x: Block) -> Block {
        self.cr(sigma(x))
    }

    /// `ccr` on every block, in place.
    pub fn ccr_many(&self, xs: &mut [Block]) {
        xs.iter_mut().for_each(|x| *x = sigma(*x));
        self.cr_many(xs);
    }

    /// `tccr(i, x) = π(π(x) ⊕ i) ⊕ π(x)`.
    pub fn tccr(&self, tweak: Block, x: Block) -> Block {
        let p = self.permute(x);
        self.permute(p ^ tweak) ^ p
    }

    /// `xs[k] = tccr(tweaks[k], xs[k])` for every `k`; the slices must have equal lengths.
    #[inline]
    pub fn tccr_many(&self, tweaks: &[Block], xs: &mut [Block]) {
        assert_eq!(tweaks.len(), xs.len(), "one tweak per block");
        let mut p = [Block::ZERO; CHUNK];
        for (chunk, tw) in xs.chunks_mut(CHUNK).zip(tweaks.chunks(CHUNK)) {
            let n = chunk.len();
            p[..n].copy_from_slice(chunk);
            self.cipher.encrypt(&mut p[..n]);
            for ((x, p), t) in chunk.iter_mut().zip(&p[..n]).zip(tw) {
                *x = *p ^ *t;
            }
            self.cipher.encrypt(chunk);
            for (x, p) in chunk.iter_mut().zip(&p[..n]) {
                *x ^= *p;
            }
        }
    }

    /// `xs[k] = tccr(first_tweak + k, xs[k])`: consecutive tweaks, as IKNP uses with the OT
    /// index.
    pub fn tccr_many_seq(&self, first_tweak: u128, xs: &mut [Block]) {
        let mut tw = [Block::ZERO; CHUNK];
        for (c, chunk) in xs.chunks_mut(CHUNK).enumerate() {
            let base = first_tweak.wrapping_add((c * CHUNK) as u128);
            for (k, t) in tw.iter_mut().enumerate().take(chunk.len()) {
                *t = Block(base.wrapping_add(k as u128));
            }
            self.tccr_many(&tw[..chunk.len()], chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aes_matches_fips197_c1() {
        // FIPS-197 appendix C.1 as little-endian blocks of the byte strings.
        let key =
            Block::from_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
        let pt =
            Block::from_bytes(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff");
        let ct = FixedKeyAes::new(key).permute(pt);
        assert_eq!(
            ct.to_bytes(),
            *b"\x69\xc4\xe0\xd8\x6a\x7b\x04\x30\xd8\xcd\xb7\x80\x70\xb4\xc5\x5a"
        );
    }

    #[test]
    fn batched_forms_equal_single_forms() {
        let h = fixed_key_aes();
        let xs: Vec<Block> = (0..200u128)
            .map(|i| Block(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)))
            .collect();
        let tw: Vec<Block> = (0..200u128).map(|i| Block(i + 1000)).collect();
        let mut a = xs.clone();
        h.cr_many(&mut a);
        let mut b = xs.clone();
        h.ccr_many(&mut b);
        let mut c = xs.clone();
        h.tccr_many(&tw, &mut c);
        let mut d = xs.clone();
        h.tccr_many_seq(1000, &mut d);
        for k in 0..xs.len() {
            assert_eq!(a[k], h.cr(xs[k]));
            assert_eq!(b[k], h.ccr(xs[k]));
            assert_eq!(c[k], h.tccr(tw[k], xs[k]));
        }
        assert_eq!(c, d);
        // sigma is linear and invertible: sigma(x) ^ sigma(y) = sigma(x ^ y), and not identity
        let (x, y) = (xs[5], xs[7]);
        assert_eq!(sigma(x) ^ sigma(y), sigma(x ^ y));
        assert_ne!(sigma(x), x);
    }
}
