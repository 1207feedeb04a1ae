//! Privacy loss distribution (PLD) accounting: tight (epsilon, delta) by numerical
//! composition of discretised privacy loss distributions.
//!
//! The privacy loss distribution of a mechanism (Dwork and Rothblum 2016; Sommer, Meiser and
//! Mohammadi 2019, "Privacy Loss Classes") composes by convolution, and its hockey-stick
//! divergence is the delta of (epsilon, delta)-DP. Following Koskela, Jalko and Honkela 2020
//! ("Computing Tight Differential Privacy Guarantees Using FFT") and Google's `dp_accounting`
//! (`pld/privacy_loss_distribution.py`, `pld/pld_privacy_accountant.py`):
//! - each mechanism's PLD is discretised pessimistically on a grid of step
//!   `value_discretization_interval` (default `1e-4`), by connect-the-dots (Doroshenko et al.
//!   2022, the default) or privacy buckets (Meiser and Mohammadi 2018) ([`PldDiscretization`]);
//! - add-or-remove-one adjacency keeps two PLDs (ADD and REMOVE), which differ once the
//!   mechanism is Poisson-subsampled; reported epsilon and delta are the worse of the two;
//! - composition is FFT convolution ([`PldPmf::compose`]), `n`-fold self-composition is one
//!   FFT raised to the `n`-th power ([`PldPmf::self_compose`]), with tail mass truncated
//!   pessimistically into the infinity mass.
//!
//! The accountant handles Gaussian, Laplace, Poisson-subsampled Gaussian (or composition of
//! Gaussians on the same sample, reduced to one Gaussian as in Mironov, Talwar and Zhang
//! 2019, Section 3) and Poisson-subsampled Laplace events, self- and heterogeneous
//! compositions. A self-composed plain Gaussian is one Gaussian with `sigma / sqrt(count)`
//! (exact). Sampling without replacement is not analysed here (use the RDP accountant).

mod mechanism;
mod pmf;

use serde::{Deserialize, Serialize};

pub use pmf::{PldPmf, MAX_PMF_POINTS};

use self::mechanism::{AdditiveNoiseLoss, Adjacency, Noise};
use crate::{Delta, DpError, DpEvent, Epsilon, EpsilonReport, NoiseMultiplier, SamplingRate};

/// How a continuous privacy loss is discretised (both are pessimistic: the discrete PLD's
/// delta is never below the true one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PldDiscretization {
    /// Connect-the-dots (Doroshenko et al. 2022, Algorithm 1); `dp_accounting`'s default.
    #[default]
    ConnectTheDots,
    /// Privacy buckets: every loss rounded up to the grid (Meiser and Mohammadi 2018).
    PrivacyBuckets,
}

/// Options of the PLD accountant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PldOptions {
    value_discretization_interval: f64,
    discretization: PldDiscretization,
    tail_mass_truncation: f64,
}

impl Default for PldOptions {
    fn default() -> Self {
        PldOptions {
            value_discretization_interval: 1e-4,
            discretization: PldDiscretization::ConnectTheDots,
            tail_mass_truncation: 1e-15,
        }
    }
}

impl PldOptions {
    /// Options with grid step `value_discretization_interval` (finite, in `(0, 1]`), the
    /// connect-the-dots discretisation and a tail-mass truncation of `1e-15`.
    pub fn new(value_discretization_interval: f64) -> Result<Self, DpError> {
        if !(value_discretization_interval > 0.0 && value_discretization_interval <= 1.0) {
            return Err(DpError::invalid(
                "value_discretization_interval",
                value_discretization_interval,
                "must lie in (0, 1]",
            ));
        }
        Ok(PldOptions {
            value_discretization_interval,
            ..PldOptions::default()
        })
    }

    /// The same options with another discretisation.
    pub fn with_discretization(mut self, discretization: PldDiscretization) -> Self {
        self.discretization = discretization;
        self
    }

    /// The same options with another tail-mass truncation bound in `[0, 1e-3]` (mass that may
    /// be moved to `+inf` at each composition).
    pub fn with_tail_mass_truncation(mut self, tail_mass_truncation: f64) -> Result<Self, DpError> {
        if !(0.0..=1e-3).contains(&tail_mass_truncation) {
            return Err(DpError::invalid(
                "tail_mass_truncation",
                tail_mass_truncation,
                "must lie in [0, 1e-3]",
            ));
        }
        self.tail_mass_truncation = tail_mass_truncation;
        Ok(self)
    }

    /// The grid step.
    pub fn value_discretization_interval(&self) -> f64 {
        self.value_discretization_interval
    }

    /// The discretisation.
    pub fn discretization(&self) -> PldDiscretization {
        self.discretization
    }

    /// The tail-mass truncation bound.
    pub fn tail_mass_truncation(&self) -> f64 {
        self.tail_mass_truncation
    }
}

