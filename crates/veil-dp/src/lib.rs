//! `veil-dp`: differential-privacy accounting for Veil.
//!
//! - [`event`]: privacy events ([`DpEvent`]): Gaussian, Laplace, Poisson-subsampled,
//!   sampled without replacement, self- and heterogeneous composition.
//! - [`rdp`]: the Renyi-DP accountant ([`RdpAccountant`]) with integer and fractional orders in
//!   log space (Mironov, Talwar and Zhang 2019) and the classic and improved conversions to
//!   (epsilon, delta) (Mironov 2017; Canonne, Kamath and Steinke 2020).
//! - [`pld`]: the privacy-loss-distribution accountant ([`PldAccountant`]): pessimistic
//!   discretisation and FFT composition (Koskela, Jalko and Honkela 2020; `dp_accounting`).
//! - [`gaussian`]: the exact Gaussian curve and the analytic Gaussian mechanism (Balle and
//!   Wang 2018).
//! - [`zcdp`]: zero-concentrated DP and its conversions (Bun and Steinke 2016).
//! - [`calibrate`]: smallest noise for a target, most steps within a budget.
//! - [`discrete`]: an exact sampler of the discrete Gaussian ([`DiscreteGaussian`]; Canonne,
//!   Kamath and Steinke 2020) in integer arithmetic, the noise of Veil's DP-SGD.
//! - [`params`]: validated parameter types ([`Epsilon`], [`Delta`], [`NoiseMultiplier`],
//!   [`SamplingRate`]); bad inputs are [`DpError`]s, never panics.
//!
//! ```
//! use veil_dp::{Delta, DpEvent, PldAccountant, RdpAccountant};
//!
//! // 1000 DP-SGD steps: Poisson rate 0.01, noise multiplier 1.1.
//! let event = DpEvent::dp_sgd(1.1, 0.01, 1000)?;
//! let delta = Delta::new(1e-5)?;
//! let mut rdp = RdpAccountant::default();
//! rdp.compose(&event)?;
//! let by_rdp = rdp.epsilon(delta)?; // epsilon 1.7118 at order 9.6
//! let mut pld = PldAccountant::default();
//! pld.compose(&event)?;
//! let by_pld = pld.epsilon(delta); // 1.5154: tighter
//! assert!(by_pld < by_rdp.epsilon);
//! # Ok::<(), veil_dp::DpError>(())
//! ```

pub mod calibrate;
pub mod discrete;
pub mod error;
pub mod event;
mod fft;
pub mod gaussian;
pub mod params;
pub mod pld;
pub mod rdp;
pub mod report;
pub mod special;
pub mod zcdp;

pub use calibrate::{calibrate_noise, dp_sgd_epsilon, max_steps, AccountantKind};
pub use discrete::DiscreteGaussian;
pub use error::DpError;
pub use event::DpEvent;
pub use gaussian::{
    analytic_gaussian_noise_multiplier, analytic_gaussian_sigma, gaussian_delta, gaussian_epsilon,
};
pub use params::{Delta, Epsilon, NeighboringRelation, NoiseMultiplier, SamplingRate};
pub use pld::{PldAccountant, PldDiscretization, PldOptions, PrivacyLossDistribution};
pub use rdp::{DeltaAtOrder, EpsilonAtOrder, RdpAccountant};
pub use report::EpsilonReport;
pub use zcdp::{gaussian_zcdp, pure_dp_to_zcdp, zcdp_to_epsilon, zcdp_to_epsilon_tight, Rho};
