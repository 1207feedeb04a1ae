//! A 128-bit block: the unit of OT messages, PRG output, hash input and wire labels.
//!
//! A `Block` is a `u128`; its byte form is little-endian, so bit `k` of the integer is bit
//! `k % 8` of byte `k / 8`. Bit-packed choice vectors use the same order.

use std::fmt;
use std::ops::{BitAnd, BitAndAssign, BitXor, BitXorAssign};

use rand::Rng;

/// 128 bits.
///
/// `Copy`, for the hot loops: copies are not erased, only the long-lived containers of secret
/// blocks are (see the crate documentation). `==` runs in constant time
/// ([`subtle::ConstantTimeEq`]): labels and keys are compared that way.
#[derive(Clone, Copy, Default)]
#[repr(transparent)]
pub struct Block(pub u128);

impl PartialEq for Block {
    #[inline]
    fn eq(&self, other: &Block) -> bool {
        bool::from(subtle::ConstantTimeEq::ct_eq(self, other))
    }
}

impl Eq for Block {}

impl Block {
    /// All zeros.
    pub const ZERO: Block = Block(0);
    /// All ones.
    pub const ONES: Block = Block(u128::MAX);
    /// Bytes in a block.
    pub const BYTES: usize = 16;

    /// A uniformly random block.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Block {
        Block(rng.random())
    }

    /// The least significant bit (the point-and-permute bit of a wire label).
    #[inline]
    pub fn lsb(self) -> bool {
        self.0 & 1 == 1
    }

    /// Bit `i` (0 = least significant).
    #[inline]
    pub fn bit(self, i: usize) -> bool {
        (self.0 >> i) & 1 == 1
    }

    /// `self` if `b`, else zero: a branch-free select.
    #[inline]
    pub fn and_bit(self, b: bool) -> Block {
        Block(self.0 & (0u128.wrapping_sub(u128::from(b))))
    }

    /// Little-endian bytes.
    #[inline]
    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_le_bytes()
    }

    /// From little-endian bytes.
    #[inline]
    pub fn from_bytes(b: [u8; 16]) -> Block {
        Block(u128::from_le_bytes(b))
    }
}

/// Redacted: a block is often a wire label, the global offset `Δ` or an OT key, and a log line
/// must not carry one; [`Block::to_bytes`] gives the bits of a block known to be public.
impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Block(..)")
    }
}

impl BitXor for Block {
    type Output = Block;
    #[inline]
    fn bitxor(self, rhs: Block) -> Block {
        Block(self.0 ^ rhs.0)
    }
}

impl BitXorAssign for Block {
    #[inline]
    fn bitxor_assign(&mut self, rhs: Block) {
        self.0 ^= rhs.0;
    }
}

impl BitAnd for Block {
    type Output = Block;
    #[inline]
    fn bitand(self, rhs: Block) -> Block {
        Block(self.0 & rhs.0)
    }
}

impl BitAndAssign for Block {
    #[inline]
    fn bitand_assign(&mut self, rhs: Block) {
        self.0 &= rhs.0;
    }
}

impl From<u128> for Block {
    fn from(v: u128) -> Block {
        Block(v)
    }
}

impl zeroize::Zeroize for Block {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}

impl subtle::ConstantTimeEq for Block {
    #[inline]
    fn ct_eq(&self, other: &Block) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl subtle::ConditionallySelectable for Block {
    #[inline]
    fn conditional_select(a: &Block, b: &Block, choice: subtle::Choice) -> Block {
        Block(u128::conditional_select(&a.0, &b.0, choice))
    }
}

/// Erases a vector of secret blocks (labels, OT rows), spare capacity included, and empties it.
///
/// The same effect as `zeroize::Zeroize::zeroize` on the vector, at memset speed: `zeroize`
/// writes element by element through volatile stores, which for the label vector of a whole
/// circuit costs a measurable share of an evaluation. Here the blocks are zeroed with a plain
/// (vectorized) fill, then handed to [`std::hint::black_box`], and a compiler fence follows as
/// in `zeroize`, so the optimizer cannot drop the stores as dead.
pub fn zeroize_blocks(blocks: &mut Vec<Block>) {
    // Zero the spare capacity too: initialise it (no reallocation), then wipe everything.
    let cap = blocks.capacity();
    blocks.resize(cap, Block::ZERO);
    wipe_blocks(blocks);
    blocks.clear();
}

/// Sets every block of `blocks` to zero with a vectorized fill that the optimizer cannot elide
/// (see [`zeroize_blocks`]).
pub fn wipe_blocks(blocks: &mut [Block]) {
    blocks.fill(Block::ZERO);
    std::hint::black_box(&mut *blocks);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Appends the little-endian bytes of `blocks` to `out`.
pub fn blocks_to_bytes(blocks: &[Block], out: &mut Vec<u8>) {
    out.reserve(blocks.len() * Block::BYTES);
    for b in blocks {
        out.extend_from_slice(&b.to_bytes());
    }
}

/// Reads blocks from bytes; `None` unless the length is a multiple of 16.
pub fn blocks_from_bytes(bytes: &[u8]) -> Option<Vec<Block>> {
    if !bytes.len().is_multiple_of(Block::BYTES) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(Block::BYTES)
            .map(|c| {
                let mut a = [0u8; 16];
                a.copy_from_slice(c);
                Block::from_bytes(a)
            })
            .collect(),
    )
}

/// Packs booleans into bytes, bit `k` of the vector at bit `k % 8` of byte `k / 8`.
pub fn pack_bits(bits: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; bits.len().div_ceil(8)];
    for (k, &b) in bits.iter().enumerate() {
        out[k / 8] |= u8::from(b) << (k % 8);
    }
    out
}

