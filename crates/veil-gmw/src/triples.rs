//! Beaver multiplication triples over GF(2) from random oblivious transfer: the offline phase
//! of GMW (Beaver, CRYPTO 1991; the two-OT construction of Asharov, Lindell, Schneider and
//! Zohner, "More efficient oblivious transfer and extensions for faster secure computation",
//! CCS 2013, section 5, as used by ABY, Demmler, Schneider and Zohner, NDSS 2015).
//!
//! A triple is `(a, b, c)` with `c = a ∧ b`, each XOR-shared: `a = a_0 ⊕ a_1` and so on.
//! Expanding `c = a_0 b_0 ⊕ a_0 b_1 ⊕ a_1 b_0 ⊕ a_1 b_1`, each party computes its own product
//! and the two cross terms come from one random OT each: in a random OT the sender gets two
//! random bits `(s_0, s_1)` and the receiver, with random choice `a`, gets `s_a`. Setting
//! `b = s_0 ⊕ s_1` and `x = s_0` gives `s_a = x ⊕ a·b`: an XOR sharing of `a·b` between the
//! receiver (holding `a`) and the sender (holding `b`). Party `i` is the receiver (with its
//! `a_i`) in one OT and the sender (defining its `b_i`) in the other, so
//!
//! ```text
//! c_i = a_i b_i ⊕ r_i ⊕ x_i
//! ```
//!
//! with `r_i` its receiver output and `x_i` its sender bit. The random OTs, with random choice
//! bits, are SoftSpokenOT (`k = 4`) correlated OTs hashed to one bit with `lsb(tccr(j, ·))`:
//! 31 bits per OT on the wire (the first group's VOLE output is the choice vector and needs no
//! correction, [`veil_ot::softspoken`]), so 7.75 bytes per triple in total (3.875 each way),
//! where IKNP sent 32.

use std::fmt;

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::bits::BitVec;

/// XOR shares of triples, bit-packed, with a cursor marking how many are used.
///
/// Zeroized on drop, and when a refill replaces used triples; `Debug` shows counts only.
#[derive(Clone, Default)]
pub struct TripleStore {
    a: BitVec,
    b: BitVec,
    c: BitVec,
    used: usize,
}

impl Zeroize for TripleStore {
    /// Erases every share and empties the store.
    fn zeroize(&mut self) {
        self.a.zeroize();
        self.b.zeroize();
        self.c.zeroize();
        self.used = 0;
    }
}

impl Drop for TripleStore {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for TripleStore {}

impl fmt::Debug for TripleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TripleStore")
            .field("triples", &self.a.len())
            .field("used", &self.used)
            .finish()
    }
}

impl TripleStore {
    /// Triples not yet used.
    pub fn available(&self) -> usize {
        self.a.len() - self.used
    }

    /// Adds triples (bit `k` of each vector is triple `k`).
    pub fn append(&mut self, a: &BitVec, b: &BitVec, c: &BitVec) {
        debug_assert!(a.len() == b.len() && b.len() == c.len());
        if self.used > 0 && self.used == self.a.len() {
            self.zeroize();
        }
        self.a.extend(a);
        self.b.extend(b);
        self.c.extend(c);
    }

    /// Takes the next `n` triples (`n <= 64`) as three words; `None` when too few remain.
    #[inline]
    pub fn take(&mut self, n: usize) -> Option<(u64, u64, u64)> {
        let a = self.a.get_bits(self.used, n)?;
        let b = self.b.get_bits(self.used, n)?;
        let c = self.c.get_bits(self.used, n)?;
        self.used += n;
        Some((a, b, c))
    }
}

/// Combines one party's OT outputs into its triple shares: `choices` are its receiver choice
/// bits (its `a`), `received` its receiver outputs, `pairs` its sender outputs `(s_0, s_1)`.
pub fn combine(
    choices: &[bool],
    received: &[bool],
    pairs: &[(bool, bool)],
) -> (BitVec, BitVec, BitVec) {
    let n = choices.len();
    let (mut a, mut b, mut c) = (
        BitVec::with_capacity(n),
        BitVec::with_capacity(n),
        BitVec::with_capacity(n),
    );
    let mut k = 0;
    while k < n {
        let m = (n - k).min(64);
        let (mut wa, mut wb, mut wc) = (0u64, 0u64, 0u64);
        for i in 0..m {
            let ai = choices[k + i];
            let (s0, s1) = pairs[k + i];
            let bi = s0 ^ s1;
            let ci = (ai & bi) ^ received[k + i] ^ s0;
            wa |= u64::from(ai) << i;
            wb |= u64::from(bi) << i;
            wc |= u64::from(ci) << i;
        }
        a.push_bits(wa, m);
        b.push_bits(wb, m);
        c.push_bits(wc, m);
        k += m;
    }
    (a, b, c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn zeroize_erases_every_triple_share() {
        assert_zeroize_on_drop::<TripleStore>();
        let choices: Vec<bool> = (0..200).map(|k| k % 3 == 0).collect();
        let received: Vec<bool> = (0..200).map(|k| k % 5 == 1).collect();
        let pairs: Vec<(bool, bool)> = (0..200).map(|k| (k % 2 == 0, k % 7 < 3)).collect();
        let (a, b, c) = combine(&choices, &received, &pairs);
        let mut store = TripleStore::default();
        store.append(&a, &b, &c);
        assert!(store.a.words().iter().any(|w| *w != 0));
        assert!(!format!("{store:?}").contains(&format!("{}", store.a.words()[0])));
        assert!(store.take(64).is_some());

        // What `Drop` runs.
        store.zeroize();
        for v in [&store.a, &store.b, &store.c] {
            assert!(v.is_empty() && v.words().is_empty());
        }
        assert_eq!(store.available(), 0);

        // A refill after every triple is used erases the used ones before appending.
        store.append(&a, &b, &c);
        assert!(store.take(64).is_some() && store.take(64).is_some());
        assert!(store.take(64).is_some() && store.take(8).is_some());
        store.append(&a, &b, &c);
        assert_eq!(store.available(), 200);
        assert_eq!(store.a, a);
    }
}
