//! Veil's measurement and evaluation harness, as a library that any program can call.
//!
//! - [`stats`]: the one place where medians, percentiles and accuracies are computed.
//! - [`bench`](mod@bench): what `veil bench` measures (oblivious transfer, garbled circuits, GMW, and
//!   every inference protocol side by side), with its report types.
//! - [`client`]: a private-inference client run over a set of images against a server, with
//!   accuracy, agreement with the plaintext model, latency and traffic.
//! - [`server`]: a server for a model, its security settings, and identity files.
//! - [`fhe`]: TFHE inference with the client and the server in one process, over a test split.
//! - [`data`]: datasets, image and CSV inputs, fitted to a model's input shape.
//! - [`models`]: loading and importing models, and their accuracy on a test split.
//! - [`circuits`]: Bristol Fashion circuits evaluated in the clear or by two parties.
//! - [`shamir`]: threshold custody of files and the n-party BGW linear-layer demo.
//! - [`progress`]: how long-running functions report progress to their caller.
//! - [`machine`]: the processor a report was measured on (model name, AES path).
//!
//! Library code never prints: what a caller wants shown comes back in return values or
//! through a [`progress::Progress`] it passes in. Diagnostics go through `tracing`.
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let report = veil_harness::bench::gc(3, &mut ())?;
//! println!("{:.1} M AND/s garbled", report.garble_and_per_s / 1e6);
//! # Ok(())
//! # }
//! ```

pub mod audit;
pub mod bench;
pub mod circuits;
pub mod client;
pub mod data;
pub mod fhe;
pub mod machine;
pub mod models;
pub mod progress;
pub mod server;
pub mod shamir;
pub mod stats;

mod runtime;

pub use progress::Progress;
pub use veil_net::link;
pub use veil_net::PublicKey;
pub use veil_protocols::budget;
pub use veil_protocols::Protocol;
