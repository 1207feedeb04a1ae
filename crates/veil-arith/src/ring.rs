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

/// Words of `width` bits packed tightly, least significant bit first (`⌈n·width/8⌉` bytes).
pub fn pack(words: &[u64], width: u32) -> Vec<u8> {
    let mut out = vec![0u8; (words.len() * width as usize).div_ceil(8)];
    for (j, b) in to_bits(words, width).into_iter().enumerate() {
        out[j / 8] |= u8::from(b) << (j % 8);
    }
    out
}

/// The `n` words of `width` bits that [`pack`] made; `None` unless `bytes` has exactly the
/// length `pack` gives and its padding bits are zero.
pub fn unpack(bytes: &[u8], n: usize, width: u32) -> Option<Vec<u64>> {
    let bits = n.checked_mul(width as usize)?;
    if bytes.len() != bits.div_ceil(8) {
        return None;
    }
    let all: Vec<bool> = (0..bytes.len() * 8)
        .map(|j| (bytes[j / 8] >> (j % 8)) & 1 == 1)
        .collect();
    if all[bits..].iter().any(|&b| b) {
        return None;
    }
    Some(from_bits(&all[..bits], width).into_iter().take(n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_refuses_other_lengths() {
        for width in [1, 5, 8, 13, 64] {
            let words: Vec<u64> = (0..11u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & mask(width))
                .collect();
            let bytes = pack(&words, width);
            assert_eq!(bytes.len(), (11 * width as usize).div_ceil(8));
            assert_eq!(unpack(&bytes, 11, width), Some(words.clone()));
            assert_eq!(unpack(&bytes[1..], 11, width), None);
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(unpack(&longer, 11, width), None);
        }
        // A set padding bit is refused.
        assert_eq!(unpack(&[0x80], 1, 5), None);
        assert_eq!(unpack(&[0x1f], 1, 5), Some(vec![31]));
    }

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
