//! `(t, n)` Shamir secret sharing over any [`Field`]: dealing, reconstruction by Lagrange
//! interpolation, robust reconstruction by Berlekamp-Welch decoding, and proactive refresh.
//!
//! Shamir, "How to share a secret", CACM 22(11), 1979: the dealer picks a uniformly random
//! polynomial `f` of degree at most `t` with `f(0) = s` and gives share `i` the value `f(i)`,
//! `i = 1..=n`. Any `t + 1` shares determine `f` and thus `s` (Lagrange interpolation at 0);
//! any `t` shares are uniformly distributed whatever `s` is.
//!
//! # Threshold convention
//!
//! [`SharingParams`] is stated in terms of the **degree** `t`: `t + 1` shares are needed to
//! reconstruct, `t` reveal nothing. The usual "`k`-of-`n`" (CLI `--threshold k`) is
//! [`SharingParams::threshold`]`(k, n)` with `k = t + 1`, so "3-of-5" is degree 2.
//!
//! Share indices are `1..=n`, and share `i` is the evaluation at the field element `i`.
//!
//! # Refresh
//!
//! Proactive refresh (Herzberg, Jarecki, Krawczyk and Yung, "Proactive secret sharing or: how
//! to cope with perpetual leakage", CRYPTO 1995, section 3) adds a random sharing of zero to
//! every share: the secret is unchanged, the new shares are independent of the old ones, and old
//! shares no longer combine with new ones. In the distributed protocol every holder deals one
//! [`zero_sharing`] and each holder adds all the pieces it receives
//! ([`ShareVec::add_assign`]); [`refresh`] does the same with a single zero sharing.

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::berlekamp_welch;
use crate::error::ShamirError;
use crate::field::Field;
use crate::poly::{evaluate, lagrange_coefficients, Polynomial};

/// Largest number of shares of one dealing (also bounds decoding work on hostile input).
pub const MAX_SHARES: usize = 255;

/// The shape of a sharing: degree `t` and number of shares `n`, with `0 ≤ t < n ≤ MAX_SHARES`.
///
/// `t + 1` shares reconstruct; `t` shares reveal nothing. See the
/// [module documentation](self#threshold-convention).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SharingParams {
    degree: usize,
    shares: usize,
}

impl SharingParams {
    /// Parameters for polynomials of degree `degree` (`t`) and `shares` (`n`) shares.
    ///
    /// # Errors
    ///
    /// [`ShamirError::InvalidParams`] unless `degree < shares ≤ MAX_SHARES`.
    pub fn new(degree: usize, shares: usize) -> Result<Self, ShamirError> {
        if shares == 0 || shares > MAX_SHARES {
            return Err(ShamirError::InvalidParams(format!(
                "{shares} shares (1..={MAX_SHARES})"
            )));
        }
        if degree >= shares {
            return Err(ShamirError::InvalidParams(format!(
                "degree {degree} needs more than {shares} shares"
            )));
        }
        Ok(SharingParams { degree, shares })
    }

    /// "`needed`-of-`shares`": `needed` shares reconstruct (degree `needed - 1`).
    ///
    /// # Errors
    ///
    /// [`ShamirError::InvalidParams`] unless `1 ≤ needed ≤ shares ≤ MAX_SHARES`.
    pub fn threshold(needed: usize, shares: usize) -> Result<Self, ShamirError> {
        if needed == 0 {
            return Err(ShamirError::InvalidParams(
                "at least one share must be needed".into(),
            ));
        }
        Self::new(needed - 1, shares)
    }

    /// The polynomial degree `t`.
    pub fn degree(&self) -> usize {
        self.degree
    }

    /// The number of shares `n`.
    pub fn shares(&self) -> usize {
        self.shares
    }

    /// Shares needed to reconstruct: `t + 1`.
    pub fn needed(&self) -> usize {
        self.degree + 1
    }

