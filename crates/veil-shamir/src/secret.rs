//! Byte-string secrets (key files and the like) shared with Feldman-verifiable Shamir sharing,
//! and [`ShareFile`], the versioned, bounded, self-contained encoding of one share.
//!
//! # Embedding
//!
//! A secret of `L` bytes is cut into `max(1, ⌈L / 15⌉)` chunks of 15 bytes (the last one
//! zero-padded). Each chunk becomes one Ristretto255 scalar whose 32 little-endian bytes are
//! `chunk (15) ‖ salt (16 random bytes) ‖ 0x00`, a value below `2^248 < ℓ`, so the embedding is
//! injective and canonical. The salt matters because Feldman commitments (Feldman 1987) publish
//! `C_0 = s·G` for every shared scalar: without it a short or guessable chunk (the tail of a
//! file, a text password) could be found by trying candidates against `C_0`. With 128 random
//! bits per scalar, such a search costs at least `2^128` group operations. The secret's length
//! `L` is public, stored in every share.
//!
//! Each scalar is shared with its own polynomial (Shamir 1979); all chunks of a dealing share one
//! dealing id and one set of parameters.
//!
//! # Share file format, version 1
//!
//! Binary ([`ShareFile::to_bytes`]), all integers little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | magic `VSSH` |
//! | 1 | version = 1 |
//! | 32 | dealing id |
//! | 2 | degree `t` |
//! | 2 | number of shares `n` |
//! | 2 | this share's index `i` (1..=n) |
//! | 8 | secret length `L` in bytes (≤ [`MAX_SECRET_LEN`]) |
//! | 4 | number of chunks `m` (must equal `max(1, ⌈L/15⌉)`) |
//! | 32·m·(t+1) | commitments `C_{j,k}`, compressed Ristretto, chunk-major |
//! | 32·m | share values `f_j(i)`, canonical scalars |
//!
//! Text ([`ShareFile::to_text`]): a `-----BEGIN VEIL SHAMIR SHARE-----` line, optional comment
//! lines starting with `#`, the binary form in hex (64 digits a line), and an
//! `-----END VEIL SHAMIR SHARE-----` line. Decoding checks every field and every length before
//! allocating; malformed input gives [`ShamirError::Malformed`], never a panic.
//!
//! Serde support encodes a share file as a byte string holding the binary form.

use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroizing;

use crate::error::ShamirError;
use crate::feldman::{self, Commitments, DealingId, FeldmanShare, RefreshUpdate};
use crate::shamir::{SharingParams, MAX_SHARES};

/// Data bytes per shared scalar.
pub const CHUNK_DATA: usize = 15;
/// Random salt bytes per shared scalar.
pub const CHUNK_SALT: usize = 16;
/// Largest secret accepted, in bytes (1 MiB).
pub const MAX_SECRET_LEN: u64 = 1 << 20;
/// Largest encoded share file accepted, in bytes (64 MiB).
pub const MAX_SHARE_FILE_LEN: usize = 64 << 20;

const MAGIC: &[u8; 4] = b"VSSH";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 32 + 2 + 2 + 2 + 8 + 4;
const BEGIN: &str = "-----BEGIN VEIL SHAMIR SHARE-----";
const END: &str = "-----END VEIL SHAMIR SHARE-----";

/// Number of chunks (scalars) used for a secret of `len` bytes.
pub fn chunk_count(len: u64) -> u64 {
    len.div_ceil(CHUNK_DATA as u64).max(1)
}

/// Encoded size of a share file, or `None` if it overflows.
fn encoded_len(degree: usize, chunks: u64) -> Option<usize> {
    let chunks = usize::try_from(chunks).ok()?;
    let per_chunk = degree.checked_add(2)?.checked_mul(32)?;
    chunks.checked_mul(per_chunk)?.checked_add(HEADER_LEN)
}

/// One holder's share of a byte-string secret, with everything needed to verify it: the dealing
/// id, parameters, secret length and the dealing's commitments. Share values are zeroized on drop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareFile {
    commitments: Commitments,
    share: FeldmanShare,
    secret_len: u64,
}

