//! Serialisable results, for JSON output by the command-line tools.

use serde::Serialize;

/// An epsilon for a given delta, as a CLI prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpsilonReport {
    /// The epsilon (`+inf` when no finite bound exists).
    pub epsilon: f64,
    /// The delta it holds for.
    pub delta: f64,
    /// The optimal RDP order (RDP accountant only).
    pub order: Option<f64>,
    /// `"rdp"` or `"pld"`.
    pub accountant: String,
}
