//! `veil-shamir`: Shamir secret sharing for threshold custody, and honest-majority n-party
//! arithmetic (BGW) for private inference.
//!
//! - [`field`]: the [`Field`] trait, the Mersenne field `GF(2^61 - 1)` ([`M61`]) for bulk
//!   arithmetic and the Ristretto255 scalar field for committed sharings.
//! - [`shamir`]: `(t, n)` sharing and reconstruction (Shamir 1979), robust reconstruction that
//!   corrects and names bad shares, proactive refresh (Herzberg et al. 1995).
//! - [`berlekamp_welch`]: Reed-Solomon decoding (Welch and Berlekamp 1986).
//! - [`feldman`]: verifiable sharing with Ristretto commitments (Feldman 1987) and dealing ids.
//! - [`secret`]: byte-string secrets (key files) and the versioned [`ShareFile`] format.
//! - [`mpc`]: BGW arithmetic over a full mesh of [`veil_net::Channel`]s (Ben-Or, Goldwasser and
//!   Wigderson 1988), with the degree reduction of Gennaro, Rabin and Rabin (1998), and a
//!   fixed-point linear layer checked against its plaintext twin.
//! - [`poly`]: polynomial evaluation, interpolation and the solver behind decoding.
//!
//! # Threshold convention
//!
//! Parameters name the polynomial **degree** `t`: `t + 1` shares reconstruct and `t` reveal
//! nothing. A "`k`-of-`n`" threshold, as on the command line, is
//! [`SharingParams::threshold`]`(k, n)`, i.e. `t = k - 1`. The n-party protocol likewise takes
//! the degree `t` and needs `n ≥ 2t + 1` parties (an honest majority).
//!
//! # Randomness and secrets
//!
//! Every randomised function takes the caller's CSPRNG; [`secure_rng`] gives a ChaCha20
//! generator seeded by the operating system, and tests pass a seeded one. Shares, polynomials and
//! recovered secrets are zeroized on drop; share checks compare with `subtle`.
//!
//! ```
//! use veil_shamir::{secret, secure_rng, SharingParams};
//!
//! let params = SharingParams::threshold(3, 5)?; // any 3 of 5 shares recover the secret
//! let files = secret::split_secret(b"correct horse battery staple", params, &mut secure_rng())?;
//! let text = files[4].to_text();
//! let back = secret::ShareFile::from_text(&text)?;
//! let got = secret::combine_secret(
//!     &[files[0].clone(), files[2].clone(), back],
//!     secret::CombinePolicy::Strict,
//! )?;
//! assert_eq!(&got.secret[..], b"correct horse battery staple");
//! # Ok::<(), veil_shamir::ShamirError>(())
//! ```

pub mod berlekamp_welch;
pub mod error;
pub mod feldman;
pub mod field;
mod hex;
pub mod mpc;
pub mod poly;
pub mod secret;
pub mod shamir;

/// The Ristretto255 scalar field, re-exported for callers of the committed sharings.
pub use curve25519_dalek::scalar::Scalar;
pub use error::{MpcError, ShamirError};
pub use field::{Field, M61};
pub use secret::{combine_secret, split_secret, CombinePolicy, CombinedSecret, ShareFile};
pub use shamir::{
    deal, deal_vec, reconstruct, reconstruct_robust, reconstruct_vec, reconstruct_vec_robust,
    Share, ShareVec, SharingParams,
};

/// A ChaCha20 generator seeded from the operating system's randomness.
pub fn secure_rng() -> rand_chacha::ChaCha20Rng {
    use rand::SeedableRng;
    rand_chacha::ChaCha20Rng::from_os_rng()
}
