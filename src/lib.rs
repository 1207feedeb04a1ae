//! Veil: private machine-learning inference.
//!
//! This facade re-exports the layers of the workspace so that a service can depend on one
//! crate. The README gives the tour of the layers.

pub use veil_circuit as circuit;
pub use veil_dp as dp;
pub use veil_fhe as fhe;
pub use veil_gc as gc;
pub use veil_gmw as gmw;
pub use veil_net as net;
pub use veil_nn as nn;
pub use veil_ot as ot;
pub use veil_protocols as protocols;
pub use veil_shamir as shamir;