    /// Bad shares that robust reconstruction from all `n` shares corrects: `⌊(n - t - 1)/2⌋`.
    pub fn correctable_errors(&self) -> usize {
        berlekamp_welch::max_errors(self.shares, self.degree)
    }

    pub(crate) fn check_field<F: Field>(&self) -> Result<(), ShamirError> {
        if self.shares as u64 > F::MAX_INDEX {
            return Err(ShamirError::InvalidParams(format!(
                "{} shares exceed the field's {} evaluation points",
                self.shares,
                F::MAX_INDEX
            )));
        }
        Ok(())
    }
}

/// One share of a single field element: index `i` and value `f(i)`. Zeroized on drop;
/// `==` compares the value in constant time (the index is public); `Debug` shows the index only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share<F: Field> {
    index: u32,
    value: F,
}

impl<F: Field> std::fmt::Debug for Share<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Share")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl<F: Field> PartialEq for Share<F> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && bool::from(self.value.ct_eq(&other.value))
    }
}

impl<F: Field> Eq for Share<F> {}

impl<F: Field> Share<F> {
    /// A share with this index and value (for shares received or decoded elsewhere; indices
    /// are checked when shares are combined).
    pub fn new(index: u32, value: F) -> Self {
        Share { index, value }
    }

    /// The share index `i` (evaluation point), from 1.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The share value `f(i)`.
    pub fn value(&self) -> &F {
        &self.value
    }
}

/// One share of a vector of field elements: index `i` and `f_j(i)` for each element `j`, all
/// polynomials independent. Zeroized on drop; `==` compares the values in constant time
/// (the index and the length are public); `Debug` shows those only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ShareVec<F: Field> {
    index: u32,
    values: Vec<F>,
}

impl<F: Field> std::fmt::Debug for ShareVec<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareVec")
            .field("index", &self.index)
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl<F: Field> PartialEq for ShareVec<F> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && bool::from(self.values[..].ct_eq(&other.values[..]))
    }
}

impl<F: Field> Eq for ShareVec<F> {}

impl<F: Field> ShareVec<F> {
    /// A vector share with this index and values.
    pub fn new(index: u32, values: Vec<F>) -> Self {
        ShareVec { index, values }
    }

    /// The share index, from 1.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The share values, one per shared element.
    pub fn values(&self) -> &[F] {
        &self.values
    }

    /// Number of shared elements.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no element is shared.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Adds another share of the same index element-wise (sharings add: the sum of sharings of
    /// `a` and `b` is a sharing of `a + b`).
    ///
    /// # Errors
    ///
    /// [`ShamirError::Mismatched`] if the indices or lengths differ.
    pub fn add_assign(&mut self, other: &ShareVec<F>) -> Result<(), ShamirError> {
        if self.index != other.index {
            return Err(ShamirError::Mismatched("share index"));
        }
        if self.values.len() != other.values.len() {
            return Err(ShamirError::Mismatched("vector length"));
        }
        for (a, b) in self.values.iter_mut().zip(&other.values) {
            *a += *b;
        }
        Ok(())
    }
}

/// A secret recovered by robust reconstruction, with the shares found to be wrong. `Debug`
/// shows the wrong shares, not the secret.
pub struct Recovered<T: Zeroize> {
    /// The secret.
    pub secret: Zeroizing<T>,
    /// Indices of the shares that were wrong and corrected around, ascending.
    pub bad_indices: Vec<u32>,
}

impl<T: Zeroize> std::fmt::Debug for Recovered<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recovered")
            .field("bad_indices", &self.bad_indices)
            .finish_non_exhaustive()
    }
}

impl<T: Zeroize> Recovered<T> {
    /// The secret if no share was wrong, else [`ShamirError::BadShares`] naming them.
    fn strict(self) -> Result<Zeroizing<T>, ShamirError> {
        if self.bad_indices.is_empty() {
            Ok(self.secret)
        } else {
            Err(ShamirError::BadShares {
                indices: self.bad_indices,
            })
        }
    }
}

