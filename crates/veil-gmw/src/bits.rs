//! Bit vectors packed into `u64` words, least significant bit first: the layout of triples
//! and of the bits the parties exchange.

use zeroize::Zeroize;

/// An append-only bit vector.
///
/// It also carries public bits (the opened `d, e` of every AND layer), so it is not erased on
/// drop by itself; the owners of secret bit vectors ([`crate::triples::TripleStore`]) call
/// [`Zeroize::zeroize`] on it. Because it may hold a party's shares, `Debug` shows the length
/// only and `==` runs in constant time (over the bits; the lengths are public).
#[derive(Clone, Default)]
pub struct BitVec {
    words: Vec<u64>,
    len: usize,
}

impl std::fmt::Debug for BitVec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BitVec")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl PartialEq for BitVec {
    fn eq(&self, other: &BitVec) -> bool {
        use subtle::ConstantTimeEq;
        self.len == other.len && bool::from(self.words[..].ct_eq(&other.words[..]))
    }
}

impl Eq for BitVec {}

impl Zeroize for BitVec {
    /// Erases every word (and the spare capacity) and empties the vector.
    fn zeroize(&mut self) {
        self.words.zeroize();
        self.len = 0;
    }
}

impl BitVec {
    /// An empty vector with room for `bits`.
    pub fn with_capacity(bits: usize) -> BitVec {
        BitVec {
            words: Vec::with_capacity(bits.div_ceil(64)),
            len: 0,
        }
    }

    /// Number of bits.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no bits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Removes every bit.
    pub fn clear(&mut self) {
        self.words.clear();
        self.len = 0;
    }

    /// Appends the low `n` bits of `v` (`1 <= n <= 64`; higher bits of `v` must be zero).
    #[inline]
    pub fn push_bits(&mut self, v: u64, n: usize) {
        let off = self.len % 64;
        if off == 0 {
            self.words.push(v);
        } else {
            if let Some(last) = self.words.last_mut() {
                *last |= v << off;
            }
            if off + n > 64 {
                self.words.push(v >> (64 - off));
            }
        }
        self.len += n;
    }

    /// The `n` bits starting at bit `at` (`n <= 64`), or `None` past the end.
    #[inline]
    pub fn get_bits(&self, at: usize, n: usize) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if at + n > self.len {
            return None;
        }
        let (w, off) = (at / 64, at % 64);
        let mut v = self.words[w] >> off;
        if off + n > 64 {
            v |= self.words[w + 1] << (64 - off);
        }
        Some(if n == 64 { v } else { v & ((1u64 << n) - 1) })
    }

    /// The words, the last one zero-padded.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Little-endian bytes of the words, `ceil(len / 8)` of them.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.words.len() * 8);
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.truncate(self.len.div_ceil(8));
        out
    }

    /// A vector of `len` bits from bytes; `None` unless there are exactly `ceil(len / 8)`
    /// bytes and the padding bits are zero.
    pub fn from_bytes(bytes: &[u8], len: usize) -> Option<BitVec> {
        if bytes.len() != len.div_ceil(8) {
            return None;
        }
        let mut words: Vec<u64> = bytes
            .chunks(8)
            .map(|c| {
                let mut a = [0u8; 8];
                a[..c.len()].copy_from_slice(c);
                u64::from_le_bytes(a)
            })
            .collect();
        if !len.is_multiple_of(64) {
            if let Some(last) = words.last_mut() {
                if *last >> (len % 64) != 0 {
                    return None;
                }
                *last &= (1u64 << (len % 64)) - 1;
            }
        }
        Some(BitVec { words, len })
    }

    /// Appends every bit of `other`.
    pub fn extend(&mut self, other: &BitVec) {
        let full = other.len / 64;
        for &w in &other.words[..full] {
            self.push_bits(w, 64);
        }
        let rest = other.len % 64;
        if rest > 0 {
            self.push_bits(other.words[full], rest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_length_only_and_equality_compares_bits() {
        let mut a = BitVec::default();
        a.push_bits(0xdead_beef, 32);
        assert_eq!(format!("{a:?}"), "BitVec { len: 32, .. }");
        let mut b = BitVec::default();
        b.push_bits(0xdead_beef, 32);
        assert_eq!(a, b);
        let mut c = BitVec::default();
        c.push_bits(0xdead_beee, 32);
        assert_ne!(a, c);
    }

    #[test]
    fn push_get_bytes_round_trip() {
        let mut v = BitVec::default();
        let mut model = Vec::new();
        for (k, n) in [1usize, 5, 64, 3, 64, 17, 1, 63].iter().enumerate() {
            let x = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(k as u64 + 1);
            let x = if *n == 64 { x } else { x & ((1 << n) - 1) };
            v.push_bits(x, *n);
            model.push((x, *n));
        }
        let mut at = 0;
        for (x, n) in &model {
            assert_eq!(v.get_bits(at, *n), Some(*x));
            at += n;
        }
        assert_eq!(v.len(), at);
        assert_eq!(v.get_bits(at - 3, 4), None);
        let b = v.to_bytes();
        assert_eq!(BitVec::from_bytes(&b, v.len()), Some(v.clone()));
        assert_eq!(BitVec::from_bytes(&b[1..], v.len()), None);
        let mut w = BitVec::default();
        w.push_bits(1, 1);
        w.extend(&v);
        assert_eq!(w.get_bits(1, 5), v.get_bits(0, 5));
    }
}
