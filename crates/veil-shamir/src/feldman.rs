//! Feldman verifiable secret sharing over Ristretto255, with dealing identifiers and proactive
//! refresh.
//!
//! Feldman, "A practical scheme for non-interactive verifiable secret sharing", FOCS 1987: the
//! dealer of a Shamir sharing (Shamir 1979) with polynomial `f(x) = a_0 + a_1 x + … + a_t x^t`
//! publishes `C_k = a_k·G` (here `G` is the Ristretto255 basepoint and the `a_k` are scalars mod
//! `ℓ`). Holder `i` checks its share `s_i` with `s_i·G = Σ_k i^k·C_k`. A share that fails is
//! named by its index. `C_0 = s·G` is public, so the scheme hides only secrets of high entropy
//! (see [`crate::secret`] for how byte strings are salted before sharing).
//!
//! A dealing shares a vector of scalars with independent polynomials; one share holds one value
//! per element and verification batches the elements with a random linear combination whose
//! 128-bit coefficients are derived by hashing the commitments and the share (a tampered share
//! passes with probability at most `2^-128` per attempt).
//!
//! Every dealing carries a random 32-byte [`DealingId`], stored in the commitments and in every
//! share: shares of different dealings are refused when combined.
//!
//! Refresh (Herzberg, Jarecki, Krawczyk and Yung, CRYPTO 1995, section 3.2): a
//! [`RefreshUpdate`] is a verifiable sharing of zero (its `Z_0` must be the identity); adding it to
//! every share and `Z_k` to every `C_k` keeps the secret, re-randomises the shares and gives the
//! dealing a new identifier derived from the old one and the update, so stale shares are refused.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::ShamirError;
use crate::field::Field;
use crate::poly::lagrange_coefficients;
use crate::shamir::{check_indices, SharingParams};

const DOMAIN_DIGEST: &[u8] = b"veil/shamir/feldman/commitments/v1";
const DOMAIN_BATCH: &[u8] = b"veil/shamir/feldman/batch/v1";
const DOMAIN_REFRESH: &[u8] = b"veil/shamir/feldman/refresh/v1";

/// A 32-byte identifier of one dealing, random for a fresh dealing.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DealingId(pub [u8; 32]);

impl DealingId {
    /// A fresh random identifier.
    pub fn random<R: rand::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut id = [0u8; 32];
        rng.fill_bytes(&mut id);
        DealingId(id)
    }

    /// Hex of the first 8 bytes, for messages.
    pub fn short_hex(&self) -> String {
        crate::hex::encode(&self.0[..8])
    }
}

impl std::fmt::Debug for DealingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DealingId({}…)", self.short_hex())
    }
}

/// The public commitments of a dealing: `C_{j,k} = a_{j,k}·G` for each shared element `j` and
/// coefficient `k = 0..=t`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments {
    dealing_id: DealingId,
    params: SharingParams,
    /// Per element, `t + 1` points.
    points: Vec<Vec<RistrettoPoint>>,
    /// [`Commitments::digest`], computed once.
    digest: [u8; 32],
}

/// One holder's share of a Feldman dealing: index `i` and `f_j(i)` per element. Zeroized on drop;
/// `==` compares the values in constant time (dealing id, index and length are public);
/// `Debug` shows those only.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct FeldmanShare {
    #[zeroize(skip)]
    dealing_id: DealingId,
    index: u32,
    values: Vec<Scalar>,
}

