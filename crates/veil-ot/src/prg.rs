//! A pseudorandom generator: AES-128 in counter mode under a secret seed used as the key.
//!
//! IKNP expands each base-OT seed into a column of the OT-extension matrix with it (Ishai,
//! Kilian, Nissim and Petrank, CRYPTO 2003, section 3: "G is a PRG"). The counter runs on
//! across calls, so successive extensions draw fresh columns.

use crate::block::Block;
use crate::wide_aes::WideAes;

/// AES-CTR under a seed. The round keys are erased on drop ([`WideAes`]); the seed itself is
/// not kept. The counter is not secret.
pub struct AesPrg {
    cipher: WideAes,
    counter: u128,
}

// The round keys must be erased on drop: fail to build if `WideAes` ever stops doing so, or
// if the `aes` crate (its portable path) loses its `zeroize` feature.
const _: fn() = || {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<WideAes>();
    zeroized_on_drop::<aes::Aes128>();
};

impl zeroize::ZeroizeOnDrop for AesPrg {}

impl AesPrg {
    /// A generator keyed with `seed`.
    pub fn new(seed: Block) -> AesPrg {
        AesPrg {
            cipher: WideAes::new(seed),
            counter: 0,
        }
    }

    /// Fills `out` with the next `out.len()` output blocks.
    pub fn fill(&mut self, out: &mut [Block]) {
        for (k, b) in out.iter_mut().enumerate() {
            *b = Block(self.counter.wrapping_add(k as u128));
        }
        self.counter = self.counter.wrapping_add(out.len() as u128);
        self.cipher.encrypt(out);
    }

    /// The next output block.
    pub fn next_block(&mut self) -> Block {
        let mut b = [Block::ZERO];
        self.fill(&mut b);
        b[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_continues_across_calls() {
        let mut a = AesPrg::new(Block(42));
        let mut b = AesPrg::new(Block(42));
        let mut one = vec![Block::ZERO; 100];
        a.fill(&mut one);
        let mut first = vec![Block::ZERO; 37];
        let mut rest = vec![Block::ZERO; 63];
        b.fill(&mut first);
        b.fill(&mut rest);
        first.extend(rest);
        assert_eq!(one, first);
        assert_ne!(AesPrg::new(Block(43)).next_block(), one[0]);
    }
}
