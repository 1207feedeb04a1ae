//! Prime fields for secret sharing: the [`Field`] trait, the Mersenne field
//! `GF(2^61 - 1)` ([`M61`]) for bulk arithmetic, and the Ristretto255 scalar field
//! (`curve25519_dalek::Scalar`, order `ℓ = 2^252 + 27742317777372353535851937790883648493`) for
//! sharings that are committed to in the group (Feldman 1987).
//!
//! Shamir's scheme (Shamir, "How to share a secret", CACM 22(11), 1979) works over any field with
//! more elements than there are shares: share `i` is `f(i)` for a random polynomial `f` of degree
//! `t` with `f(0)` the secret. All sharing, interpolation and decoding code in this crate is
//! generic over [`Field`], so a tiny field (for instance `GF(257)`) can be plugged in to check the
//! secrecy of the scheme exhaustively.
//!
//! Reduction modulo the Mersenne prime `p = 2^61 - 1` uses `2^61 ≡ 1 (mod p)`: a 122-bit product
//! `h·2^61 + l` reduces to `h + l`, followed by one conditional subtraction.

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use curve25519_dalek::scalar::Scalar;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroize;

/// A prime field usable for Shamir sharing.
///
/// Implementations must be fields (every non-zero element invertible), and the integers
/// `1..=MAX_INDEX` must map through [`from_u64`](Self::from_u64) to distinct non-zero elements:
/// they are the evaluation points of the shares.
pub trait Field:
    Copy
    + Clone
    + Eq
    + Debug
    + Default
    + Send
    + Sync
    + 'static
    + Zeroize
    + ConstantTimeEq
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
{
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
    /// Largest share index: `1..=MAX_INDEX` are distinct non-zero field elements.
    const MAX_INDEX: u64;
    /// Length in bytes of the canonical encoding ([`write_bytes`](Self::write_bytes)).
    const ENCODED_LEN: usize;

    /// The residue of `v` in the field.
    fn from_u64(v: u64) -> Self;
    /// A uniformly random element.
    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self;
    /// The multiplicative inverse, `None` for zero.
    fn inverse(&self) -> Option<Self>;
    /// Writes the canonical little-endian encoding into `out`, which must be
    /// [`ENCODED_LEN`](Self::ENCODED_LEN) bytes long.
    fn write_bytes(&self, out: &mut [u8]);
    /// Decodes a canonical encoding; `None` if `bytes` has the wrong length or encodes a value
    /// outside the field.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;

    /// Whether this is zero (constant time).
    fn is_zero(&self) -> Choice {
        self.ct_eq(&Self::ZERO)
    }

    /// `self^e` by square and multiply (the exponent is public).
    fn pow(&self, mut e: u64) -> Self {
        let mut base = *self;
        let mut acc = Self::ONE;
        while e > 0 {
            if e & 1 == 1 {
                acc *= base;
            }
            base *= base;
            e >>= 1;
        }
        acc
    }
}

/// The Mersenne prime `2^61 - 1`.
pub const M61_MODULUS: u64 = (1 << 61) - 1;

/// An element of `GF(2^61 - 1)`, always kept reduced in `0..p`. Shares and secrets are such
/// elements: `==` runs in constant time, and there is no order or hash to branch on.
#[derive(Clone, Copy, Default, Zeroize, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct M61(u64);

impl M61 {
    /// The element `v mod p`.
    pub const fn new(v: u64) -> Self {
        M61(reduce64(v))
    }

    /// The element `v` if `v < p`, else `None` (for strict decoding).
    pub const fn from_canonical(v: u64) -> Option<Self> {
        if v < M61_MODULUS {
            Some(M61(v))
        } else {
            None
        }
    }

    /// The canonical representative in `0..p`.
    pub const fn value(self) -> u64 {
        self.0
    }

    /// The signed integer `v` as a field element (`v mod p`); exact for `|v| < p`.
    pub const fn from_i64(v: i64) -> Self {
        if v >= 0 {
            M61::new(v as u64)
        } else {
            let m = M61::new(v.unsigned_abs());
            M61(if m.0 == 0 { 0 } else { M61_MODULUS - m.0 })
        }
    }

