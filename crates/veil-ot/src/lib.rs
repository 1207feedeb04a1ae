//! `veil-ot`: oblivious transfer for Veil's two-party protocols.
//!
//! - [`base`]: the Chou-Orlandi "simplest OT" over Ristretto255 (one round trip for any
//!   number of OTs), behind the [`BaseOtSender`] / [`BaseOtReceiver`] traits so that the
//!   extension can take another base OT.
//! - [`extension`]: OT extension giving correlated OT (global `Δ`), random OT and
//!   chosen-message OT of any length, its columns from IKNP (16 bytes per OT from receiver to
//!   sender) or from [`softspoken`] (SoftSpokenOT, 4 bytes per OT at the default `k = 4`).
//! - [`kos`]: the KOS consistency check that makes the extension secure against a receiver
//!   that deviates ([`OtSender::with_kos_check`]).
//! - [`aes_hash`]: the fixed-key-AES hashes of Guo, Katz, Wang and Yu (also used by garbling).
//! - [`wide_aes`]: AES-128 on many blocks at once, on VAES (AVX-512), AES-NI or the `aes`
//!   crate, chosen at run time.
//! - [`transpose`]: the 128x128 bit transposition, on AVX-512, AVX2 or portable code, chosen
//!   at run time.
//! - [`prg`], [`block`]: the AES-CTR generator and the 128-bit block.
//!
//! `unsafe` is denied workspace-wide and allowed in two modules only, `wide_aes` and
//! `transpose`, for their SIMD kernels; each kernel is checked against portable code on random
//! inputs.
//!
//! Roles are types: [`OtSender`] and [`OtReceiver`] each hold only their own state.
//! Everything runs over a [`veil_net::Channel`], in memory or over TCP. Randomness comes from
//! the caller's CSPRNG; [`secure_rng`] gives a ChaCha20 generator seeded by the OS.
//!
//! # Secrets in memory
//!
//! [`Block`] stays `Copy` (it lives in registers in every hot loop), so its copies on the stack
//! are not erased; the long-lived owners of secret blocks are. [`OtSender`] zeroizes `Δ` and
//! its column scratch on drop, [`OtReceiver`] its scratch; the AES-CTR seeds of both
//! ([`prg::AesPrg`]) live only as AES round keys, which [`wide_aes::WideAes`] erases on drop.
//! Base-OT scalars and shared points are `Zeroizing`. Random-OT keys handed to the caller are
//! the caller's to erase. [`erase_rng`] overwrites a ChaCha20 generator that derived secrets.

pub mod aes_hash;
pub mod base;
pub mod block;
pub mod error;
pub mod extension;
pub mod kos;
pub mod prg;
pub mod softspoken;
pub mod transpose;
pub mod wide_aes;

pub use base::{BaseOtReceiver, BaseOtSender, ChouOrlandi};
pub use block::Block;
pub use error::OtError;
pub use extension::{Extension, OtReceiver, OtSender};

/// A ChaCha20 generator seeded from the operating system's randomness.
pub fn secure_rng() -> rand_chacha::ChaCha20Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::from_os_rng()
}

/// Overwrites a generator whose key derived secrets (a garbler's `Δ`, labels, shares) with the
/// generator of the all-zero seed, so the old key does not outlive its owner.
///
/// `rand_chacha` offers no zeroization; this is a best effort: the new value is written over
/// the old one in place and [`std::hint::black_box`] keeps the store from being elided.
pub fn erase_rng(rng: &mut rand_chacha::ChaCha20Rng) {
    use rand::SeedableRng;
    *rng = rand_chacha::ChaCha20Rng::from_seed([0u8; 32]);
    std::hint::black_box(&*rng);
}

#[cfg(test)]
mod tests {
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn erase_rng_replaces_the_key() {
        let mut rng = ChaCha20Rng::from_seed([7u8; 32]);
        rng.next_u64();
        super::erase_rng(&mut rng);
        assert_eq!(rng.get_seed(), [0u8; 32]);
        assert_eq!(rng, ChaCha20Rng::from_seed([0u8; 32]));
    }
}
