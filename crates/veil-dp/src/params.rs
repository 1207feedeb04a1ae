//! Validated privacy parameters.
//!
//! Public constructors take these types instead of bare `f64`s so that a swapped argument or a
//! NaN is caught once, at the boundary, with a clear [`DpError`]. The domains follow the
//! definitions of (epsilon, delta)-differential privacy (Dwork and Roth, "The Algorithmic
//! Foundations of Differential Privacy", 2014, Definition 2.4) and of the Gaussian and Laplace
//! mechanisms (ibid., Sections 3.3 and Appendix A).

use serde::{Deserialize, Serialize};

use crate::DpError;

macro_rules! float_newtype {
    ($(#[$meta:meta])* $name:ident, $label:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
        #[serde(try_from = "f64", into = "f64")]
        pub struct $name(f64);

        impl $name {
            /// The value as a plain `f64`.
            pub fn get(self) -> f64 {
                self.0
            }
        }

        impl TryFrom<f64> for $name {
            type Error = DpError;
            fn try_from(value: f64) -> Result<Self, DpError> {
                $name::new(value)
            }
        }

        impl From<$name> for f64 {
            fn from(value: $name) -> f64 {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}={}", $label, self.0)
            }
        }
    };
}

float_newtype!(
    /// A privacy budget epsilon: finite and `>= 0`.
    Epsilon,
    "epsilon"
);
float_newtype!(
    /// A failure probability delta of (epsilon, delta)-DP: strictly inside `(0, 1)`.
    Delta,
    "delta"
);
float_newtype!(
    /// The ratio of the noise scale to the sensitivity: the Gaussian standard deviation over
    /// the L2 sensitivity, or the Laplace scale `b` over the L1 sensitivity. Finite and `> 0`.
    NoiseMultiplier,
    "noise_multiplier"
);
float_newtype!(
    /// A Poisson sampling probability `q` in `[0, 1]`.
    SamplingRate,
    "q"
);

impl Epsilon {
    /// Validates `value` as an epsilon: finite and `>= 0`.
    pub fn new(value: f64) -> Result<Self, DpError> {
        if value.is_finite() && value >= 0.0 {
            Ok(Epsilon(value))
        } else {
            Err(DpError::invalid(
                "epsilon",
                value,
                "must be finite and >= 0",
            ))
        }
    }
}

impl Delta {
    /// Validates `value` as a delta: strictly between 0 and 1.
    pub fn new(value: f64) -> Result<Self, DpError> {
        if value > 0.0 && value < 1.0 {
            Ok(Delta(value))
        } else {
            Err(DpError::invalid("delta", value, "must lie in (0, 1)"))
        }
    }
}

impl NoiseMultiplier {
    /// Validates `value` as a noise multiplier: finite and `> 0`.
    pub fn new(value: f64) -> Result<Self, DpError> {
        if value.is_finite() && value > 0.0 {
            Ok(NoiseMultiplier(value))
        } else {
            Err(DpError::invalid(
                "noise_multiplier",
                value,
                "must be finite and > 0",
            ))
        }
    }
}

impl SamplingRate {
    /// Validates `value` as a sampling probability in `[0, 1]`.
    pub fn new(value: f64) -> Result<Self, DpError> {
        if (0.0..=1.0).contains(&value) {
            Ok(SamplingRate(value))
        } else {
            Err(DpError::invalid("q", value, "must lie in [0, 1]"))
        }
    }

    /// `batch / n` for a batch of `batch` records drawn from `n` (the expected batch size of
    /// Poisson sampling, or the fixed size of sampling without replacement).
    pub fn from_batch(batch: u64, n: u64) -> Result<Self, DpError> {
        if n == 0 {
            return Err(DpError::invalid("n", 0.0, "dataset size must be >= 1"));
        }
        if batch > n {
            return Err(DpError::invalid(
                "batch",
                batch as f64,
                "batch size must not exceed the dataset size",
            ));
        }
        SamplingRate::new(batch as f64 / n as f64)
    }
}

/// Which pairs of datasets count as neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighboringRelation {
    /// One dataset is the other plus one record (the relation of Poisson-subsampled DP-SGD,
    /// Abadi et al. 2016).
    #[default]
    AddOrRemoveOne,
    /// Both datasets have the same size and differ in one record (the relation of sampling
    /// without replacement, Wang, Balle and Kasiviswanathan 2019).
    ReplaceOne,
}