    /// The representative in `-(p-1)/2 ..= (p-1)/2`: values above `p/2` read as negative.
    pub const fn to_i64(self) -> i64 {
        if self.0 > M61_MODULUS / 2 {
            -((M61_MODULUS - self.0) as i64)
        } else {
            self.0 as i64
        }
    }

    /// Multiply-accumulate without intermediate reduction: `acc + a·b` as a 128-bit value.
    /// Sums of up to 64 such products fit in a `u128` before [`reduce128`](Self::reduce128).
    #[inline]
    pub fn mul_wide(a: M61, b: M61) -> u128 {
        (a.0 as u128) * (b.0 as u128)
    }

    /// Reduces any 128-bit value modulo `p`.
    #[inline]
    pub fn reduce128(x: u128) -> M61 {
        // x = h·2^122 + m·2^61 + l, and 2^61 ≡ 1.
        let l = (x as u64) & M61_MODULUS;
        let m = ((x >> 61) as u64) & M61_MODULUS;
        let h = (x >> 122) as u64;
        M61(reduce64(l + m + h))
    }
}

const fn reduce64(v: u64) -> u64 {
    let r = (v & M61_MODULUS) + (v >> 61);
    if r >= M61_MODULUS {
        r - M61_MODULUS
    } else {
        r
    }
}

impl From<M61> for u64 {
    fn from(v: M61) -> u64 {
        v.0
    }
}

impl TryFrom<u64> for M61 {
    type Error = &'static str;
    fn try_from(v: u64) -> Result<Self, Self::Error> {
        M61::from_canonical(v).ok_or("value is not below 2^61 - 1")
    }
}

impl Debug for M61 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "M61({})", self.0)
    }
}

impl ConstantTimeEq for M61 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for M61 {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for M61 {}

impl Add for M61 {
    type Output = M61;
    #[inline]
    fn add(self, rhs: M61) -> M61 {
        let s = self.0 + rhs.0;
        M61(if s >= M61_MODULUS { s - M61_MODULUS } else { s })
    }
}

impl Sub for M61 {
    type Output = M61;
    #[inline]
    fn sub(self, rhs: M61) -> M61 {
        let (d, borrow) = self.0.overflowing_sub(rhs.0);
        M61(if borrow {
            d.wrapping_add(M61_MODULUS)
        } else {
            d
        })
    }
}

impl Neg for M61 {
    type Output = M61;
    #[inline]
    fn neg(self) -> M61 {
        M61(if self.0 == 0 { 0 } else { M61_MODULUS - self.0 })
    }
}

impl Mul for M61 {
    type Output = M61;
    #[inline]
    fn mul(self, rhs: M61) -> M61 {
        let x = (self.0 as u128) * (rhs.0 as u128);
        // x < 2^122: x = h·2^61 + l with h, l < 2^61, and h + l < 2^62.
        let l = (x as u64) & M61_MODULUS;
        let h = (x >> 61) as u64;
        M61(reduce64(l + h))
    }
}

impl AddAssign for M61 {
    #[inline]
    fn add_assign(&mut self, rhs: M61) {
        *self = *self + rhs;
    }
}

impl SubAssign for M61 {
    #[inline]
    fn sub_assign(&mut self, rhs: M61) {
        *self = *self - rhs;
    }
}

impl MulAssign for M61 {
    #[inline]
    fn mul_assign(&mut self, rhs: M61) {
        *self = *self * rhs;
    }
}

impl Field for M61 {
    const ZERO: Self = M61(0);
    const ONE: Self = M61(1);
    const MAX_INDEX: u64 = M61_MODULUS - 1;
    const ENCODED_LEN: usize = 8;

    fn from_u64(v: u64) -> Self {
        M61::new(v)
    }

    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        loop {
            // 61 uniform bits; only the value p itself is rejected (probability 2^-61).
            let v = rng.next_u64() >> 3;
            if v < M61_MODULUS {
                return M61(v);
            }
        }
    }

