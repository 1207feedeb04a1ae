//! Conversions between values and the bit vectors that circuits take and produce.
//!
//! One convention throughout Veil (and the Bristol Fashion files, see `circuits/README.md`): a
//! value of width `w` is an integer whose bit `i` is element `i` of its bit vector, least
//! significant bit first; signed values are two's complement at their width; a hex string is
//! the integer written most significant digit first, as in the FIPS-197 and FIPS 180-4 test
//! vectors.

use crate::error::CircuitError;

/// The low `width` bits set (all 128 when `width >= 128`).
pub fn mask(width: usize) -> u128 {
    if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    }
}

/// Interprets the low `width` bits of `value` as a two's-complement number (0 for width 0;
/// `value` itself for widths of 128 or more).
pub fn sign_extend(value: u128, width: usize) -> i128 {
    match width {
        0 => 0,
        w if w >= 128 => value as i128,
        w => ((value << (128 - w)) as i128) >> (128 - w),
    }
}

/// The `width` low bits of `value`, least significant first; bits beyond 128 are zero.
pub fn bits_from_u128(value: u128, width: usize) -> Vec<bool> {
    (0..width)
        .map(|i| i < 128 && (value >> i) & 1 == 1)
        .collect()
}

/// The integer whose bit `i` is `bits[i]`, from the first 128 bits (use [`bits_to_hex`] for
/// wider values).
pub fn bits_to_u128(bits: &[bool]) -> u128 {
    bits.iter()
        .take(128)
        .enumerate()
        .fold(0, |acc, (i, &b)| acc | (u128::from(b) << i))
}

/// The two's complement of `value` at `width` bits, least significant first (sign-extended
/// beyond 128 bits, truncated below).
pub fn bits_from_i128(value: i128, width: usize) -> Vec<bool> {
    (0..width).map(|i| (value >> i.min(127)) & 1 == 1).collect()
}

/// The two's complement of `value` at `width` bits; see [`bits_from_i128`].
pub fn bits_from_i64(value: i64, width: usize) -> Vec<bool> {
    bits_from_i128(i128::from(value), width)
}

/// The two's-complement number of `bits.len()` bits (0 for no bits; the low 128 bits for
/// longer vectors).
pub fn bits_to_i128(bits: &[bool]) -> i128 {
    sign_extend(bits_to_u128(bits), bits.len())
}

/// Parses a hex string into a value of `width` bits.
///
/// The string is the integer most significant digit first, with an optional `0x` or `0X`
/// prefix; upper- and lowercase digits are accepted. Fewer digits than `width / 4` are
/// zero-extended; a value that needs more than `width` bits is an error, as are an empty
/// string and non-hex characters.
pub fn bits_from_hex(hex: &str, width: usize) -> Result<Vec<bool>, CircuitError> {
    let digits = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    if digits.is_empty() {
        return Err(CircuitError::Hex {
            reason: format!("`{hex}` has no digits"),
        });
    }
    let mut bits = vec![false; width];
    for (k, c) in digits.chars().rev().enumerate() {
        let d = c.to_digit(16).ok_or_else(|| CircuitError::Hex {
            reason: format!("`{c}` in `{hex}` is not a hex digit"),
        })?;
        for j in 0..4 {
            if (d >> j) & 1 == 1 {
                match bits.get_mut(4 * k + j) {
                    Some(b) => *b = true,
                    None => {
                        return Err(CircuitError::Hex {
                            reason: format!("`{hex}` does not fit in {width} bits"),
                        })
                    }
                }
            }
        }
    }
    Ok(bits)
}

/// Formats a value as `ceil(len / 4)` lowercase hex digits, most significant first.
pub fn bits_to_hex(bits: &[bool]) -> String {
    let digits = bits.len().div_ceil(4);
    (0..digits)
        .rev()
        .map(|k| {
            let d = (0..4).fold(0u32, |acc, j| {
                acc | (u32::from(bits.get(4 * k + j).copied().unwrap_or(false)) << j)
            });
            char::from_digit(d, 16).unwrap_or('0')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip() {
        assert_eq!(bits_from_u128(6, 4), vec![false, true, true, false]);
        assert_eq!(bits_to_u128(&[false, true, true, false]), 6);
        assert_eq!(bits_from_u128(0xff, 4), vec![true; 4]);
        assert_eq!(bits_from_u128(u128::MAX, 130)[128..], [false, false]);
        assert_eq!(bits_from_i128(-1, 130), vec![true; 130]);
        assert_eq!(bits_from_i64(-2, 3), vec![false, true, true]);
        assert_eq!(bits_to_i128(&[false, true, true]), -2);
        assert_eq!(bits_to_i128(&[false, true, false]), 2);
        assert_eq!(bits_to_i128(&[]), 0);
        assert_eq!(sign_extend(0x80, 8), -128);
        assert_eq!(sign_extend(0x7f, 8), 127);
        assert_eq!(sign_extend(1, 1), -1);
        assert_eq!(sign_extend(u128::MAX, 128), -1);
        assert_eq!(mask(0), 0);
        assert_eq!(mask(3), 7);
        assert_eq!(mask(200), u128::MAX);
        for w in 1..=128 {
            for v in [0i128, 1, -1, i128::MIN, i128::MAX, 12345, -98765] {
                let bits = bits_from_i128(v, w);
                assert_eq!(bits_to_u128(&bits), (v as u128) & mask(w));
                assert_eq!(bits_to_i128(&bits), sign_extend(v as u128, w));
            }
        }
    }

    #[test]
    fn hex_convention() {
        let bits = bits_from_hex("0x1f", 8).unwrap();
        assert_eq!(bits_to_u128(&bits), 0x1f);
        assert_eq!(bits_to_hex(&bits), "1f");
        assert_eq!(bits_to_hex(&bits_from_hex("A", 12).unwrap()), "00a");
        assert_eq!(bits_to_hex(&bits_from_u128(5, 5)), "05");
        assert_eq!(bits_to_hex(&[]), "");
        assert_eq!(bits_from_hex("0", 0).unwrap(), Vec::<bool>::new());
        assert_eq!(bits_from_hex("000f", 4).unwrap(), vec![true; 4]);
        assert!(bits_from_hex("1f", 4).is_err());
        assert!(bits_from_hex("10", 4).is_err());
        assert!(bits_from_hex("7", 2).is_err());
        assert!(bits_from_hex("3", 2).is_ok());
        assert!(bits_from_hex("", 8).is_err());
        assert!(bits_from_hex("0x", 8).is_err());
        assert!(bits_from_hex("0g", 8).is_err());
        assert!(bits_from_hex("é", 8).is_err());
        let long = "00112233445566778899aabbccddeeff";
        let bits = bits_from_hex(long, 128).unwrap();
        assert_eq!(bits_to_u128(&bits), 0x00112233445566778899aabbccddeeff);
        assert_eq!(bits_to_hex(&bits), long);
        let wide = "1".repeat(64);
        assert_eq!(bits_to_hex(&bits_from_hex(&wide, 256).unwrap()), wide);
    }
}