impl ShareFile {
    /// The dealing id.
    pub fn dealing_id(&self) -> DealingId {
        self.share.dealing_id()
    }

    /// This share's index, from 1.
    pub fn index(&self) -> u32 {
        self.share.index()
    }

    /// The sharing parameters (`params().needed()` shares reconstruct).
    pub fn params(&self) -> SharingParams {
        self.commitments.params()
    }

    /// Length of the secret in bytes.
    pub fn secret_len(&self) -> u64 {
        self.secret_len
    }

    /// The dealing's commitments as carried by this file.
    pub fn commitments(&self) -> &Commitments {
        &self.commitments
    }

    /// The share itself.
    pub fn share(&self) -> &FeldmanShare {
        &self.share
    }

    /// Mutable access to the share (for tests that tamper with it).
    pub fn share_mut(&mut self) -> &mut FeldmanShare {
        &mut self.share
    }

    /// Checks the share against the commitments it carries.
    ///
    /// # Errors
    ///
    /// [`ShamirError::VerificationFailed`] naming this share's index.
    pub fn verify(&self) -> Result<(), ShamirError> {
        self.commitments.verify(&self.share)
    }

    /// The binary encoding (see the [module documentation](self)).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let params = self.params();
        let m = self.commitments.len();
        let mut out = Zeroizing::new(Vec::with_capacity(
            encoded_len(params.degree(), m as u64).unwrap_or(0),
        ));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.dealing_id().0);
        out.extend_from_slice(&(params.degree() as u16).to_le_bytes());
        out.extend_from_slice(&(params.shares() as u16).to_le_bytes());
        out.extend_from_slice(&(self.index() as u16).to_le_bytes());
        out.extend_from_slice(&self.secret_len.to_le_bytes());
        out.extend_from_slice(&(m as u32).to_le_bytes());
        for p in self.commitments.points().iter().flatten() {
            out.extend_from_slice(p.compress().as_bytes());
        }
        for v in self.share.values() {
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    /// Decodes the binary encoding, checking every field.
    ///
    /// # Errors
    ///
    /// [`ShamirError::UnsupportedVersion`] for another version, [`ShamirError::Malformed`] for
    /// anything else wrong: magic, parameters, index, lengths, points, scalars.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ShamirError> {
        let bad = |why: &str| ShamirError::Malformed(why.to_string());
        if bytes.len() > MAX_SHARE_FILE_LEN {
            return Err(bad("share file too large"));
        }
        if bytes.len() < 5 || &bytes[..4] != MAGIC {
            return Err(bad("not a share file (bad magic)"));
        }
        if bytes[4] != VERSION {
            return Err(ShamirError::UnsupportedVersion(bytes[4]));
        }
        if bytes.len() < HEADER_LEN {
            return Err(bad("truncated header"));
        }
        let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
        let mut id = [0u8; 32];
        id.copy_from_slice(&bytes[5..37]);
        let degree = u16_at(37);
        let n = u16_at(39);
        let index = u16_at(41);
        let mut len8 = [0u8; 8];
        len8.copy_from_slice(&bytes[43..51]);
        let secret_len = u64::from_le_bytes(len8);
        let mut m4 = [0u8; 4];
        m4.copy_from_slice(&bytes[51..55]);
        let m = u64::from(u32::from_le_bytes(m4));
        let params = SharingParams::new(degree, n)
            .map_err(|e| ShamirError::Malformed(format!("parameters: {e}")))?;
        if index == 0 || index > n {
            return Err(bad("share index out of range"));
        }
        if secret_len > MAX_SECRET_LEN {
            return Err(bad("secret length above the limit"));
        }
        if m != chunk_count(secret_len) {
            return Err(bad("chunk count does not match the secret length"));
        }
        let total = encoded_len(degree, m).ok_or_else(|| bad("size overflow"))?;
        if bytes.len() != total {
            return Err(ShamirError::Malformed(format!(
                "expected {total} bytes, got {}",
                bytes.len()
            )));
        }
        let m = m as usize;
        let mut pos = HEADER_LEN;
        let mut points = Vec::with_capacity(m);
        for _ in 0..m {
            let mut row = Vec::with_capacity(degree + 1);
            for _ in 0..=degree {
                let p = feldman::decode_point(&bytes[pos..pos + 32])
                    .ok_or_else(|| bad("invalid commitment point"))?;
                row.push(p);
                pos += 32;
            }
            points.push(row);
        }
        let mut values = Vec::with_capacity(m);
        for _ in 0..m {
            let mut b = Zeroizing::new([0u8; 32]);
            b.copy_from_slice(&bytes[pos..pos + 32]);
            let v = Option::<Scalar>::from(Scalar::from_canonical_bytes(*b))
                .ok_or_else(|| bad("non-canonical share value"))?;
            values.push(v);
            pos += 32;
        }
        let dealing_id = DealingId(id);
        Ok(ShareFile {
            commitments: Commitments::from_parts(dealing_id, params, points)?,
            share: FeldmanShare::new(dealing_id, index as u32, values),
            secret_len,
        })
    }

    /// The text encoding: armour lines around hex, with a comment line naming the share.
    pub fn to_text(&self) -> Zeroizing<String> {
        let bytes = self.to_bytes();
        let hex = Zeroizing::new(crate::hex::encode(&bytes));
        let mut s = Zeroizing::new(String::with_capacity(hex.len() + hex.len() / 64 + 200));
        s.push_str(BEGIN);
        s.push('\n');
        s.push_str(&format!(
            "# share {} of {}, {} needed, dealing {}, secret {} bytes\n",
            self.index(),
            self.params().shares(),
            self.params().needed(),
            self.dealing_id().short_hex(),
            self.secret_len
        ));
        for line in hex.as_bytes().chunks(64) {
            // Hex digits are ASCII.
            s.push_str(std::str::from_utf8(line).unwrap_or_default());
            s.push('\n');
        }
        s.push_str(END);
        s.push('\n');
        s
    }

    /// Decodes the text encoding. Surrounding whitespace and blank lines are ignored.
    ///
    /// # Errors
    ///
    /// [`ShamirError::Malformed`] for missing armour, non-hex characters, an odd number of
    /// digits or text too long, and the errors of [`from_bytes`](Self::from_bytes).
    pub fn from_text(text: &str) -> Result<Self, ShamirError> {
        let bad = |why: String| ShamirError::Malformed(why);
        if text.len() > 2 * MAX_SHARE_FILE_LEN + 64 * 1024 {
            return Err(bad("share text too large".into()));
        }
        let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
        if lines.next() != Some(BEGIN) {
            return Err(bad("missing BEGIN line".into()));
        }
        let mut bytes = Zeroizing::new(Vec::new());
        let mut ended = false;
        for (n, line) in lines.by_ref().enumerate() {
            if line == END {
                ended = true;
                break;
            }
            if line.starts_with('#') {
                continue;
            }
            crate::hex::decode_into(line.as_bytes(), &mut bytes).map_err(|col| {
                bad(format!(
                    "invalid hex on line {} near column {}",
                    n + 2,
                    col + 1
                ))
            })?;
        }
        if !ended {
            return Err(bad("missing END line".into()));
        }
        if lines.next().is_some() {
            return Err(bad("text after END line".into()));
        }
        Self::from_bytes(&bytes)
    }
}