/// Deals `params.shares()` shares of `secret` with a fresh random polynomial of degree
/// `params.degree()` drawn from `rng`.
///
/// # Errors
///
/// [`ShamirError::InvalidParams`] if the field has fewer than `n` non-zero points.
pub fn deal<F: Field, R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secret: &F,
    params: SharingParams,
    rng: &mut R,
) -> Result<Vec<Share<F>>, ShamirError> {
    params.check_field::<F>()?;
    let poly = Polynomial::random(*secret, params.degree, rng);
    Ok(shares_of(&poly, params.shares))
}

/// Deals shares of `secret` from the given higher coefficients `c_1..c_t` (so the polynomial
/// is `secret + c_1 x + … + c_t x^t`), for `n` shares.
///
/// Secrecy requires the coefficients to be uniformly random; this entry point exists for
/// exhaustive tests of the scheme and for reproducible dealings.
///
/// # Errors
///
/// [`ShamirError::InvalidParams`] if the degree or `n` are out of range.
pub fn deal_from_coefficients<F: Field>(
    secret: &F,
    coefficients: &[F],
    n: usize,
) -> Result<Vec<Share<F>>, ShamirError> {
    let params = SharingParams::new(coefficients.len(), n)?;
    params.check_field::<F>()?;
    let mut c = Vec::with_capacity(coefficients.len() + 1);
    c.push(*secret);
    c.extend_from_slice(coefficients);
    Ok(shares_of(&Polynomial::from_coefficients(c), n))
}

fn shares_of<F: Field>(poly: &Polynomial<F>, n: usize) -> Vec<Share<F>> {
    (1..=n as u32)
        .map(|i| Share::new(i, poly.evaluate(F::from_u64(u64::from(i)))))
        .collect()
}

/// Deals a vector of secrets at once (independent polynomials per element): share `i` holds
/// `f_j(i)` for every `j`.
///
/// # Errors
///
/// [`ShamirError::InvalidParams`] if the field has fewer than `n` non-zero points.
pub fn deal_vec<F: Field, R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secrets: &[F],
    params: SharingParams,
    rng: &mut R,
) -> Result<Vec<ShareVec<F>>, ShamirError> {
    params.check_field::<F>()?;
    let n = params.shares;
    let t = params.degree;
    let mut out: Vec<ShareVec<F>> = (1..=n as u32)
        .map(|i| ShareVec::new(i, Vec::with_capacity(secrets.len())))
        .collect();
    let xs: Vec<F> = (1..=n as u64).map(F::from_u64).collect();
    let mut coeffs = Zeroizing::new(vec![F::ZERO; t + 1]);
    for s in secrets {
        coeffs[0] = *s;
        for c in coeffs[1..].iter_mut() {
            *c = F::random(rng);
        }
        for (share, x) in out.iter_mut().zip(&xs) {
            share.values.push(evaluate(&coeffs, *x));
        }
    }
    Ok(out)
}

/// A fresh sharing of zero of a vector of `len` elements (one party's contribution to a
/// proactive refresh).
///
/// # Errors
///
/// As [`deal_vec`].
pub fn zero_sharing<F: Field, R: rand::RngCore + rand::CryptoRng + ?Sized>(
    len: usize,
    params: SharingParams,
    rng: &mut R,
) -> Result<Vec<ShareVec<F>>, ShamirError> {
    deal_vec(&vec![F::ZERO; len], params, rng)
}

