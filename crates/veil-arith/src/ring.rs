//! Arithmetic in `Z_2^k` on `u64` words: every value is kept reduced (the bits above `k` are
//! zero), and a signed integer is embedded by two's complement.

/// The mask of the low `k` bits, `2^k − 1` (all ones for `k = 64`).
///
/// # Panics
///
/// If `k` is 0 or above 64 (callers check the width first).
pub fn mask(k: u32) -> u64 {
    assert!((1..=64).contains(&k), "ring width {k}");
    u64::MAX >> (64 - k)
}

/// `x mod 2^k` for a signed `x`.
pub fn embed(x: i64, k: u32) -> u64 {
    (x as u64) & mask(k)
}

/// The signed value of `x ∈ Z_2^k` in `[−2^(k−1), 2^(k−1))`.
pub fn signed(x: u64, k: u32) -> i64 {
    let shift = 64 - k;
    (((x & mask(k)) << shift) as i64) >> shift
}

/// Bytes that hold a value of `bits` bits (`bits ≤ 64`).
pub fn bytes_for(bits: u32) -> usize {
    bits.div_ceil(8) as usize
}

/// The low `width` bits of each word, least significant first: a garbled circuit's input.
pub fn to_bits(words: &[u64], width: u32) -> Vec<bool> {
    words
        .iter()
        .flat_map(|&w| (0..width).map(move |i| (w >> i) & 1 == 1))
        .collect()
}

/// Words of `width` bits from bits in the order of [`to_bits`] (a last partial word is kept).
pub fn from_bits(bits: &[bool], width: u32) -> Vec<u64> {
    bits.chunks(width.max(1) as usize)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u64, |w, (i, &b)| w | (u64::from(b) << i))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_round_trips_and_wraps() {
        for k in [1, 7, 8, 31, 32, 63, 64] {
            let half = if k == 64 {
                i64::MAX
            } else {
                (1i64 << (k - 1)) - 1
            };
            for x in [0, 1, -1, half, -half - 1, 5, -5] {
                let x = if k == 1 {
                    x.clamp(-1, 0)
                } else {
                    x.clamp(-half - 1, half)
                };
                assert_eq!(signed(embed(x, k), k), x, "k = {k}, x = {x}");
            }
        }
        assert_eq!(mask(64), u64::MAX);
        assert_eq!(mask(1), 1);
        assert_eq!(embed(-1, 8), 255);
        assert_eq!(signed(128, 8), -128);
        assert_eq!(bytes_for(1), 1);
        assert_eq!(bytes_for(24), 3);
        assert_eq!(bytes_for(64), 8);
    }
}
