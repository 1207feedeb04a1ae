//! Privacy events: what a computation did to the data, in a form the accountants analyse.
//!
//! The vocabulary follows Google's `dp_accounting` (`dp_event.py`): a Gaussian or Laplace
//! mechanism, a Poisson-subsampled event (each record kept independently with probability `q`,
//! Abadi et al. 2016, "Deep Learning with Differential Privacy"), sampling a fixed-size batch
//! without replacement (Wang, Balle and Kasiviswanathan 2019, "Subsampled Renyi Differential
//! Privacy and Analytical Moments Accountant"), the self-composition of one event and the
//! heterogeneous composition of several. A DP-SGD run of `T` steps is
//! `SelfComposed { PoissonSampled { q, Gaussian { sigma } }, T }` ([`DpEvent::dp_sgd`]).

use serde::{Deserialize, Serialize};

use crate::{DpError, NoiseMultiplier, SamplingRate};

/// One privacy event. Build it with the validating constructors ([`DpEvent::gaussian`], ...)
/// or from already validated parameters; accountants check the remaining invariants (for
/// example `batch <= n`) and report violations as errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DpEvent {
    /// The Gaussian mechanism: noise `N(0, (noise_multiplier * sensitivity)^2)` added to a
    /// query of L2 sensitivity `sensitivity`.
    Gaussian {
        /// Standard deviation over L2 sensitivity.
        noise_multiplier: NoiseMultiplier,
    },
    /// The Laplace mechanism: noise `Lap(b)` with `b = scale_over_sensitivity * sensitivity`
    /// added to a query of L1 sensitivity `sensitivity` (pure `1/scale_over_sensitivity`-DP).
    Laplace {
        /// Laplace scale over L1 sensitivity.
        scale_over_sensitivity: NoiseMultiplier,
    },
    /// `event` run on a Poisson subsample: every record is kept independently with
    /// probability `q` (add-or-remove-one relation).
    PoissonSampled {
        /// Sampling probability.
        q: SamplingRate,
        /// The event run on the subsample.
        event: Box<DpEvent>,
    },
    /// `event` run on `batch` records drawn uniformly without replacement from `n`
    /// (replace-one relation).
    SampledWithoutReplacement {
        /// Dataset size (public).
        n: u64,
        /// Batch size, `<= n`.
        batch: u64,
        /// The event run on the batch.
        event: Box<DpEvent>,
    },
    /// `event` repeated `count` times, each on fresh randomness.
    SelfComposed {
        /// The repeated event.
        event: Box<DpEvent>,
        /// Number of repetitions.
        count: u64,
    },
    /// The events run one after the other (adaptively).
    Composed(Vec<DpEvent>),
}

impl DpEvent {
    /// A Gaussian mechanism with the given noise multiplier (`> 0`, finite).
    pub fn gaussian(noise_multiplier: f64) -> Result<DpEvent, DpError> {
        Ok(DpEvent::Gaussian {
            noise_multiplier: NoiseMultiplier::new(noise_multiplier)?,
        })
    }

    /// A Laplace mechanism with scale over sensitivity `> 0`.
    pub fn laplace(scale_over_sensitivity: f64) -> Result<DpEvent, DpError> {
        Ok(DpEvent::Laplace {
            scale_over_sensitivity: NoiseMultiplier::new(scale_over_sensitivity)?,
        })
    }

    /// `event` on a Poisson subsample with probability `q` in `[0, 1]`.
    pub fn poisson_sampled(q: f64, event: DpEvent) -> Result<DpEvent, DpError> {
        Ok(DpEvent::PoissonSampled {
            q: SamplingRate::new(q)?,
            event: Box::new(event),
        })
    }

    /// `event` on `batch` of `n` records sampled without replacement (`1 <= n`, `batch <= n`).
    pub fn sampled_without_replacement(
        n: u64,
        batch: u64,
        event: DpEvent,
    ) -> Result<DpEvent, DpError> {
        SamplingRate::from_batch(batch, n)?;
        Ok(DpEvent::SampledWithoutReplacement {
            n,
            batch,
            event: Box::new(event),
        })
    }

    /// `event` repeated `count` times.
    pub fn self_composed(event: DpEvent, count: u64) -> DpEvent {
        DpEvent::SelfComposed {
            event: Box::new(event),
            count,
        }
    }

    /// DP-SGD (Abadi et al. 2016): `steps` steps, each a Gaussian with `noise_multiplier` on a
    /// Poisson subsample of rate `sample_rate`.
    pub fn dp_sgd(noise_multiplier: f64, sample_rate: f64, steps: u64) -> Result<DpEvent, DpError> {
        Ok(DpEvent::self_composed(
            DpEvent::poisson_sampled(sample_rate, DpEvent::gaussian(noise_multiplier)?)?,
            steps,
        ))
    }

    /// The noise multiplier of the single Gaussian equivalent to this event, when the event
    /// is a Gaussian or a composition (self- or heterogeneous) of Gaussians on the same
    /// data: `(sum_i sigma_i^-2)^-1/2`, since such a sequence is a Gaussian with pre- and
    /// post-processing (Mironov, Talwar and Zhang 2019, Section 3). `None` for any other
    /// event; `Some(f64::INFINITY)` when the composition holds no Gaussian at all (an empty
    /// list or a zero count), which releases nothing.
    pub fn effective_gaussian_noise(&self) -> Option<f64> {
        fn inv_sq(event: &DpEvent) -> Option<f64> {
            match event {
                DpEvent::Gaussian { noise_multiplier } => Some(noise_multiplier.get().powi(-2)),
                DpEvent::SelfComposed { event, count } => Some(inv_sq(event)? * *count as f64),
                DpEvent::Composed(events) => {
                    let mut sum = 0.0;
                    for e in events {
                        sum += inv_sq(e)?;
                    }
                    Some(sum)
                }
                _ => None,
            }
        }
        let s = inv_sq(self)?;
        Some(if s > 0.0 { s.powf(-0.5) } else { f64::INFINITY })
    }
}