/// Refreshes `shares` in place by adding one fresh sharing of zero: same secret, new shares.
/// Every share of the dealing must be present (shares not refreshed no longer combine with
/// refreshed ones).
///
/// # Errors
///
/// [`ShamirError::Mismatched`] if the shares have different lengths,
/// [`ShamirError::IndexOutOfRange`] / [`ShamirError::DuplicateIndex`] for bad indices.
pub fn refresh<F: Field, R: rand::RngCore + rand::CryptoRng + ?Sized>(
    shares: &mut [ShareVec<F>],
    params: SharingParams,
    rng: &mut R,
) -> Result<(), ShamirError> {
    check_indices::<F>(shares.iter().map(|s| s.index), params.shares)?;
    let len = shares.first().map_or(0, ShareVec::len);
    if shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::Mismatched("vector length"));
    }
    let zero = zero_sharing::<F, R>(len, params, rng)?;
    for s in shares.iter_mut() {
        s.add_assign(&zero[s.index as usize - 1])?;
    }
    Ok(())
}

/// Checks that indices are in `1..=max` (and within the field) and pairwise distinct.
pub(crate) fn check_indices<F: Field>(
    indices: impl Iterator<Item = u32>,
    max: usize,
) -> Result<(), ShamirError> {
    let max = max.min(MAX_SHARES).min(F::MAX_INDEX as usize) as u32;
    let mut seen = [false; MAX_SHARES + 1];
    for i in indices {
        if i == 0 || i > max {
            return Err(ShamirError::IndexOutOfRange { index: i, max });
        }
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(ShamirError::DuplicateIndex { index: i });
        }
    }
    Ok(())
}

/// Reconstructs the secret from at least `degree + 1` shares by Lagrange interpolation at 0.
///
/// With more than `degree + 1` shares, the extra ones are checked against the interpolant; if
/// any disagrees, Berlekamp-Welch decoding names the wrong shares.
///
/// # Errors
///
/// [`ShamirError::NotEnoughShares`], [`ShamirError::IndexOutOfRange`],
/// [`ShamirError::DuplicateIndex`], and on inconsistent shares [`ShamirError::BadShares`]
/// (identified) or [`ShamirError::Uncorrectable`].
pub fn reconstruct<F: Field>(
    degree: usize,
    shares: &[Share<F>],
) -> Result<Zeroizing<F>, ShamirError> {
    reconstruct_robust(degree, shares)?.strict()
}

/// Reconstructs the secret, correcting up to `⌊(k - degree - 1)/2⌋` wrong shares among the `k`
/// given (Berlekamp-Welch), and reports which were wrong.
///
/// # Errors
///
/// As [`reconstruct`], except that correctable errors are returned in
/// [`Recovered::bad_indices`] rather than as an error.
pub fn reconstruct_robust<F: Field>(
    degree: usize,
    shares: &[Share<F>],
) -> Result<Recovered<F>, ShamirError> {
    let k = shares.len();
    check_indices::<F>(shares.iter().map(|s| s.index), MAX_SHARES)?;
    if k < degree + 1 {
        return Err(ShamirError::NotEnoughShares {
            got: k,
            needed: degree + 1,
        });
    }
    let xs: Vec<F> = shares
        .iter()
        .map(|s| F::from_u64(u64::from(s.index)))
        .collect();
    let ys: Zeroizing<Vec<F>> = Zeroizing::new(shares.iter().map(|s| s.value).collect());
    let (secret, bad) = robust_element(&xs, &ys, degree, &Checker::new(&xs, degree)?)?;
    Ok(Recovered {
        secret: Zeroizing::new(secret),
        bad_indices: bad.iter().map(|&p| shares[p].index).collect(),
    })
}

/// Reconstructs a shared vector from at least `degree + 1` vector shares (Lagrange
/// coefficients computed once for all elements); extra shares are checked as in
/// [`reconstruct`].
///
/// # Errors
///
/// As [`reconstruct`], plus [`ShamirError::Mismatched`] if the shares have different lengths.
pub fn reconstruct_vec<F: Field>(
    degree: usize,
    shares: &[ShareVec<F>],
) -> Result<Zeroizing<Vec<F>>, ShamirError> {
    reconstruct_vec_robust(degree, shares)?.strict()
}