impl serde::Serialize for ShareFile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> serde::Deserialize<'de> for ShareFile {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ShareFile;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("the bytes of a version-1 share file")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ShareFile, E> {
                ShareFile::from_bytes(v).map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ShareFile, A::Error> {
                let mut buf = Zeroizing::new(Vec::new());
                while let Some(b) = seq.next_element::<u8>()? {
                    if buf.len() >= MAX_SHARE_FILE_LEN {
                        return Err(serde::de::Error::custom("share file too large"));
                    }
                    buf.push(b);
                }
                ShareFile::from_bytes(&buf).map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_bytes(V)
    }
}

/// Embeds `secret` into salted scalars (see the [module documentation](self)).
fn embed<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secret: &[u8],
    rng: &mut R,
) -> Zeroizing<Vec<Scalar>> {
    let m = chunk_count(secret.len() as u64) as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(m));
    for j in 0..m {
        let mut b = Zeroizing::new([0u8; 32]);
        let start = (j * CHUNK_DATA).min(secret.len());
        let end = ((j + 1) * CHUNK_DATA).min(secret.len());
        b[..end - start].copy_from_slice(&secret[start..end]);
        rng.fill_bytes(&mut b[CHUNK_DATA..CHUNK_DATA + CHUNK_SALT]);
        out.push(Scalar::from_bytes_mod_order(*b));
    }
    out
}

