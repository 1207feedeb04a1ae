//! `veil-protocols`: two-party private inference of a veil-nn model over veil-net, by three
//! protocols (and an insecure baseline), with one server that speaks all of them and one
//! client per protocol.
//!
//! - **HE** ([`he`], `he/SPEC.md`): the client sends its TFHE evaluation key once per session,
//!   then encrypted inputs; the server evaluates with veil-fhe and returns encrypted logits.
//! - **Yao** ([`yao`], `yao/SPEC.md`): the model compiled to a circuit whose weights are the
//!   server's private input; the server garbles, the client evaluates with input labels from
//!   OT and learns the class (and the logits if asked and allowed).
//! - **GMW** ([`gmw`], `gmw/SPEC.md`): the same circuit under GMW, triples made before the
//!   query, up to 64 inputs per batch at the rounds of one.
//! - **mixed** ([`mixed`], `mixed/SPEC.md`): the linear layers on additive shares (their
//!   offline products by OT), the activations and the argmax in garbled circuits; semi-honest,
//!   trusted clients only.
//! - **clear** ([`clear`], `clear/SPEC.md`): INSECURE, the input in the clear and the plaintext
//!   model's answer; a baseline for measurements, offered only when the server lists it.
//!
//! Every protocol implements [`registry::InferenceProtocol`] and is registered in
//! [`registry::REGISTRY`], which the server, the client and the command line iterate.
//!
//! Every session is encrypted and authenticated by default: the Noise IK handshake of
//! `veil_net::secure`, in which the client pins the server's public key and the server may keep
//! an allow-list of client keys ([`ServerSecurity`], [`ClientSecurity`]); plaintext is an
//! explicit opt-in for measurements. Every session then opens with the same exchange ([`wire`]): the client's [`wire::Hello`]
//! names the protocol, the server's [`wire::Welcome`] gives the model's public architecture.
//! [`server::serve`] accepts any number of clients, one task each, each session under a
//! timeout; [`client::Client`] is the library API behind `veil infer`.

pub mod budget;
pub mod clear;
pub mod client;
pub mod gmw;
pub mod he;
pub mod mixed;
pub mod registry;
pub mod server;
pub mod wire;
pub mod yao;

pub use client::{Client, ClientOptions, ClientSecurity, Prediction};
pub use server::{accept, serve, Served, ServerConfig, ServerSecurity, SessionSummary};
pub use wire::Protocol;

use veil_net::NetError;

/// Why a session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The channel failed (peer closed, timeout, malformed frame).
    #[error("channel: {0}")]
    Net(#[from] NetError),
    /// The garbled-circuit protocol failed.
    #[error("yao: {0}")]
    Yao(#[from] veil_gc::GcError),
    /// The GMW protocol failed.
    #[error("gmw: {0}")]
    Gmw(#[from] veil_gmw::GmwError),
    /// Encrypted evaluation failed.
    #[error("he: {0}")]
    He(#[from] veil_fhe::FheError),
    /// The model could not be compiled or its inputs encoded.
    #[error("model: {0}")]
    Model(#[from] veil_nn::compile::CompileError),
    /// The server refused the session.
    #[error("the server refused: {0}")]
    Refused(String),
    /// The peer broke the protocol.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The shared products of the mixed protocol failed.
    #[error("shared product: {0}")]
    Arith(veil_arith::ArithError),
    /// The caller's request cannot be served.
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl From<veil_arith::ArithError> for SessionError {
    fn from(e: veil_arith::ArithError) -> SessionError {
        match e {
            veil_arith::ArithError::Net(e) => SessionError::Net(e),
            other => SessionError::Arith(other),
        }
    }
}