    fn inverse(&self) -> Option<Self> {
        if self.0 == 0 {
            None
        } else {
            Some(self.pow(M61_MODULUS - 2))
        }
    }

    fn write_bytes(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0.to_le_bytes());
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 8] = bytes.try_into().ok()?;
        M61::from_canonical(u64::from_le_bytes(arr))
    }
}

impl Field for Scalar {
    const ZERO: Self = Scalar::ZERO;
    const ONE: Self = Scalar::ONE;
    const MAX_INDEX: u64 = u64::MAX;
    const ENCODED_LEN: usize = 32;

    fn from_u64(v: u64) -> Self {
        Scalar::from(v)
    }

    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut wide = zeroize::Zeroizing::new([0u8; 64]);
        rng.fill_bytes(wide.as_mut());
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    fn inverse(&self) -> Option<Self> {
        if bool::from(Field::is_zero(self)) {
            None
        } else {
            Some(self.invert())
        }
    }

    fn write_bytes(&self, out: &mut [u8]) {
        out.copy_from_slice(self.as_bytes());
    }

    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Option::from(Scalar::from_canonical_bytes(arr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn reference_mul(a: u64, b: u64) -> u64 {
        ((a as u128 * b as u128) % M61_MODULUS as u128) as u64
    }

    #[test]
    fn m61_arithmetic_matches_reference() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let edge = [0, 1, 2, M61_MODULUS - 1, M61_MODULUS - 2, 1 << 60];
        let mut vals: Vec<u64> = edge.to_vec();
        vals.extend((0..200).map(|_| M61::random(&mut rng).value()));
        for &a in &vals {
            for &b in &vals[..20] {
                let (x, y) = (M61::new(a), M61::new(b));
                assert_eq!((x * y).value(), reference_mul(a, b));
                assert_eq!(
                    (x + y).value(),
                    ((a as u128 + b as u128) % M61_MODULUS as u128) as u64
                );
                assert_eq!((x - y + y), x);
                assert_eq!(x + (-x), M61::ZERO);
            }
            if a != 0 {
                let x = M61::new(a);
                assert_eq!(x * x.inverse().unwrap(), M61::ONE);
            }
        }
        assert_eq!(M61::ZERO.inverse(), None);
        assert_eq!(M61::new(u64::MAX).value(), u64::MAX % M61_MODULUS);
        let big = u128::MAX;
        assert_eq!(
            M61::reduce128(big).value(),
            (big % M61_MODULUS as u128) as u64
        );
    }

    #[test]
    fn m61_signed_roundtrip_and_encoding() {
        for v in [
            0i64,
            1,
            -1,
            42,
            -42,
            (M61_MODULUS / 2) as i64,
            -((M61_MODULUS / 2) as i64),
        ] {
            assert_eq!(M61::from_i64(v).to_i64(), v);
        }
        assert_eq!(M61::from_i64(-3) + M61::from_i64(3), M61::ZERO);
        let mut buf = [0u8; 8];
        M61::new(12345).write_bytes(&mut buf);
        assert_eq!(M61::from_bytes(&buf), Some(M61::new(12345)));
        assert_eq!(M61::from_bytes(&M61_MODULUS.to_le_bytes()), None);
        assert_eq!(M61::from_bytes(&[0u8; 7]), None);
    }

    #[test]
    fn scalar_field_encoding_and_inverse() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let x = <Scalar as Field>::random(&mut rng);
        let mut buf = [0u8; 32];
        x.write_bytes(&mut buf);
        assert_eq!(<Scalar as Field>::from_bytes(&buf), Some(x));
        assert_eq!(x * Field::inverse(&x).unwrap(), Scalar::ONE);
        assert_eq!(Field::inverse(&Scalar::ZERO), None);
        assert_eq!(<Scalar as Field>::from_bytes(&[0xff; 32]), None);
    }
}
