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
//! Every function has a batched form that feeds AES eight blocks at a time to the hardware
//! pipeline (the `aes` crate selects AES-NI at run time).

use std::sync::LazyLock;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;

use crate::block::Block;

/// The fixed AES key: the first 128 bits of the fractional part of π, a constant with no
/// room for a chosen weakness.
pub const FIXED_KEY: u128 = 0x243f_6a88_85a3_08d3_1319_8a2e_0370_7344;

/// Blocks passed to AES at once.
const CHUNK: usize = 64;

/// A fixed-key AES permutation and the hashes built from it.
pub struct FixedKeyAes {
    cipher: Aes128,
}

static FIXED: LazyLock<FixedKeyAes> = LazyLock::new(|| FixedKeyAes::new(Block(FIXED_KEY)));

/// The process-wide instance keyed with [`FIXED_KEY`].
pub fn fixed_key_aes() -> &'static FixedKeyAes {
    &FIXED
}

/// Encrypts `blocks` in place with `cipher`, in batches.
#[inline]
pub(crate) fn aes_encrypt_in_place(cipher: &Aes128, blocks: &mut [Block]) {
    let mut buf = [GenericArray::from([0u8; 16]); CHUNK];
    for chunk in blocks.chunks_mut(CHUNK) {
        let n = chunk.len();
        for (g, b) in buf.iter_mut().zip(chunk.iter()) {
            *g = GenericArray::from(b.to_bytes());
        }
        cipher.encrypt_blocks(&mut buf[..n]);
        for (b, g) in chunk.iter_mut().zip(buf.iter()) {
            *b = Block::from_bytes((*g).into());
        }
    }
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
            cipher: Aes128::new(&GenericArray::from(key.to_bytes())),
        }
    }

    /// `π(x)`.
    pub fn permute(&self, x: Block) -> Block {
        let mut b = [x];
        aes_encrypt_in_place(&self.cipher, &mut b);
        b[0]
    }

    /// `π` on every block, in place.
    #[inline]
    pub fn permute_many(&self, xs: &mut [Block]) {
        aes_encrypt_in_place(&self.cipher, xs);
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
            aes_encrypt_in_place(&self.cipher, &mut buf[..n]);
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
        let mut buf = [GenericArray::from([0u8; 16]); CHUNK];
        let mut p = [0u128; CHUNK];
        for (chunk, tw) in xs.chunks_mut(CHUNK).zip(tweaks.chunks(CHUNK)) {
            let n = chunk.len();
            for (g, x) in buf.iter_mut().zip(chunk.iter()) {
                *g = GenericArray::from(x.to_bytes());
            }
            self.cipher.encrypt_blocks(&mut buf[..n]);
            for k in 0..n {
                p[k] = u128::from_le_bytes(buf[k].into());
                buf[k] = GenericArray::from((p[k] ^ tw[k].0).to_le_bytes());
            }
            self.cipher.encrypt_blocks(&mut buf[..n]);
            for k in 0..n {
                chunk[k] = Block(u128::from_le_bytes(buf[k].into()) ^ p[k]);
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