impl std::fmt::Debug for FeldmanShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeldmanShare")
            .field("dealing_id", &self.dealing_id)
            .field("index", &self.index)
            .field("len", &self.values.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for FeldmanShare {
    fn eq(&self, other: &Self) -> bool {
        self.dealing_id == other.dealing_id
            && self.index == other.index
            && bool::from(self.values[..].ct_eq(&other.values[..]))
    }
}

impl Eq for FeldmanShare {}

impl FeldmanShare {
    /// A share with these parts (for shares decoded elsewhere).
    pub fn new(dealing_id: DealingId, index: u32, values: Vec<Scalar>) -> Self {
        FeldmanShare {
            dealing_id,
            index,
            values,
        }
    }

    /// The dealing this share belongs to.
    pub fn dealing_id(&self) -> DealingId {
        self.dealing_id
    }

    /// The share index, from 1.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The share values, one per element.
    pub fn values(&self) -> &[Scalar] {
        &self.values
    }

    /// Mutable access to the values (for tests that tamper with a share).
    pub fn values_mut(&mut self) -> &mut [Scalar] {
        &mut self.values
    }
}

impl Commitments {
    /// Commitments from their parts; `points` holds `t + 1` points per element.
    ///
    /// # Errors
    ///
    /// [`ShamirError::Malformed`] if an element does not have `degree + 1` points.
    pub fn from_parts(
        dealing_id: DealingId,
        params: SharingParams,
        points: Vec<Vec<RistrettoPoint>>,
    ) -> Result<Self, ShamirError> {
        if points.iter().any(|p| p.len() != params.degree() + 1) {
            return Err(ShamirError::Malformed(
                "commitment count differs from degree + 1".into(),
            ));
        }
        Ok(Commitments::build(dealing_id, params, points))
    }

    fn build(
        dealing_id: DealingId,
        params: SharingParams,
        points: Vec<Vec<RistrettoPoint>>,
    ) -> Self {
        let digest = compute_digest(&dealing_id, &params, &points);
        Commitments {
            dealing_id,
            params,
            points,
            digest,
        }
    }

    /// The dealing identifier.
    pub fn dealing_id(&self) -> DealingId {
        self.dealing_id
    }

    /// The sharing parameters.
    pub fn params(&self) -> SharingParams {
        self.params
    }

    /// Number of shared elements.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the dealing shares no element.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The commitment points, `t + 1` per element.
    pub fn points(&self) -> &[Vec<RistrettoPoint>] {
        &self.points
    }

    /// `s·G` for each shared element (the constant commitments `C_{j,0}`).
    pub fn secret_commitments(&self) -> Vec<RistrettoPoint> {
        self.points.iter().map(|p| p[0]).collect()
    }

    /// SHA-256 over the dealing id, parameters and compressed points: two sets of commitments
    /// with equal digests are equal.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }

    /// Checks `share` against these commitments: same dealing, index in range, one value per
    /// element, and `Σ_j r_j s_{i,j}·G = Σ_j Σ_k r_j i^k·C_{j,k}`.
    ///
    /// # Errors
    ///
    /// [`ShamirError::MixedDealings`] if the share belongs to another dealing,
    /// [`ShamirError::IndexOutOfRange`], [`ShamirError::Mismatched`] for a wrong length, and
    /// [`ShamirError::VerificationFailed`] naming the share's index if the values do not match.
    pub fn verify(&self, share: &FeldmanShare) -> Result<(), ShamirError> {
        if share.dealing_id != self.dealing_id {
            return Err(mixed(
                2,
                (0, self.dealing_id),
                (share.index, share.dealing_id),
            ));
        }
        check_indices::<Scalar>(std::iter::once(share.index), self.params.shares())?;
        if share.values.len() != self.points.len() {
            return Err(ShamirError::Mismatched("number of shared elements"));
        }
        let weights = self.batch_weights(share);
        let x = Scalar::from(u64::from(share.index));
        // lhs = (Σ r_j s_j)·G in constant time (the share is secret).
        let mut combined = Zeroizing::new(Scalar::ZERO);
        for (r, v) in weights.iter().zip(&share.values) {
            *combined += r * v;
        }
        let lhs = RISTRETTO_BASEPOINT_TABLE * &*combined;
        // rhs over public data only.
        let t = self.params.degree();
        let mut powers = Vec::with_capacity(t + 1);
        let mut pw = Scalar::ONE;
        for _ in 0..=t {
            powers.push(pw);
            pw *= x;
        }
        // dalek's multiscalar multiplication requires exact lengths: collect both sides.
        let scalars: Vec<Scalar> = weights
            .iter()
            .flat_map(|r| powers.iter().map(move |p| r * p))
            .collect();
        let points: Vec<RistrettoPoint> = self.points.iter().flatten().copied().collect();
        if scalars.len() != points.len() {
            return Err(ShamirError::Malformed(
                "commitment count differs from degree + 1".into(),
            ));
        }
        let rhs = RistrettoPoint::vartime_multiscalar_mul(&scalars, &points);
        if bool::from(lhs.ct_eq(&rhs)) {
            Ok(())
        } else {
            Err(ShamirError::VerificationFailed {
                indices: vec![share.index],
            })
        }
    }

    /// 128-bit weights for the batched check, from a hash of the commitments and the share.
    fn batch_weights(&self, share: &FeldmanShare) -> Vec<Scalar> {
        if self.points.len() == 1 {
            return vec![Scalar::ONE];
        }
        let mut h = Sha256::new();
        h.update(DOMAIN_BATCH);
        h.update(self.digest());
        h.update(share.index.to_le_bytes());
        for v in &share.values {
            h.update(v.as_bytes());
        }
        let seed: [u8; 32] = h.finalize().into();
        (0..self.points.len() as u64)
            .map(|j| {
                let mut h = Sha256::new();
                h.update(seed);
                h.update(j.to_le_bytes());
                let d = h.finalize();
                let mut b = [0u8; 32];
                b[..16].copy_from_slice(&d[..16]);
                Scalar::from_bytes_mod_order(b)
            })
            .collect()
    }
}

fn compute_digest(
    dealing_id: &DealingId,
    params: &SharingParams,
    points: &[Vec<RistrettoPoint>],
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN_DIGEST);
    h.update(dealing_id.0);
    h.update((params.degree() as u64).to_le_bytes());
    h.update((params.shares() as u64).to_le_bytes());
    h.update((points.len() as u64).to_le_bytes());
    // Hashes the encodings of 2·C (one batched inversion for all points); doubling is a
    // bijection in a group of odd prime order, so the digest still determines the points.
    let flat: Vec<RistrettoPoint> = points.iter().flatten().copied().collect();
    for c in RistrettoPoint::double_and_compress_batch(&flat) {
        h.update(c.as_bytes());
    }
    h.finalize().into()
}

