//! The two-party channel every Veil protocol talks through.
//!
//! A [`Channel`] connects two parties, over TCP or in memory, and carries *frames*: a 4-byte
//! little-endian payload length followed by that many payload bytes. Typed messages are encoded
//! with bincode 2 (standard configuration), one message per frame; raw frames carry bulk data such
//! as OT matrices or garbled tables. Every endpoint counts what it sends and receives in
//! [`Stats`]: bytes on the wire, messages, and rounds (flights of consecutive sends).
//!
//! Nothing received from the network can make a channel panic or allocate out of proportion to
//! what was actually received: announced lengths are checked against
//! [`ChannelConfig::max_frame`] before anything is read, payload buffers grow only as bytes
//! arrive, and decoding runs under a limit derived from the frame length. Every receive, send and
//! connect is bounded by a timeout.
//!
//! Below the channel, a [`Transport`] moves whole frames: TCP and in-memory ones ship in
//! [`transport`], with [`Counting`](transport::Counting), a wrapper that counts the traffic of
//! any transport; a transport of one's own plugs in with [`Channel::over`] and no protocol
//! changes.
//!
//! [`Channel::secure_client`] and [`Channel::secure_server`] turn a channel into an
//! authenticated, encrypted one (Noise IK with long-term identity keys, see [`secure`]): every
//! frame after the handshake is sealed, and a tampered frame is an error, never data.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), veil_net::NetError> {
//! use veil_net::{tcp_pair, ChannelConfig};
//!
//! let (mut client, mut server) = tcp_pair(ChannelConfig::default()).await?;
//! client.send(&vec![1u64, 2, 3]).await?;
//! client.flush().await?;
//! let v: Vec<u64> = server.recv().await?;
//! server.send_bytes(&[0xAB; 16]).await?;
//! server.close().await?;
//! assert_eq!(client.recv_bytes().await?, vec![0xAB; 16]);
//! assert!(client.recv_bytes().await.unwrap_err().is_peer_closed());
//! # assert_eq!(v, [1, 2, 3]);
//! # Ok(())
//! # }
//! ```

mod channel;
mod codec;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod link;
pub mod loopback;
pub mod secure;
mod stats;
pub mod transport;

pub use channel::Channel;
pub use config::ChannelConfig;
pub use error::NetError;
pub use link::{Link, LinkProfile};
pub use loopback::{linked_tcp_pair, tcp_pair};
pub use secure::{Identity, KeyError, PublicKey};
pub use stats::Stats;
pub use transport::{Transport, FRAME_HEADER_LEN};
