//! Shamir sharing, robust reconstruction, Feldman verification, refresh and share files.

use std::ops::{Add, AddAssign, Mul, MulAssign, Neg, Sub, SubAssign};

use curve25519_dalek::scalar::Scalar;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use subtle::{Choice, ConstantTimeEq};
use veil_shamir::secret::{self, CombinePolicy, ShareFile};
use veil_shamir::shamir::{deal_from_coefficients, refresh};
use veil_shamir::{
    deal, deal_vec, feldman, reconstruct, reconstruct_robust, reconstruct_vec, Field, ShamirError,
    Share, SharingParams, M61,
};
use zeroize::Zeroize;

/// GF(257), small enough to enumerate every sharing polynomial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
struct F257(u16);

const P: u16 = 257;

impl Zeroize for F257 {
    fn zeroize(&mut self) {
        self.0.zeroize();
    }
}
impl ConstantTimeEq for F257 {
    fn ct_eq(&self, o: &Self) -> Choice {
        self.0.ct_eq(&o.0)
    }
}
impl Add for F257 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        F257((self.0 + o.0) % P)
    }
}
impl Sub for F257 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        F257((self.0 + P - o.0) % P)
    }
}
impl Mul for F257 {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        F257(((self.0 as u32 * o.0 as u32) % P as u32) as u16)
    }
}
impl Neg for F257 {
    type Output = Self;
    fn neg(self) -> Self {
        F257((P - self.0) % P)
    }
}
impl AddAssign for F257 {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}
impl SubAssign for F257 {
    fn sub_assign(&mut self, o: Self) {
        *self = *self - o;
    }
}
impl MulAssign for F257 {
    fn mul_assign(&mut self, o: Self) {
        *self = *self * o;
    }
}
impl Field for F257 {
    const ZERO: Self = F257(0);
    const ONE: Self = F257(1);
    const MAX_INDEX: u64 = 256;
    const ENCODED_LEN: usize = 2;
    fn from_u64(v: u64) -> Self {
        F257((v % P as u64) as u16)
    }
    fn random<R: RngCore + ?Sized>(rng: &mut R) -> Self {
        F257((rng.next_u32() % P as u32) as u16)
    }
    fn inverse(&self) -> Option<Self> {
        (self.0 != 0).then(|| self.pow(P as u64 - 2))
    }
    fn write_bytes(&self, out: &mut [u8]) {
        out.copy_from_slice(&self.0.to_le_bytes());
    }
    fn from_bytes(b: &[u8]) -> Option<Self> {
        let v = u16::from_le_bytes(b.try_into().ok()?);
        (v < P).then_some(F257(v))
    }
}

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Every subset of `0..n` as a list of positions.
fn subsets(n: usize) -> impl Iterator<Item = Vec<usize>> {
    (0u32..1 << n).map(move |mask| (0..n).filter(|i| mask >> i & 1 == 1).collect())
}

fn check_all_subsets<F: Field>(secret: F, degree: usize, n: usize, seed: u64) {
    let params = SharingParams::new(degree, n).unwrap();
    let shares = deal(&secret, params, &mut rng(seed)).unwrap();
    for subset in subsets(n) {
        let chosen: Vec<Share<F>> = subset.iter().map(|&i| shares[i].clone()).collect();
        let got = reconstruct(degree, &chosen);
        if subset.len() > degree {
            assert_eq!(*got.unwrap(), secret, "subset {subset:?}");
        } else {
            assert!(
                matches!(got, Err(ShamirError::NotEnoughShares { .. })),
                "subset {subset:?}"
            );
        }
    }
}

#[test]
fn any_t_plus_one_shares_reconstruct() {
    for (t, n) in [(0, 1), (0, 3), (1, 3), (2, 5), (3, 7), (4, 9)] {
        check_all_subsets(M61::new(123_456_789), t, n, 1);
        check_all_subsets(F257(200), t, n, 2);
    }
    let s = <Scalar as Field>::random(&mut rng(3));
    check_all_subsets(s, 2, 5, 4);
}

#[test]
fn t_shares_are_distributed_identically_for_any_secret() {
    // t = 1: over all 257 polynomials, the single share at any index takes every value once.
    for index in 1..=4usize {
        let hist = |s: u16| {
            let mut h = vec![0u32; P as usize];
            for a in 0..P {
                let sh = deal_from_coefficients(&F257(s), &[F257(a)], 4).unwrap();
                h[sh[index - 1].value().0 as usize] += 1;
            }
            h
        };
        let (h0, h1) = (hist(0), hist(123));
        assert_eq!(h0, h1);
        assert!(h0.iter().all(|&c| c == 1));
    }
    // t = 2: over all 257^2 polynomials, any pair of shares takes every pair of values once.
    for (i, j) in [(0usize, 1usize), (1, 4), (2, 3)] {
        let hist = |s: u16| {
            let mut h = vec![0u32; P as usize * P as usize];
            for a in 0..P {
                for b in 0..P {
                    let sh = deal_from_coefficients(&F257(s), &[F257(a), F257(b)], 5).unwrap();
                    let k = sh[i].value().0 as usize * P as usize + sh[j].value().0 as usize;
                    h[k] += 1;
                }
            }
            h
        };
        let (h0, h1) = (hist(7), hist(250));
        assert_eq!(h0, h1);
        assert!(h0.iter().all(|&c| c == 1));
    }
}