fn mixed(count: usize, a: (u32, DealingId), b: (u32, DealingId)) -> ShamirError {
    ShamirError::MixedDealings {
        count,
        first_index: a.0,
        first: a.1.short_hex(),
        other_index: b.0,
        other: b.1.short_hex(),
    }
}

/// Deals a Feldman-verifiable sharing of `secrets` (one polynomial per element) under a fresh
/// random dealing id.
///
/// # Errors
///
/// None in practice for valid `params`; kept fallible for parameter checks.
pub fn deal<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secrets: &[Scalar],
    params: SharingParams,
    rng: &mut R,
) -> Result<(Commitments, Vec<FeldmanShare>), ShamirError> {
    let dealing_id = DealingId::random(rng);
    deal_with_id(secrets, params, dealing_id, rng)
}

fn deal_with_id<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secrets: &[Scalar],
    params: SharingParams,
    dealing_id: DealingId,
    rng: &mut R,
) -> Result<(Commitments, Vec<FeldmanShare>), ShamirError> {
    params.check_field::<Scalar>()?;
    let n = params.shares();
    let t = params.degree();
    let xs: Vec<Scalar> = (1..=n as u64).map(Scalar::from).collect();
    let mut shares: Vec<FeldmanShare> = (1..=n as u32)
        .map(|i| FeldmanShare::new(dealing_id, i, Vec::with_capacity(secrets.len())))
        .collect();
    let mut points = Vec::with_capacity(secrets.len());
    let mut coeffs = Zeroizing::new(vec![Scalar::ZERO; t + 1]);
    for s in secrets {
        coeffs[0] = *s;
        for c in coeffs[1..].iter_mut() {
            *c = <Scalar as Field>::random(rng);
        }
        points.push(
            coeffs
                .iter()
                .map(|a| RISTRETTO_BASEPOINT_TABLE * a)
                .collect(),
        );
        for (share, x) in shares.iter_mut().zip(&xs) {
            share.values.push(crate::poly::evaluate(&coeffs, *x));
        }
    }
    Ok((Commitments::build(dealing_id, params, points), shares))
}