/// Inverse of [`embed`]; checks the padding so that a malicious dealing is noticed.
fn extract(scalars: &[Scalar], len: u64) -> Result<Zeroizing<Vec<u8>>, ShamirError> {
    let len = len as usize;
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    for (j, s) in scalars.iter().enumerate() {
        let b = s.as_bytes();
        let take = len.saturating_sub(j * CHUNK_DATA).min(CHUNK_DATA);
        let padding_ok = b[take..CHUNK_DATA].iter().all(|&x| x == 0) && b[31] == 0;
        if !padding_ok {
            return Err(ShamirError::Malformed(
                "reconstructed chunk is not a valid embedding".into(),
            ));
        }
        out.extend_from_slice(&b[..take]);
    }
    Ok(out)
}

/// Splits `secret` into `params.shares()` share files; any `params.needed()` of them recover it.
///
/// # Errors
///
/// [`ShamirError::InvalidParams`] if the secret is longer than [`MAX_SECRET_LEN`] or the share
/// files would exceed [`MAX_SHARE_FILE_LEN`].
pub fn split_secret<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    secret: &[u8],
    params: SharingParams,
    rng: &mut R,
) -> Result<Vec<ShareFile>, ShamirError> {
    let len = secret.len() as u64;
    if len > MAX_SECRET_LEN {
        return Err(ShamirError::InvalidParams(format!(
            "secret of {len} bytes exceeds {MAX_SECRET_LEN}"
        )));
    }
    match encoded_len(params.degree(), chunk_count(len)) {
        Some(l) if l <= MAX_SHARE_FILE_LEN => {}
        _ => {
            return Err(ShamirError::InvalidParams(
                "share files would exceed the size limit; use a lower degree".into(),
            ))
        }
    }
    let scalars = embed(secret, rng);
    let (commitments, shares) = feldman::deal(&scalars, params, rng)?;
    Ok(shares
        .into_iter()
        .map(|share| ShareFile {
            commitments: commitments.clone(),
            share,
            secret_len: len,
        })
        .collect())
}

/// What to do with shares that fail verification when enough others pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CombinePolicy {
    /// Any failing share is an error ([`ShamirError::VerificationFailed`] naming it).
    #[default]
    Strict,
    /// Failing shares are set aside and reported in [`CombinedSecret::rejected`].
    Tolerant,
}

/// A recovered secret and the shares that were set aside. `Debug` shows the rejected shares,
/// not the secret.
pub struct CombinedSecret {
    /// The secret bytes.
    pub secret: Zeroizing<Vec<u8>>,
    /// Indices of share files that failed verification or carried commitments that disagree
    /// with the majority, ascending.
    pub rejected: Vec<u32>,
}

impl std::fmt::Debug for CombinedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CombinedSecret")
            .field("rejected", &self.rejected)
            .finish_non_exhaustive()
    }
}

