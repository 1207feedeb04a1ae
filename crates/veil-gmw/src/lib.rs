//! `veil-gmw`: two-party boolean GMW over veil-circuit's circuits.
//!
//! - [`triples`]: the offline phase, Beaver triples from two random OTs each
//!   (SoftSpokenOT with random choice bits, 7.75 bytes per triple).
//! - [`party`]: the online phase, one round per AND layer with all of a layer's AND gates
//!   batched and bit-packed; single evaluations and batches of up to 64 evaluations at the
//!   rounds of one.
//! - [`online`]: the online phase as a synchronous state machine (messages out, messages in),
//!   which [`party`] drives over a channel and the tests drive with no runtime, their triples
//!   from an ideal dealer.
//! - [`role`]: the two parties as types, [`P0`] and [`P1`]: what differs between them is
//!   fixed by the type a party is created with.
//! - [`bits`]: the packed bit vectors both phases exchange.

pub mod bits;
#[cfg(test)]
mod dealer;
pub mod online;
pub mod party;
pub mod role;
pub mod triples;

pub use party::{GmwError, GmwParty, PartyId, PreparedCircuit, Reveal};
pub use role::{Role, P0, P1};