/// A discretised privacy loss distribution for the add-or-remove-one relation: the REMOVE
/// direction and, when it differs, the ADD direction.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyLossDistribution {
    options: PldOptions,
    remove: PldPmf,
    add: Option<PldPmf>,
}

impl PrivacyLossDistribution {
    /// The PLD of a mechanism that reveals nothing.
    pub fn identity(options: PldOptions) -> Self {
        PrivacyLossDistribution {
            options,
            remove: PldPmf::identity(options.value_discretization_interval),
            add: None,
        }
    }

    fn from_noise(noise: Noise, q: f64, options: PldOptions) -> Result<Self, DpError> {
        if q == 0.0 {
            return Ok(Self::identity(options));
        }
        let d = options.value_discretization_interval;
        let build = |adjacency| {
            let loss = AdditiveNoiseLoss {
                noise,
                q,
                adjacency,
            };
            match options.discretization {
                PldDiscretization::ConnectTheDots => loss.connect_dots_pmf(d),
                PldDiscretization::PrivacyBuckets => loss.privacy_buckets_pmf(d),
            }
        };
        let remove = build(Adjacency::Remove)?;
        let add = if q == 1.0 {
            None
        } else {
            Some(build(Adjacency::Add)?)
        };
        Ok(PrivacyLossDistribution {
            options,
            remove,
            add,
        })
    }

    /// The PLD of the Gaussian mechanism with noise multiplier `noise`, Poisson-subsampled
    /// with probability `q` (`q = 1`: no subsampling).
    pub fn from_gaussian(
        noise: NoiseMultiplier,
        q: SamplingRate,
        options: PldOptions,
    ) -> Result<Self, DpError> {
        Self::from_noise(Noise::Gaussian { sigma: noise.get() }, q.get(), options)
    }

    /// The PLD of the Laplace mechanism with scale over sensitivity `scale`,
    /// Poisson-subsampled with probability `q`.
    pub fn from_laplace(
        scale: NoiseMultiplier,
        q: SamplingRate,
        options: PldOptions,
    ) -> Result<Self, DpError> {
        Self::from_noise(Noise::Laplace { b: scale.get() }, q.get(), options)
    }

    /// The options this PLD was built with.
    pub fn options(&self) -> PldOptions {
        self.options
    }

    /// The REMOVE-direction PMF.
    pub fn pmf_remove(&self) -> &PldPmf {
        &self.remove
    }

    /// The ADD-direction PMF (the REMOVE one when the two coincide).
    pub fn pmf_add(&self) -> &PldPmf {
        self.add.as_ref().unwrap_or(&self.remove)
    }

    /// The composition of `self` and `other` (same grid step).
    pub fn compose(&self, other: &PrivacyLossDistribution) -> Result<Self, DpError> {
        if self.options.value_discretization_interval != other.options.value_discretization_interval
        {
            return Err(DpError::invalid(
                "value_discretization_interval",
                other.options.value_discretization_interval,
                "composed distributions must share the grid step",
            ));
        }
        let t = self.options.tail_mass_truncation;
        let remove = self.remove.compose(&other.remove, t)?;
        let add = if self.add.is_none() && other.add.is_none() {
            None
        } else {
            Some(self.pmf_add().compose(other.pmf_add(), t)?)
        };
        Ok(PrivacyLossDistribution {
            options: self.options,
            remove,
            add,
        })
    }

    /// `count`-fold self-composition.
    pub fn self_compose(&self, count: u64) -> Result<Self, DpError> {
        let t = self.options.tail_mass_truncation;
        let remove = self.remove.self_compose(count, t)?;
        let add = match &self.add {
            None => None,
            Some(a) => Some(a.self_compose(count, t)?),
        };
        Ok(PrivacyLossDistribution {
            options: self.options,
            remove,
            add,
        })
    }

    /// `delta(epsilon)`: the larger hockey-stick divergence of the two directions.
    pub fn delta_for_epsilon(&self, epsilon: Epsilon) -> f64 {
        let r = self.remove.delta_for_epsilon(epsilon);
        match &self.add {
            None => r,
            Some(a) => r.max(a.delta_for_epsilon(epsilon)),
        }
    }

    /// The smallest epsilon with `delta(epsilon) <= delta` (`+inf` if none).
    pub fn epsilon_for_delta(&self, delta: Delta) -> f64 {
        let r = self.remove.epsilon_for_delta(delta);
        match &self.add {
            None => r,
            Some(a) => r.max(a.epsilon_for_delta(delta)),
        }
    }
}

/// The PLD accountant.
#[derive(Debug, Clone, PartialEq)]
pub struct PldAccountant {
    options: PldOptions,
    pld: PrivacyLossDistribution,
}

impl Default for PldAccountant {
    fn default() -> Self {
        Self::with_options(PldOptions::default())
    }
}