/// Packs booleans into blocks of 128 (the last one zero-padded).
pub fn pack_bits_blocks(bits: &[bool]) -> Vec<Block> {
    let mut out = vec![Block::ZERO; bits.len().div_ceil(128)];
    for (o, chunk) in out.iter_mut().zip(bits.chunks(128)) {
        let mut word = 0u128;
        let mut bytes = chunk.chunks_exact(8);
        for (k, eight) in bytes.by_ref().enumerate() {
            word |= u128::from(pack8(eight)) << (8 * k);
        }
        let base = chunk.len() - bytes.remainder().len();
        for (k, &b) in bytes.remainder().iter().enumerate() {
            word |= u128::from(b) << (base + k);
        }
        o.0 = word;
    }
    out
}

/// Packs eight booleans into a byte (bit `i` is `b[i]`): each `bool` is the byte 0 or 1, and
/// one multiplication moves byte `i` of the little-endian word to bit `56 + i`, the partial
/// products landing on distinct bits below 56 or beyond 63 (no carry reaches the top byte).
#[inline]
fn pack8(b: &[bool]) -> u8 {
    let x = u64::from_le_bytes(std::array::from_fn(|i| u8::from(b[i])));
    (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_bits_matches_bit_by_bit() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000] {
            let bits: Vec<bool> = (0..n).map(|_| rng.random()).collect();
            let got = pack_bits_blocks(&bits);
            assert_eq!(got.len(), n.div_ceil(128));
            for (k, &b) in bits.iter().enumerate() {
                assert_eq!(got[k / 128].bit(k % 128), b, "n {n}, bit {k}");
            }
            let set: u32 = got.iter().map(|b| b.0.count_ones()).sum();
            assert_eq!(set as usize, bits.iter().filter(|&&b| b).count());
        }
    }

    #[test]
    fn debug_redacts_and_equality_matches_the_bits() {
        let b = Block(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(format!("{b:?}"), "Block(..)");
        assert_eq!(b, Block(b.0));
        assert_ne!(b, Block(b.0 ^ (1 << 77)));
    }

    #[test]
    fn byte_and_bit_order() {
        let b = Block(1 | (1 << 9) | (1u128 << 127));
        let bytes = b.to_bytes();
        assert_eq!(bytes[0], 1);
        assert_eq!(bytes[1], 2);
        assert_eq!(bytes[15], 0x80);
        assert_eq!(Block::from_bytes(bytes), b);
        assert!(b.bit(9) && b.lsb() && !b.bit(8));
        let bits: Vec<bool> = (0..130).map(|k| k % 3 == 0).collect();
        let packed = pack_bits_blocks(&bits);
        assert_eq!(packed.len(), 2);
        for (k, &v) in bits.iter().enumerate() {
            assert_eq!(packed[k / 128].bit(k % 128), v);
            assert_eq!((pack_bits(&bits)[k / 8] >> (k % 8)) & 1 == 1, v);
        }
        assert_eq!(Block(5).and_bit(true), Block(5));
        assert_eq!(Block(5).and_bit(false), Block::ZERO);
        let mut v = Vec::new();
        blocks_to_bytes(&[b, Block(7)], &mut v);
        assert_eq!(blocks_from_bytes(&v), Some(vec![b, Block(7)]));
        assert_eq!(blocks_from_bytes(&v[1..]), None);
    }

    #[test]
    fn zeroize_blocks_erases_and_empties() {
        let mut s: Vec<Block> = (1..=200u128).map(Block).collect();
        wipe_blocks(&mut s[..150]);
        assert!(s[..150].iter().all(|b| *b == Block::ZERO));
        assert_eq!(s[150], Block(151));
        let mut v: Vec<Block> = Vec::with_capacity(300);
        v.extend((1..=200u128).map(Block));
        let cap = v.capacity();
        zeroize_blocks(&mut v);
        assert!(v.is_empty());
        assert_eq!(v.capacity(), cap, "no reallocation");
    }

    #[test]
    fn constant_time_comparison_and_select() {
        use subtle::{ConditionallySelectable, ConstantTimeEq};
        let (a, b) = (Block(u128::MAX - 1), Block(u128::MAX));
        assert!(bool::from(a.ct_eq(&a)) && !bool::from(a.ct_eq(&b)));
        assert_eq!(Block::conditional_select(&a, &b, 0.into()), a);
        assert_eq!(Block::conditional_select(&a, &b, 1.into()), b);
    }
}