/// The result of [`combine`]: the secret elements and the shares that were set aside. `Debug`
/// shows the rejected shares, not the secret.
pub struct Combined {
    /// The reconstructed elements.
    pub secret: Zeroizing<Vec<Scalar>>,
    /// Indices of shares that failed verification (and were not used), ascending.
    pub rejected: Vec<u32>,
}

impl std::fmt::Debug for Combined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Combined")
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

/// Verifies every share against `commitments` and reconstructs from those that pass.
///
/// Shares that fail are listed in [`Combined::rejected`]; at least `t + 1` must pass.
///
/// # Errors
///
/// [`ShamirError::MixedDealings`] if any share is from another dealing (nothing is combined),
/// [`ShamirError::DuplicateIndex`] / [`ShamirError::IndexOutOfRange`],
/// [`ShamirError::Mismatched`] for a wrong number of elements, and
/// [`ShamirError::VerificationFailed`] naming the failing shares when fewer than `t + 1` pass.
pub fn combine(
    commitments: &Commitments,
    shares: &[FeldmanShare],
) -> Result<Combined, ShamirError> {
    if let Some(other) = shares
        .iter()
        .find(|s| s.dealing_id != commitments.dealing_id)
    {
        let first = shares
            .iter()
            .find(|s| s.dealing_id == commitments.dealing_id)
            .map_or(0, |s| s.index);
        let mut ids: Vec<[u8; 32]> = shares.iter().map(|s| s.dealing_id.0).collect();
        ids.push(commitments.dealing_id.0);
        ids.sort_unstable();
        ids.dedup();
        return Err(mixed(
            ids.len(),
            (first, commitments.dealing_id),
            (other.index, other.dealing_id),
        ));
    }
    check_indices::<Scalar>(shares.iter().map(|s| s.index), commitments.params.shares())?;
    let mut valid = Vec::new();
    let mut rejected = Vec::new();
    for s in shares {
        match commitments.verify(s) {
            Ok(()) => valid.push(s),
            Err(ShamirError::VerificationFailed { .. }) => rejected.push(s.index),
            Err(e) => return Err(e),
        }
    }
    rejected.sort_unstable();
    let needed = commitments.params.needed();
    if valid.len() < needed {
        if rejected.is_empty() {
            return Err(ShamirError::NotEnoughShares {
                got: valid.len(),
                needed,
            });
        }
        return Err(ShamirError::VerificationFailed { indices: rejected });
    }
    let used = &valid[..needed];
    let xs: Vec<Scalar> = used
        .iter()
        .map(|s| Scalar::from(u64::from(s.index)))
        .collect();
    let lambda = lagrange_coefficients(&xs, Scalar::ZERO)
        .ok_or_else(|| ShamirError::InvalidParams("repeated evaluation point".into()))?;
    let secret: Vec<Scalar> = (0..commitments.len())
        .map(|j| {
            used.iter()
                .zip(&lambda)
                .fold(Scalar::ZERO, |acc, (s, l)| acc + s.values[j] * l)
        })
        .collect();
    Ok(Combined {
        secret: Zeroizing::new(secret),
        rejected,
    })
}

/// A verifiable sharing of zero that refreshes a dealing (proactive refresh).
#[derive(Clone, Debug)]
pub struct RefreshUpdate {
    from: DealingId,
    to: DealingId,
    zero: Commitments,
    pieces: Vec<FeldmanShare>,
}

impl RefreshUpdate {
    /// A fresh update for the dealing behind `commitments`.
    ///
    /// # Errors
    ///
    /// As [`deal`].
    pub fn new<R: rand::RngCore + rand::CryptoRng + ?Sized>(
        commitments: &Commitments,
        rng: &mut R,
    ) -> Result<Self, ShamirError> {
        let zeros = vec![Scalar::ZERO; commitments.len()];
        let (zero, pieces) = deal_with_id(&zeros, commitments.params, commitments.dealing_id, rng)?;
        let mut h = Sha256::new();
        h.update(DOMAIN_REFRESH);
        h.update(commitments.dealing_id.0);
        h.update(zero.digest());
        let to = DealingId(h.finalize().into());
        Ok(RefreshUpdate {
            from: commitments.dealing_id,
            to,
            zero,
            pieces,
        })
    }

    /// The dealing id after the refresh.
    pub fn new_dealing_id(&self) -> DealingId {
        self.to
    }