#[test]
fn berlekamp_welch_corrects_and_names_bad_shares() {
    let mut r = rng(5);
    for (t, n) in [(1usize, 4usize), (2, 7), (3, 10), (2, 11)] {
        let params = SharingParams::new(t, n).unwrap();
        let e = params.correctable_errors();
        assert_eq!(e, (n - t - 1) / 2);
        for errors in 0..=e {
            let secret = M61::random(&mut r);
            let mut shares = deal(&secret, params, &mut r).unwrap();
            let mut bad: Vec<u32> = Vec::new();
            while bad.len() < errors {
                let k = (r.next_u32() as usize) % n;
                if !bad.contains(&(k as u32 + 1)) {
                    bad.push(k as u32 + 1);
                    let v = *shares[k].value() + M61::new(1 + u64::from(r.next_u32()));
                    shares[k] = Share::new(k as u32 + 1, v);
                }
            }
            bad.sort_unstable();
            let rec = reconstruct_robust(t, &shares).unwrap();
            assert_eq!(*rec.secret, secret);
            assert_eq!(rec.bad_indices, bad);
            match reconstruct(t, &shares) {
                Ok(s) => {
                    assert!(bad.is_empty());
                    assert_eq!(*s, secret);
                }
                Err(ShamirError::BadShares { indices }) => assert_eq!(indices, bad),
                Err(other) => panic!("unexpected {other}"),
            }
        }
        // One error too many: refused rather than silently wrong.
        let secret = M61::random(&mut r);
        let mut shares = deal(&secret, params, &mut r).unwrap();
        for k in 0..=e {
            shares[k] = Share::new(k as u32 + 1, M61::random(&mut r));
        }
        if let Ok(rec) = reconstruct_robust(t, &shares) {
            panic!("decoded {:?} with too many errors", rec.bad_indices);
        }
    }
}

#[test]
fn duplicate_and_out_of_range_indices_are_refused() {
    let shares = vec![Share::new(1, M61::new(5)), Share::new(1, M61::new(6))];
    assert!(matches!(
        reconstruct(1, &shares),
        Err(ShamirError::DuplicateIndex { index: 1 })
    ));
    let shares = vec![Share::new(0, M61::new(5)), Share::new(2, M61::new(6))];
    assert!(matches!(
        reconstruct(1, &shares),
        Err(ShamirError::IndexOutOfRange { index: 0, .. })
    ));
}

#[test]
fn vector_sharing_and_refresh() {
    let mut r = rng(6);
    let params = SharingParams::threshold(3, 5).unwrap();
    let secrets: Vec<Scalar> = (0..20).map(|_| <Scalar as Field>::random(&mut r)).collect();
    let mut shares = deal_vec(&secrets, params, &mut r).unwrap();
    let before = shares.clone();
    refresh(&mut shares, params, &mut r).unwrap();
    for (a, b) in before.iter().zip(&shares) {
        assert_ne!(a.values(), b.values());
    }
    assert_eq!(*reconstruct_vec(2, &shares[..3]).unwrap(), secrets);
    assert_eq!(*reconstruct_vec(2, &shares[2..]).unwrap(), secrets);
    // Old and new shares do not mix: the result is flagged or wrong, never the secret silently.
    let mixed = vec![before[0].clone(), shares[1].clone(), shares[2].clone()];
    assert_ne!(*reconstruct_vec(2, &mixed).unwrap(), secrets);
}

#[test]
fn feldman_detects_and_names_a_tampered_share() {
    let mut r = rng(7);
    let params = SharingParams::threshold(3, 5).unwrap();
    let secrets = vec![<Scalar as Field>::random(&mut r); 3];
    let (c, mut shares) = feldman::deal(&secrets, params, &mut r).unwrap();
    shares[3].values_mut()[1] += Scalar::ONE;
    for s in &shares {
        let res = c.verify(s);
        if s.index() == 4 {
            assert_eq!(
                res,
                Err(ShamirError::VerificationFailed { indices: vec![4] })
            );
        } else {
            res.unwrap();
        }
    }
    let out = feldman::combine(&c, &shares).unwrap();
    assert_eq!(out.rejected, vec![4]);
    assert_eq!(*out.secret, secrets);
    // With too few honest shares, the error names the bad ones.
    shares[0].values_mut()[0] += Scalar::ONE;
    shares[1].values_mut()[2] += Scalar::ONE;
    assert_eq!(
        feldman::combine(&c, &shares).unwrap_err(),
        ShamirError::VerificationFailed {
            indices: vec![1, 2, 4]
        }
    );
}