/// Robust reconstruction of a shared vector: each element is decoded on its own, and the share
/// indices wrong in any element are reported.
///
/// # Errors
///
/// As [`reconstruct_robust`], plus [`ShamirError::Mismatched`] for different lengths.
pub fn reconstruct_vec_robust<F: Field>(
    degree: usize,
    shares: &[ShareVec<F>],
) -> Result<Recovered<Vec<F>>, ShamirError> {
    let k = shares.len();
    check_indices::<F>(shares.iter().map(|s| s.index), MAX_SHARES)?;
    if k < degree + 1 {
        return Err(ShamirError::NotEnoughShares {
            got: k,
            needed: degree + 1,
        });
    }
    let len = shares[0].len();
    if shares.iter().any(|s| s.len() != len) {
        return Err(ShamirError::Mismatched("vector length"));
    }
    let xs: Vec<F> = shares
        .iter()
        .map(|s| F::from_u64(u64::from(s.index)))
        .collect();
    let checker = Checker::new(&xs, degree)?;
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut bad_positions = vec![false; k];
    let mut ys = Zeroizing::new(vec![F::ZERO; k]);
    for j in 0..len {
        for (y, s) in ys.iter_mut().zip(shares) {
            *y = s.values[j];
        }
        let (v, bad) = robust_element(&xs, &ys, degree, &checker)?;
        for p in bad {
            bad_positions[p] = true;
        }
        out.push(v);
    }
    let mut bad_indices: Vec<u32> = (0..k)
        .filter(|&p| bad_positions[p])
        .map(|p| shares[p].index)
        .collect();
    bad_indices.sort_unstable();
    Ok(Recovered {
        secret: out,
        bad_indices,
    })
}

/// Precomputed Lagrange coefficients: at 0 from the first `t + 1` points, and at each extra
/// point from the same `t + 1` points (to check consistency).
struct Checker<F: Field> {
    at_zero: Vec<F>,
    at_extra: Vec<Vec<F>>,
}