    /// The new commitments `C_{j,k} + Z_{j,k}`, after checking that the update shares zero
    /// (`Z_{j,0}` is the identity) and matches `commitments`.
    ///
    /// # Errors
    ///
    /// [`ShamirError::InvalidRefresh`].
    pub fn apply_to_commitments(
        &self,
        commitments: &Commitments,
    ) -> Result<Commitments, ShamirError> {
        if commitments.dealing_id != self.from
            || commitments.params != self.zero.params
            || commitments.len() != self.zero.len()
        {
            return Err(ShamirError::InvalidRefresh("update is for another dealing"));
        }
        if !self.zero.points.iter().all(|p| p[0].is_identity()) {
            return Err(ShamirError::InvalidRefresh("update does not share zero"));
        }
        let points = commitments
            .points
            .iter()
            .zip(&self.zero.points)
            .map(|(c, z)| c.iter().zip(z).map(|(a, b)| a + b).collect())
            .collect();
        Ok(Commitments::build(self.to, commitments.params, points))
    }

    /// Refreshes `share` in place after verifying its piece of the update.
    ///
    /// # Errors
    ///
    /// [`ShamirError::InvalidRefresh`] if the update is for another dealing or does not share zero,
    /// [`ShamirError::VerificationFailed`] if this holder's piece is wrong.
    pub fn apply_to_share(&self, share: &mut FeldmanShare) -> Result<(), ShamirError> {
        if share.dealing_id != self.from {
            return Err(ShamirError::InvalidRefresh("update is for another dealing"));
        }
        if !self.zero.points.iter().all(|p| p[0].is_identity()) {
            return Err(ShamirError::InvalidRefresh("update does not share zero"));
        }
        let piece = self
            .pieces
            .iter()
            .find(|p| p.index == share.index)
            .ok_or(ShamirError::InvalidRefresh("no piece for this share"))?;
        self.zero.verify(piece)?;
        if piece.values.len() != share.values.len() {
            return Err(ShamirError::Mismatched("number of shared elements"));
        }
        for (v, d) in share.values.iter_mut().zip(&piece.values) {
            *v += d;
        }
        share.dealing_id = self.to;
        Ok(())
    }
}

/// Refreshes a whole dealing held in one place: new commitments and shares, same secret, new
/// dealing id.
///
/// # Errors
///
/// As [`RefreshUpdate::new`], [`RefreshUpdate::apply_to_commitments`] and
/// [`RefreshUpdate::apply_to_share`].
pub fn refresh<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    commitments: &mut Commitments,
    shares: &mut [FeldmanShare],
    rng: &mut R,
) -> Result<(), ShamirError> {
    let update = RefreshUpdate::new(commitments, rng)?;
    let next = update.apply_to_commitments(commitments)?;
    for s in shares.iter_mut() {
        update.apply_to_share(s)?;
    }
    *commitments = next;
    Ok(())
}

/// Decodes a compressed Ristretto point strictly (canonical encoding).
pub(crate) fn decode_point(bytes: &[u8]) -> Option<RistrettoPoint> {
    CompressedRistretto::from_slice(bytes).ok()?.decompress()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn deal_verify_combine_refresh() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let params = SharingParams::threshold(3, 5).unwrap();
        let secrets: Vec<Scalar> = (0..4)
            .map(|_| <Scalar as Field>::random(&mut rng))
            .collect();
        let (mut c, mut shares) = deal(&secrets, params, &mut rng).unwrap();
        for s in &shares {
            c.verify(s).unwrap();
        }
        let out = combine(&c, &shares[2..]).unwrap();
        assert_eq!(*out.secret, secrets);
        let old = shares.clone();
        let old_id = c.dealing_id();
        refresh(&mut c, &mut shares, &mut rng).unwrap();
        assert_ne!(c.dealing_id(), old_id);
        assert_ne!(old[0].values(), shares[0].values());
        assert_eq!(*combine(&c, &shares[..3]).unwrap().secret, secrets);
        assert!(matches!(
            combine(&c, &[shares[0].clone(), shares[1].clone(), old[2].clone()]),
            Err(ShamirError::MixedDealings { .. })
        ));
    }
}
