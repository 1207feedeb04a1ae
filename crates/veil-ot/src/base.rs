//! Base OT: the "simplest OT" of Chou and Orlandi (LATINCRYPT 2015, ePrint 2015/267,
//! figure 1) over the Ristretto255 group, in its random-OT form.
//!
//! Sender: `a ← Z_ℓ`, sends `A = aG` and a fresh 16-byte session identifier. Receiver with
//! choice `c_i`: `b_i ← Z_ℓ`, sends `B_i = b_i G + c_i A`, and keeps `k_i = H(i, A, B_i, b_i A)`.
//! Sender: `k_i^0 = H(i, A, B_i, a B_i)` and `k_i^1 = H(i, A, B_i, a B_i − a A)`.
//! One message each way for any number of OTs.
//!
//! `H` is SHA-256 over a domain label, the session identifier, the index and the three
//! encoded points, truncated to 128 bits. Binding `A` and `B_i` into the hash follows the
//! fix to the original proof (Hauck and Loss, "Efficient and universally composable protocols
//! for oblivious transfer from the CDH assumption", 2017, section 3). Points from the peer are
//! decoded strictly: a non-canonical encoding or the identity is an error. Secrets (scalars,
//! shared points) are erased after use.

use curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoBasepointTable, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable};
use veil_net::Channel;
use zeroize::{Zeroize, Zeroizing};

use crate::block::Block;
use crate::error::OtError;

const DOMAIN: &[u8] = b"veil/base-ot/chou-orlandi/v1";
/// Largest number of base OTs in one batch (a bound on what a peer can make us compute).
pub const MAX_BASE_OTS: usize = 1 << 16;

fn random_scalar<R: RngCore + CryptoRng>(rng: &mut R) -> Zeroizing<Scalar> {
    let mut wide = Zeroizing::new([0u8; 64]);
    rng.fill_bytes(wide.as_mut());
    Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide))
}

fn kdf(
    session: &[u8; 16],
    index: usize,
    a: &[u8; 32],
    b: &[u8; 32],
    shared: &RistrettoPoint,
) -> Block {
    let shared = Zeroizing::new(shared.compress().to_bytes());
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(session);
    h.update((index as u64).to_le_bytes());
    h.update(a);
    h.update(b);
    h.update(shared.as_ref());
    let mut digest = h.finalize();
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&digest[..16]);
    digest.as_mut_slice().zeroize();
    Block::from_bytes(*out)
}

fn decode_point(bytes: &[u8], index: usize) -> Result<RistrettoPoint, OtError> {
    let c = CompressedRistretto::from_slice(bytes).map_err(|_| OtError::InvalidPoint { index })?;
    let p = c.decompress().ok_or(OtError::InvalidPoint { index })?;
    if p.is_identity() {
        return Err(OtError::InvalidPoint { index });
    }
    Ok(p)
}

