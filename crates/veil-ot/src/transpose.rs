//! Transposition of 128x128 bit matrices, the step that turns IKNP's columns into OT rows.
//!
//! Row `r` of the matrix is a `u128` whose bit `c` is element `(r, c)`. The algorithm is the
//! recursive block swap of Eklundh (1972), in the word-parallel form of Warren, "Hacker's
//! Delight", section 7-3: seven stages, each swapping the off-diagonal sub-blocks of width
//! 64, 32, ..., 1 with masks and shifts on whole rows. About 7 x 64 x 6 word operations per
//! 128 x 128 block, with no table and no unsafe code.

use crate::block::Block;

/// Transposes the 128x128 bit matrix `m` in place.
pub fn transpose128(m: &mut [Block; 128]) {
    let mut width = 64usize;
    let mut mask: u128 = (1u128 << 64) - 1;
    while width != 0 {
        let mut k = 0usize;
        while k < 128 {
            for r in k..k + width {
                let t = ((m[r].0 >> width) ^ m[r + width].0) & mask;
                m[r].0 ^= t << width;
                m[r + width].0 ^= t;
            }
            k += 2 * width;
        }
        width >>= 1;
        mask ^= mask << width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn transposes_random_matrices() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..4 {
            let orig: [Block; 128] = std::array::from_fn(|_| Block(rng.random()));
            let mut m = orig;
            transpose128(&mut m);
            for r in 0..128 {
                for c in 0..128 {
                    assert_eq!(m[c].bit(r), orig[r].bit(c), "({r},{c})");
                }
            }
            transpose128(&mut m);
            assert_eq!(m, orig);
        }
    }
}
