//! Fixed-point encoding of signed numbers into `GF(2^61 - 1)`.
//!
//! A real `r` with `f` fractional bits is the integer `round(r · 2^f)`; an integer `v` maps to
//! `v mod p`, and a field element above `p/2` decodes as negative (`v - p`). Integer arithmetic
//! in the field is exact as long as every value that is opened lies in
//! `-(p-1)/2 ..= (p-1)/2` (about `±1.15·10^18`); intermediate values may wrap freely. A product
//! of two numbers with `f` fractional bits has `2f`; this crate does not truncate shared values,
//! so results stay exact integers at the doubled scale.

use crate::error::MpcError;
use crate::field::{M61, M61_MODULUS};

/// Largest magnitude of a signed integer in the field: `(p - 1) / 2`.
pub const MAX_MAGNITUDE: i64 = (M61_MODULUS / 2) as i64;

/// Maps a signed integer into the field.
///
/// # Errors
///
/// [`MpcError::Overflow`] if `|v| > (p - 1) / 2`.
pub fn encode_int(v: i64) -> Result<M61, MpcError> {
    if v.unsigned_abs() > MAX_MAGNITUDE as u64 {
        return Err(MpcError::Overflow(format!("{v} exceeds ±{MAX_MAGNITUDE}")));
    }
    Ok(M61::from_i64(v))
}

/// Maps a slice of signed integers into the field.
///
/// # Errors
///
/// As [`encode_int`].
pub fn encode_ints(vs: &[i64]) -> Result<Vec<M61>, MpcError> {
    vs.iter().map(|&v| encode_int(v)).collect()
}

/// The signed integer a field element stands for (values above `p/2` are negative).
pub fn decode_int(v: M61) -> i64 {
    v.to_i64()
}

/// Fixed-point scale: `frac_bits` fractional bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedPoint {
    frac_bits: u32,
}

impl FixedPoint {
    /// A scale with `frac_bits` fractional bits.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] above 28 bits (a product, at `2f` bits, must leave room
    /// in the 60-bit signed range).
    pub fn new(frac_bits: u32) -> Result<Self, MpcError> {
        if frac_bits > 28 {
            return Err(MpcError::InvalidArgument(format!(
                "{frac_bits} fractional bits (at most 28)"
            )));
        }
        Ok(FixedPoint { frac_bits })
    }

    /// Fractional bits.
    pub fn frac_bits(&self) -> u32 {
        self.frac_bits
    }

    /// `round(r · 2^f)` as an integer.
    ///
    /// # Errors
    ///
    /// [`MpcError::Overflow`] if `r` is not finite or the result exceeds the field's range.
    pub fn quantize(&self, r: f64) -> Result<i64, MpcError> {
        let scaled = (r * (1u64 << self.frac_bits) as f64).round();
        if !scaled.is_finite() || scaled.abs() > MAX_MAGNITUDE as f64 {
            return Err(MpcError::Overflow(format!(
                "{r} at {} bits",
                self.frac_bits
            )));
        }
        Ok(scaled as i64)
    }

    /// The real number an integer at `scale_bits` fractional bits stands for (use
    /// `2 · frac_bits` for a product).
    pub fn dequantize(v: i64, scale_bits: u32) -> f64 {
        v as f64 / (1u64 << scale_bits.min(62)) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_signed() {
        for v in [0, 1, -1, 1 << 40, -(1 << 40), MAX_MAGNITUDE, -MAX_MAGNITUDE] {
            assert_eq!(decode_int(encode_int(v).unwrap()), v);
        }
        assert!(encode_int(i64::MAX).is_err());
        let fp = FixedPoint::new(8).unwrap();
        assert_eq!(fp.quantize(1.5).unwrap(), 384);
        assert_eq!(fp.quantize(-0.25).unwrap(), -64);
        assert_eq!(FixedPoint::dequantize(384 * 256, 16), 1.5);
        assert!(fp.quantize(f64::NAN).is_err());
        assert!(FixedPoint::new(29).is_err());
    }
}