impl PldAccountant {
    /// An accountant with grid step `value_discretization_interval` (`dp_accounting` uses
    /// `1e-4`) and otherwise default options.
    pub fn new(value_discretization_interval: f64) -> Result<Self, DpError> {
        Ok(Self::with_options(PldOptions::new(
            value_discretization_interval,
        )?))
    }

    /// An accountant with the given options.
    pub fn with_options(options: PldOptions) -> Self {
        PldAccountant {
            options,
            pld: PrivacyLossDistribution::identity(options),
        }
    }

    /// The options.
    pub fn options(&self) -> PldOptions {
        self.options
    }

    /// The composed distribution so far.
    pub fn pld(&self) -> &PrivacyLossDistribution {
        &self.pld
    }

    /// Composes `event`. On error the accountant is left unchanged.
    pub fn compose(&mut self, event: &DpEvent) -> Result<&mut Self, DpError> {
        if let Some(p) = self.event_pld(event)? {
            self.pld = self.pld.compose(&p)?;
        }
        Ok(self)
    }

    /// The PLD of `event` alone (`None`: the event reveals nothing).
    pub fn event_pld(&self, event: &DpEvent) -> Result<Option<PrivacyLossDistribution>, DpError> {
        self.event_pld_counted(event, 1)
    }

    fn unsupported(reason: &str) -> DpError {
        DpError::UnsupportedEvent {
            accountant: "pld",
            reason: reason.to_string(),
        }
    }

    fn event_pld_counted(
        &self,
        event: &DpEvent,
        count: u64,
    ) -> Result<Option<PrivacyLossDistribution>, DpError> {
        if count == 0 {
            return Ok(None);
        }
        let opts = self.options;
        let one = SamplingRate::new(1.0)?;
        match event {
            DpEvent::Gaussian { noise_multiplier } => {
                // count Gaussians on the same data = one Gaussian with sigma / sqrt(count).
                let sigma = NoiseMultiplier::new(noise_multiplier.get() / (count as f64).sqrt())?;
                Ok(Some(PrivacyLossDistribution::from_gaussian(
                    sigma, one, opts,
                )?))
            }
            DpEvent::Laplace {
                scale_over_sensitivity,
            } => Ok(Some(
                PrivacyLossDistribution::from_laplace(*scale_over_sensitivity, one, opts)?
                    .self_compose(count)?,
            )),
            DpEvent::PoissonSampled { q, event } => {
                if q.get() == 0.0 {
                    return Ok(None);
                }
                if q.get() == 1.0 {
                    return self.event_pld_counted(event, count);
                }
                let base = if let DpEvent::Laplace {
                    scale_over_sensitivity,
                } = event.as_ref()
                {
                    PrivacyLossDistribution::from_laplace(*scale_over_sensitivity, *q, opts)?
                } else {
                    let sigma = event.effective_gaussian_noise().ok_or_else(|| {
                        Self::unsupported(
                            "the event inside PoissonSampled must be a Laplace, a Gaussian or \
                             a composition of Gaussians",
                        )
                    })?;
                    if sigma.is_infinite() {
                        return Ok(None);
                    }
                    PrivacyLossDistribution::from_gaussian(NoiseMultiplier::new(sigma)?, *q, opts)?
                };
                Ok(Some(base.self_compose(count)?))
            }
            DpEvent::SampledWithoutReplacement { .. } => Err(Self::unsupported(
                "sampling without replacement is not analysed by the PLD accountant; use the \
                 RDP accountant with the replace-one relation",
            )),
            DpEvent::SelfComposed { event, count: c } => {
                let total = count.checked_mul(*c).ok_or(DpError::CountOverflow)?;
                self.event_pld_counted(event, total)
            }
            DpEvent::Composed(events) => {
                let mut acc: Option<PrivacyLossDistribution> = None;
                for e in events {
                    if let Some(p) = self.event_pld_counted(e, count)? {
                        acc = Some(match acc {
                            None => p,
                            Some(a) => a.compose(&p)?,
                        });
                    }
                }
                Ok(acc)
            }
        }
    }

    /// The smallest epsilon for `delta` (`+inf` if the infinity mass exceeds `delta`).
    pub fn epsilon(&self, delta: Delta) -> f64 {
        self.pld.epsilon_for_delta(delta)
    }

    /// The delta at `epsilon`.
    pub fn delta(&self, epsilon: Epsilon) -> f64 {
        self.pld.delta_for_epsilon(epsilon)
    }

    /// [`PldAccountant::epsilon`] as a serialisable report.
    pub fn report(&self, delta: Delta) -> EpsilonReport {
        EpsilonReport {
            epsilon: self.epsilon(delta),
            delta: delta.get(),
            order: None,
            accountant: "pld".to_string(),
        }
    }
}