impl<F: Field> Checker<F> {
    fn new(xs: &[F], degree: usize) -> Result<Self, ShamirError> {
        let base = &xs[..degree + 1];
        let bad = || ShamirError::InvalidParams("repeated evaluation point".into());
        let at_zero = lagrange_coefficients(base, F::ZERO).ok_or_else(bad)?;
        let at_extra = xs[degree + 1..]
            .iter()
            .map(|x| lagrange_coefficients(base, *x).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        Ok(Checker { at_zero, at_extra })
    }
}

fn dot<F: Field>(a: &[F], b: &[F]) -> F {
    a.iter().zip(b).fold(F::ZERO, |acc, (x, y)| acc + *x * *y)
}

/// Value at zero of the shares `(xs, ys)`, plus positions of wrong shares if any had to be
/// corrected.
fn robust_element<F: Field>(
    xs: &[F],
    ys: &[F],
    degree: usize,
    checker: &Checker<F>,
) -> Result<(F, Vec<usize>), ShamirError> {
    let base = &ys[..degree + 1];
    let mut consistent = subtle::Choice::from(1u8);
    for (coef, y) in checker.at_extra.iter().zip(&ys[degree + 1..]) {
        consistent &= dot(coef, base).ct_eq(y);
    }
    if bool::from(consistent) {
        return Ok((dot(&checker.at_zero, base), Vec::new()));
    }
    let points: Zeroizing<Vec<(F, F)>> =
        Zeroizing::new(xs.iter().copied().zip(ys.iter().copied()).collect());
    let mut d = berlekamp_welch::decode(&points, degree)?;
    let secret = d.polynomial[0];
    d.polynomial.zeroize();
    Ok((secret, std::mem::take(&mut d.error_positions)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M61;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}

    #[test]
    fn debug_of_shares_and_secrets_shows_no_value() {
        let secret = M61::new(987_654_321);
        let share = Share::new(3, secret);
        let vec = ShareVec {
            index: 4,
            values: vec![secret, secret],
        };
        let recovered = Recovered {
            secret: Zeroizing::new(secret),
            bad_indices: vec![2],
        };
        for text in [
            format!("{share:?}"),
            format!("{vec:?}"),
            format!("{recovered:?}"),
        ] {
            assert!(!text.contains("987654321"), "{text}");
        }
        assert_eq!(format!("{share:?}"), "Share { index: 3, .. }");
        assert_eq!(format!("{vec:?}"), "ShareVec { index: 4, len: 2, .. }");
        assert_eq!(
            format!("{recovered:?}"),
            "Recovered { bad_indices: [2], .. }"
        );
        assert_eq!(secret, M61::new(987_654_321));
        assert_ne!(secret, M61::new(987_654_322));
    }

    #[test]
    fn shares_zeroize_and_compare_in_constant_time() {
        use crate::feldman::FeldmanShare;
        use crate::mpc::SharedVec;
        use crate::Scalar;
        assert_zeroize_on_drop::<Share<M61>>();
        assert_zeroize_on_drop::<ShareVec<M61>>();
        assert_zeroize_on_drop::<FeldmanShare>();
        assert_zeroize_on_drop::<SharedVec>();

        let mut s = Share::new(3, M61::new(123_456_789u64));
        assert_eq!(s, Share::new(3, M61::new(123_456_789u64)));
        assert_ne!(s, Share::new(3, M61::new(123_456_788u64)));
        assert_ne!(s, Share::new(4, M61::new(123_456_789u64)));
        // What `Drop` runs (the derived `ZeroizeOnDrop`).
        s.zeroize();
        assert_eq!((s.index(), *s.value()), (0, M61::ZERO));

        let values: Vec<M61> = (1..=5u64).map(M61::new).collect();
        let mut v = ShareVec::new(2, values.clone());
        assert_eq!(v, ShareVec::new(2, values.clone()));
        assert_ne!(v, ShareVec::new(2, values[..4].to_vec()));
        v.zeroize();
        assert!(v.values().is_empty() && v.index() == 0);

        let mut sv = SharedVec::from_shares(values.clone());
        assert_eq!(sv, SharedVec::from_shares(values));
        sv.zeroize();
        assert!(sv.is_empty());

        let scalars = vec![Scalar::from(7u64), Scalar::from(9u64)];
        let id = crate::feldman::DealingId([1; 32]);
        let mut f = FeldmanShare::new(id, 1, scalars.clone());
        assert_eq!(f, FeldmanShare::new(id, 1, scalars));
        f.zeroize();
        assert!(f.values().is_empty() && f.index() == 0);

        let mut p = Polynomial::from_coefficients(vec![M61::new(5u64), M61::new(6u64)]);
        assert_zeroize_on_drop::<Polynomial<M61>>();
        p.zeroize();
        assert!(p.coefficients().is_empty());
    }

    #[test]
    fn params_conventions() {
        let p = SharingParams::threshold(3, 5).unwrap();
        assert_eq!((p.degree(), p.needed(), p.shares()), (2, 3, 5));
        assert_eq!(p.correctable_errors(), 1);
        assert!(SharingParams::new(5, 5).is_err());
        assert!(SharingParams::new(0, 256).is_err());
        assert!(SharingParams::threshold(0, 3).is_err());
    }

    #[test]
    fn vec_roundtrip_and_refresh() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let params = SharingParams::threshold(3, 5).unwrap();
        let secrets: Vec<M61> = (0..50).map(|_| M61::random(&mut rng)).collect();
        let mut shares = deal_vec(&secrets, params, &mut rng).unwrap();
        assert_eq!(*reconstruct_vec(2, &shares[1..4]).unwrap(), secrets);
        let before = shares.clone();
        refresh(&mut shares, params, &mut rng).unwrap();
        assert_ne!(before, shares);
        assert_eq!(*reconstruct_vec(2, &shares[2..]).unwrap(), secrets);
    }
}
