//! The one error type of `veil-dp`.
//!
//! Every bad input (NaN, a negative noise multiplier, a sampling rate outside `[0, 1]`, a delta
//! outside `(0, 1)`, an event an accountant cannot analyse, a distribution too large to hold)
//! is reported as a [`DpError`] rather than a panic.

use thiserror::Error;

/// Everything that can go wrong while building events, accounting or calibrating.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DpError {
    /// A parameter is outside its domain; `name` says which, `reason` what it must be.
    #[error("invalid {name} = {value}: {reason}")]
    InvalidParameter {
        /// The parameter's name, e.g. `"delta"`.
        name: &'static str,
        /// The offending value (as given).
        value: f64,
        /// What the value must satisfy.
        reason: &'static str,
    },
    /// The accountant cannot analyse this event (or this event under its neighbouring
    /// relation); the message names the event and the reason.
    #[error("unsupported event for the {accountant} accountant: {reason}")]
    UnsupportedEvent {
        /// `"rdp"` or `"pld"`.
        accountant: &'static str,
        /// Why, in words.
        reason: String,
    },
    /// A composition count overflowed `u64`.
    #[error("composition count overflows u64")]
    CountOverflow,
    /// A privacy loss distribution would need more than the allowed number of points.
    #[error(
        "privacy loss distribution would need {needed} points (limit {limit}); \
         use a coarser value_discretization_interval"
    )]
    PldTooLarge {
        /// Points the computation would need.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// A search (calibration) found no value within its range.
    #[error("no solution: {0}")]
    NoSolution(String),
}

impl DpError {
    /// Shorthand for [`DpError::InvalidParameter`].
    pub(crate) fn invalid(name: &'static str, value: f64, reason: &'static str) -> Self {
        DpError::InvalidParameter {
            name,
            value,
            reason,
        }
    }
}
