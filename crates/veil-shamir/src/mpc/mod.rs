//! Honest-majority n-party arithmetic (BGW) over `GF(2^61 - 1)`, between parties connected by
//! a full mesh of [`veil_net::Channel`]s.
//!
//! Ben-Or, Goldwasser and Wigderson, STOC 1988, section 4, with the degree reduction of
//! Gennaro, Rabin and Rabin, PODC 1998, section 3; shares are Shamir's (1979).
//!
//! - [`mesh`]: connecting `n` parties (TCP with a validated hello, or in memory).
//! - [`party`]: [`Party`] and its operations: [`Party::input`], [`Party::add`],
//!   [`Party::mul_public`], [`Party::mul`] (batched, one round), [`Party::inner_products`] and
//!   [`Party::matvec`] (one degree reduction per inner product), [`Party::open`] and
//!   [`Party::open_to`], with per-operation communication in [`Party::op_log`].
//! - [`core`]: the same operations as a synchronous core, [`Bgw`]: each communicating
//!   operation a start (the round's messages) and a finish (the result from the peers'
//!   messages), which [`Party`] drives over its channels and the tests drive in memory.
//! - [`fixed`]: signed fixed-point encoding.
//! - [`linear`]: the private linear layer `y = W·x + b`, its plaintext twin, and
//!   [`run_party`] for running one party of the demo in its own process.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), veil_shamir::MpcError> {
//! use veil_net::ChannelConfig;
//! use veil_shamir::mpc::{linear_layer, linear_layer_plain, LinearInput, LinearLayerSpec, Party};
//!
//! let spec = LinearLayerSpec { client: 0, owner: 1 };
//! let (w, x, b) = (vec![1, -2, 3, 4], vec![5, 6], vec![7, -8]);
//! let inputs = [
//!     LinearInput::Client { x: x.clone() },
//!     LinearInput::Owner { weights: w.clone(), bias: b.clone() },
//!     LinearInput::Helper,
//! ];
//! let parties = Party::memory_mesh(3, 1, ChannelConfig::default(), None)?;
//! let mut tasks = Vec::new();
//! for (mut p, input) in parties.into_iter().zip(inputs) {
//!     tasks.push(tokio::spawn(async move { linear_layer(&mut p, spec, &input).await }));
//! }
//! let y = tasks.remove(0).await.unwrap()?.unwrap();
//! assert_eq!(y, linear_layer_plain(&w, &x, &b)?);
//! # for t in tasks { t.await.unwrap()?; }
//! # Ok(())
//! # }
//! ```

pub mod core;
pub mod fixed;
pub mod linear;
pub mod mesh;
pub mod party;
mod wire;

pub use self::core::Bgw;
pub use fixed::{decode_int, encode_int, encode_ints, FixedPoint};
pub use linear::{
    linear_layer, linear_layer_plain, loopback_addresses, run_party, LinearInput, LinearLayerSpec,
    PartyOutput,
};
pub use mesh::{establish, establish_with_listener, local_tcp_mesh, Hello};
pub use party::{
    MeshSecurity, OpRecord, Party, PartyConfig, SharedVec, MAX_INPUT_LEN, MAX_PARTIES,
};
/// The channel configuration (frame limit and timeouts), re-exported from `veil-net`.
pub use veil_net::ChannelConfig;