#[test]
fn shares_from_two_dealings_are_refused() {
    let mut r = rng(8);
    let params = SharingParams::threshold(2, 3).unwrap();
    let a = secret::split_secret(b"same secret", params, &mut r).unwrap();
    let b = secret::split_secret(b"same secret", params, &mut r).unwrap();
    let err =
        secret::combine_secret(&[a[0].clone(), b[1].clone()], CombinePolicy::Tolerant).unwrap_err();
    assert!(
        matches!(err, ShamirError::MixedDealings { count: 2, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("different dealings"));
    let (c1, s1) = feldman::deal(&[Scalar::ONE], params, &mut r).unwrap();
    let (_, s2) = feldman::deal(&[Scalar::ONE], params, &mut r).unwrap();
    assert!(matches!(
        feldman::combine(&c1, &[s1[0].clone(), s2[1].clone()]),
        Err(ShamirError::MixedDealings { .. })
    ));
    assert!(matches!(
        c1.verify(&s2[0]),
        Err(ShamirError::MixedDealings { .. })
    ));
}

#[test]
fn refresh_keeps_the_secret_and_changes_the_shares() {
    let mut r = rng(9);
    let params = SharingParams::threshold(3, 5).unwrap();
    let data = b"a key file of some length, more than one chunk".to_vec();
    let mut files = secret::split_secret(&data, params, &mut r).unwrap();
    let old = files.clone();
    secret::refresh_share_files(&mut files, &mut r).unwrap();
    for (o, n) in old.iter().zip(&files) {
        assert_ne!(o.share().values(), n.share().values());
        assert_ne!(o.dealing_id(), n.dealing_id());
        n.verify().unwrap();
    }
    let got = secret::combine_secret(&files[1..4], CombinePolicy::Strict).unwrap();
    assert_eq!(&got.secret[..], &data[..]);
    assert!(matches!(
        secret::combine_secret(
            &[old[0].clone(), files[1].clone(), files[2].clone()],
            CombinePolicy::Strict
        ),
        Err(ShamirError::MixedDealings { .. })
    ));
}

#[test]
fn byte_secrets_roundtrip_through_text_and_bytes() {
    let mut r = rng(10);
    let params = SharingParams::threshold(3, 5).unwrap();
    for len in [0usize, 1, 15, 16, 31, 32, 1000] {
        let mut data = vec![0u8; len];
        r.fill_bytes(&mut data);
        let files = secret::split_secret(&data, params, &mut r).unwrap();
        assert_eq!(files.len(), 5);
        let texts: Vec<_> = files.iter().map(|f| f.to_text()).collect();
        let back: Vec<ShareFile> = texts
            .iter()
            .map(|t| ShareFile::from_text(t).unwrap())
            .collect();
        assert_eq!(back, files);
        let bin = ShareFile::from_bytes(&files[0].to_bytes()).unwrap();
        assert_eq!(bin, files[0]);
        for subset in [[0usize, 1, 2], [2, 3, 4], [0, 2, 4]] {
            let chosen: Vec<ShareFile> = subset.iter().map(|&i| back[i].clone()).collect();
            let got = secret::combine_secret(&chosen, CombinePolicy::Strict).unwrap();
            assert_eq!(&got.secret[..], &data[..], "len {len}");
            assert!(got.rejected.is_empty());
        }
        let two: Vec<ShareFile> = back[..2].to_vec();
        assert!(matches!(
            secret::combine_secret(&two, CombinePolicy::Strict),
            Err(ShamirError::NotEnoughShares { got: 2, needed: 3 })
        ));
    }
}

#[test]
fn tampered_share_file_is_named() {
    let mut r = rng(11);
    let params = SharingParams::threshold(3, 5).unwrap();
    let data = vec![0x5au8; 100];
    let mut files = secret::split_secret(&data, params, &mut r).unwrap();
    files[2].share_mut().values_mut()[3] += Scalar::ONE;
    let tampered = ShareFile::from_text(&files[2].to_text()).unwrap();
    assert_eq!(
        tampered.verify(),
        Err(ShamirError::VerificationFailed { indices: vec![3] })
    );
    assert_eq!(
        secret::combine_secret(&files, CombinePolicy::Strict).unwrap_err(),
        ShamirError::VerificationFailed { indices: vec![3] }
    );
    let got = secret::combine_secret(&files, CombinePolicy::Tolerant).unwrap();
    assert_eq!(&got.secret[..], &data[..]);
    assert_eq!(got.rejected, vec![3]);
    // A forger who replaces a whole file with its own consistent dealing is outvoted.
    let forged = secret::split_secret(&data, params, &mut r).unwrap();
    let mut bytes = forged[4].to_bytes().to_vec();
    bytes[5..37].copy_from_slice(&files[0].dealing_id().0);
    let forged = ShareFile::from_bytes(&bytes).unwrap();
    let set = vec![files[0].clone(), files[1].clone(), files[3].clone(), forged];
    let got = secret::combine_secret(&set, CombinePolicy::Tolerant).unwrap();
    assert_eq!(&got.secret[..], &data[..]);
    assert_eq!(got.rejected, vec![5]);
}

#[test]
fn malformed_share_input_errors_never_panics() {
    let mut r = rng(12);
    let params = SharingParams::threshold(2, 3).unwrap();
    let files = secret::split_secret(b"0123456789abcdefghij", params, &mut r).unwrap();
    let good = files[1].to_bytes().to_vec();
    // Every truncation.
    for cut in 0..good.len() {
        assert!(ShareFile::from_bytes(&good[..cut]).is_err(), "cut {cut}");
    }
    // Trailing byte.
    let mut long = good.clone();
    long.push(0);
    assert!(ShareFile::from_bytes(&long).is_err());
    // Single byte flips anywhere: an error or a share that fails verification, no panic.
    for pos in 0..good.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = good.clone();
            b[pos] ^= bit;
            if let Ok(f) = ShareFile::from_bytes(&b) {
                assert!(
                    f.verify().is_err()
                        || f.dealing_id() != files[1].dealing_id()
                        || f.secret_len() != files[1].secret_len()
                        || f.params() != files[1].params(),
                    "byte {pos} bit {bit:#x}"
                );
            }
        }
    }
    assert!(matches!(
        {
            let mut b = good.clone();
            b[4] = 9;
            ShareFile::from_bytes(&b)
        },
        Err(ShamirError::UnsupportedVersion(9))
    ));
    // Random garbage.
    for len in [0usize, 3, 55, 200, 4096] {
        let mut b = vec![0u8; len];
        r.fill_bytes(&mut b);
        assert!(ShareFile::from_bytes(&b).is_err());
    }
    // Text errors.
    let text = files[0].to_text().to_string();
    for bad in [
        String::new(),
        "hello".to_string(),
        text.replace("-----BEGIN VEIL SHAMIR SHARE-----", ""),
        text.replace("-----END VEIL SHAMIR SHARE-----", ""),
        corrupt_line(&text, 2, "g"),
        corrupt_line(&text, 3, "0"),
        format!("{text}trailing"),
        "-----BEGIN VEIL SHAMIR SHARE-----\n00\n-----END VEIL SHAMIR SHARE-----\n".to_string(),
        "-----BEGIN VEIL SHAMIR SHARE-----\nzz\n-----END VEIL SHAMIR SHARE-----\n".to_string(),
        "-----BEGIN VEIL SHAMIR SHARE-----\n\u{e9}\n-----END VEIL SHAMIR SHARE-----\n".to_string(),
    ] {
        assert!(ShareFile::from_text(&bad).is_err(), "{bad:?}");
    }
    // Header fields out of range: n = 0, degree >= n, index 0, index > n, huge length.
    for (off, val) in [(39usize, 0u8), (37, 3), (41, 0), (41, 4), (50, 0xff)] {
        let mut b = good.clone();
        b[off] = val;
        if off == 41 || off == 39 || off == 37 {
            b[off + 1] = 0;
        }
        assert!(
            matches!(ShareFile::from_bytes(&b), Err(ShamirError::Malformed(_))),
            "offset {off}"
        );
    }
}

/// `text` with `prefix` inserted at the start of line `line`.
fn corrupt_line(text: &str, line: usize, prefix: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                format!("{prefix}{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

#[test]
fn share_files_serialize_with_serde() {
    let mut r = rng(13);
    let params = SharingParams::threshold(2, 3).unwrap();
    let files = secret::split_secret(b"serde", params, &mut r).unwrap();
    let cfg = bincode::config::standard();
    let enc = bincode::serde::encode_to_vec(&files, cfg).unwrap();
    let (dec, _): (Vec<ShareFile>, usize) = bincode::serde::decode_from_slice(&enc, cfg).unwrap();
    assert_eq!(dec, files);
    let mut broken = enc.clone();
    let last = broken.len() - 1;
    broken[last] ^= 0xff;
    let _ = bincode::serde::decode_from_slice::<Vec<ShareFile>, _>(&broken, cfg);
}