/// A source of random base OTs for the sender side of a protocol: `n` pairs of random
/// 128-bit keys. IKNP's receiver plays this role in its setup.
pub trait BaseOtSender {
    /// Runs `n` random OTs as the sender; returns the key pairs.
    fn send_random(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> impl std::future::Future<Output = Result<Vec<[Block; 2]>, OtError>> + Send;
}

/// The receiver side of random base OTs: one key per choice bit. IKNP's sender plays this
/// role in its setup.
pub trait BaseOtReceiver {
    /// Runs `choices.len()` random OTs as the receiver; returns the chosen keys.
    fn receive_random(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> impl std::future::Future<Output = Result<Vec<Block>, OtError>> + Send;
}

/// Chou-Orlandi base OT, with its own random generator.
pub struct ChouOrlandi<R> {
    rng: R,
}

impl<R: RngCore + CryptoRng + Send> ChouOrlandi<R> {
    /// Base OT drawing randomness from `rng` (a CSPRNG seeded from the OS outside tests).
    pub fn new(rng: R) -> Self {
        ChouOrlandi { rng }
    }
}

impl<R: RngCore + CryptoRng + Send> BaseOtSender for ChouOrlandi<R> {
    async fn send_random(
        &mut self,
        ch: &mut Channel,
        n: usize,
    ) -> Result<Vec<[Block; 2]>, OtError> {
        if n == 0 || n > MAX_BASE_OTS {
            return Err(OtError::InvalidArgument(format!(
                "{n} base OTs (1..={MAX_BASE_OTS})"
            )));
        }
        let a = random_scalar(&mut self.rng);
        let big_a = RISTRETTO_BASEPOINT_TABLE * &*a;
        let a_bytes = big_a.compress().to_bytes();
        let mut session = [0u8; 16];
        self.rng.fill_bytes(&mut session);
        let mut first = Vec::with_capacity(48);
        first.extend_from_slice(&a_bytes);
        first.extend_from_slice(&session);
        ch.send_bytes(&first).await?;
        ch.flush().await?;

        let reply = ch.recv_bytes().await?;
        if reply.len() != 32 * n {
            return Err(OtError::Malformed(format!(
                "base OT: expected {n} points ({} bytes), got {} bytes",
                32 * n,
                reply.len()
            )));
        }
        let a_a = Zeroizing::new(big_a * *a);
        let mut keys = Vec::with_capacity(n);
        for (i, chunk) in reply.chunks_exact(32).enumerate() {
            let b = decode_point(chunk, i)?;
            let mut b_bytes = [0u8; 32];
            b_bytes.copy_from_slice(chunk);
            let ab = Zeroizing::new(b * *a);
            let ab_minus = Zeroizing::new(*ab - *a_a);
            keys.push([
                kdf(&session, i, &a_bytes, &b_bytes, &ab),
                kdf(&session, i, &a_bytes, &b_bytes, &ab_minus),
            ]);
        }
        Ok(keys)
    }
}

impl<R: RngCore + CryptoRng + Send> BaseOtReceiver for ChouOrlandi<R> {
    async fn receive_random(
        &mut self,
        ch: &mut Channel,
        choices: &[bool],
    ) -> Result<Vec<Block>, OtError> {
        let n = choices.len();
        if n == 0 || n > MAX_BASE_OTS {
            return Err(OtError::InvalidArgument(format!(
                "{n} base OTs (1..={MAX_BASE_OTS})"
            )));
        }
        let first = ch.recv_bytes().await?;
        if first.len() != 48 {
            return Err(OtError::Malformed(format!(
                "base OT: expected the sender's point and session (48 bytes), got {} bytes",
                first.len()
            )));
        }
        let big_a = decode_point(&first[..32], 0)?;
        let mut a_bytes = [0u8; 32];
        a_bytes.copy_from_slice(&first[..32]);
        let mut session = [0u8; 16];
        session.copy_from_slice(&first[32..]);

        let mut scalars = Vec::with_capacity(n);
        let mut reply = Vec::with_capacity(32 * n);
        for &c in choices {
            let b = random_scalar(&mut self.rng);
            let big_b = RISTRETTO_BASEPOINT_TABLE * &*b;
            // The choice bit is secret (IKNP's sender chooses with the bits of Δ): no branch.
            let big_b = RistrettoPoint::conditional_select(
                &big_b,
                &(big_b + big_a),
                Choice::from(u8::from(c)),
            );
            reply.extend_from_slice(&big_b.compress().to_bytes());
            scalars.push(b);
        }
        ch.send_bytes(&reply).await?;
        ch.flush().await?;

        // The keys are computed after the reply is on its way, overlapping the sender's work.
        let table = RistrettoBasepointTable::create(&big_a);
        let keys = scalars
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut b_bytes = [0u8; 32];
                b_bytes.copy_from_slice(&reply[32 * i..32 * (i + 1)]);
                let shared = Zeroizing::new(&table * &**b);
                kdf(&session, i, &a_bytes, &b_bytes, &shared)
            })
            .collect();
        Ok(keys)
    }
}
