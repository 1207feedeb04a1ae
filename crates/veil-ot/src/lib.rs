//! `veil-ot`: oblivious transfer for Veil's two-party protocols.
//!
//! - [`base`]: the Chou-Orlandi "simplest OT" over Ristretto255 (one round trip for any
//!   number of OTs), behind the [`BaseOtSender`] / [`BaseOtReceiver`] traits so that the
//!   extension can take another base OT.
//! - [`iknp`]: IKNP OT extension giving correlated OT (global `Δ`), random OT and
//!   chosen-message OT of any length, at 16 bytes per OT from receiver to sender.
//! - [`aes_hash`]: the fixed-key-AES hashes of Guo, Katz, Wang and Yu (also used by garbling).
//! - [`prg`], [`transpose`], [`block`]: the AES-CTR generator, the 128x128 bit transposition
//!   and the 128-bit block.
//!
//! Roles are types: [`IknpSender`] and [`IknpReceiver`] each hold only their own state.
//! Everything runs over a [`veil_net::Channel`], in memory or over TCP. Randomness comes from
//! the caller's CSPRNG; [`secure_rng`] gives a ChaCha20 generator seeded by the OS.

pub mod aes_hash;
pub mod base;
pub mod block;
pub mod error;
pub mod iknp;
pub mod prg;
pub mod transpose;

pub use base::{BaseOtReceiver, BaseOtSender, ChouOrlandi};
pub use block::Block;
pub use error::OtError;
pub use iknp::{IknpReceiver, IknpSender};

/// A ChaCha20 generator seeded from the operating system's randomness.
pub fn secure_rng() -> rand_chacha::ChaCha20Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::from_os_rng()
}