/// Recovers a secret from share files.
///
/// All files must come from one dealing ([`ShamirError::MixedDealings`] otherwise). Files are
/// grouped by the commitments they carry; the group with the most verifying shares is used and
/// every other file, like every share that fails verification, is rejected by index.
///
/// # Errors
///
/// [`ShamirError::MixedDealings`], [`ShamirError::DuplicateIndex`],
/// [`ShamirError::ConflictingCommitments`] (two commitment sets equally supported),
/// [`ShamirError::VerificationFailed`] naming the rejected shares (under
/// [`CombinePolicy::Strict`], or when too few shares pass), [`ShamirError::NotEnoughShares`].
pub fn combine_secret(
    files: &[ShareFile],
    policy: CombinePolicy,
) -> Result<CombinedSecret, ShamirError> {
    let Some(first) = files.first() else {
        return Err(ShamirError::NotEnoughShares { got: 0, needed: 1 });
    };
    let id = first.dealing_id();
    if let Some(other) = files.iter().find(|f| f.dealing_id() != id) {
        let mut ids: Vec<[u8; 32]> = files.iter().map(|f| f.dealing_id().0).collect();
        ids.sort_unstable();
        ids.dedup();
        return Err(ShamirError::MixedDealings {
            count: ids.len(),
            first_index: first.index(),
            first: id.short_hex(),
            other_index: other.index(),
            other: other.dealing_id().short_hex(),
        });
    }
    let mut seen = [false; MAX_SHARES + 1];
    for f in files {
        if std::mem::replace(&mut seen[f.index() as usize], true) {
            return Err(ShamirError::DuplicateIndex { index: f.index() });
        }
    }
    // Group by (commitments, secret length); count verifying shares per group.
    let keys: Vec<([u8; 32], u64)> = files
        .iter()
        .map(|f| (f.commitments.digest(), f.secret_len))
        .collect();
    let ok: Vec<bool> = files.iter().map(|f| f.verify().is_ok()).collect();
    let mut groups: Vec<(([u8; 32], u64), usize)> = Vec::new();
    for (k, &good) in keys.iter().zip(&ok) {
        match groups.iter_mut().find(|(g, _)| g == k) {
            Some((_, c)) => *c += usize::from(good),
            None => groups.push((*k, usize::from(good))),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.1));
    if groups.len() > 1 && groups[0].1 == groups[1].1 {
        return Err(ShamirError::ConflictingCommitments);
    }
    let chosen = groups[0].0;
    let mut rejected: Vec<u32> = Vec::new();
    let mut valid: Vec<FeldmanShare> = Vec::new();
    let mut commitments = None;
    for ((f, k), good) in files.iter().zip(&keys).zip(&ok) {
        if *k == chosen && *good {
            commitments.get_or_insert(&f.commitments);
            valid.push(f.share.clone());
        } else {
            rejected.push(f.index());
        }
    }
    rejected.sort_unstable();
    let Some(commitments) = commitments else {
        return Err(ShamirError::VerificationFailed { indices: rejected });
    };
    if !rejected.is_empty() && policy == CombinePolicy::Strict {
        return Err(ShamirError::VerificationFailed { indices: rejected });
    }
    let combined = match feldman::combine(commitments, &valid) {
        Ok(c) => c,
        Err(ShamirError::NotEnoughShares { .. }) if !rejected.is_empty() => {
            return Err(ShamirError::VerificationFailed { indices: rejected });
        }
        Err(e) => return Err(e),
    };
    let secret = extract(&combined.secret, chosen.1)?;
    Ok(CombinedSecret { secret, rejected })
}

/// Proactively refreshes a complete set of share files of one dealing: same secret, new shares,
/// new dealing id (old files no longer combine with new ones).
///
/// # Errors
///
/// [`ShamirError::MixedDealings`] / [`ShamirError::ConflictingCommitments`] if the files are not
/// one consistent dealing, and the errors of [`RefreshUpdate`].
pub fn refresh_share_files<R: rand::RngCore + rand::CryptoRng + ?Sized>(
    files: &mut [ShareFile],
    rng: &mut R,
) -> Result<(), ShamirError> {
    let Some(first) = files.first() else {
        return Ok(());
    };
    let commitments = first.commitments.clone();
    for f in files.iter() {
        if f.dealing_id() != commitments.dealing_id() {
            return Err(ShamirError::MixedDealings {
                count: 2,
                first_index: first.index(),
                first: commitments.dealing_id().short_hex(),
                other_index: f.index(),
                other: f.dealing_id().short_hex(),
            });
        }
        if f.commitments != commitments || f.secret_len != first.secret_len {
            return Err(ShamirError::ConflictingCommitments);
        }
    }
    let update = RefreshUpdate::new(&commitments, rng)?;
    let next = update.apply_to_commitments(&commitments)?;
    for f in files.iter_mut() {
        update.apply_to_share(&mut f.share)?;
        f.commitments = next.clone();
    }
    Ok(())
}
