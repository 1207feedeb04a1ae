//! Every inference protocol behind one trait, registered in one place.
//!
//! An [`InferenceProtocol`] is the server's side of a session (after the server has screened
//! the client's hello) and the client's set-up (after the server's welcome), which returns a
//! [`ClientSession`] that classifies inputs. The server, the client, the trust and insecurity
//! checks and `veil bench` dispatch through [`REGISTRY`]; a protocol's name, on the wire and on
//! the command line, is its [`Protocol`] variant. Adding one means its own module, a variant
//! and one line here.
//!
//! The traits return boxed futures so that the registry can hold trait objects: a session's
//! future must be `Send`, since the server runs each session on its own task.

use std::future::Future;
use std::pin::Pin;

use veil_net::Channel;
use veil_nn::compile::{Outputs, Prediction};
use veil_nn::graph::Architecture;

use crate::client::ClientOptions;
use crate::server::Served;
use crate::wire::{Hello, Protocol};
use crate::SessionError;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One two-party inference protocol.
pub trait InferenceProtocol: Sync {
    /// Its name on the wire and on the command line.
    fn protocol(&self) -> Protocol;

    /// One line for people: what the protocol does and against whom it is secure.
    fn summary(&self) -> &'static str;

    /// Whether the server serves it only to clients it trusts (a protocol secure only against
    /// a semi-honest client).
    fn requires_trust(&self) -> bool {
        false
    }

    /// Whether it protects nothing (the client's input travels in the clear): offered only
    /// when the server's operator lists it by name, never by default.
    fn insecure(&self) -> bool {
        false
    }

    /// Whether every answer carries the logits whatever the client asked (HE: the client
    /// decrypts them).
    fn always_reveals_logits(&self) -> bool {
        false
    }

    /// Inputs one query carries at most in one evaluation (GMW's bit lanes); 1 otherwise.
    fn lanes(&self) -> usize {
        1
    }

    /// Whether each query has an offline phase of its own that [`ClientSession::prepare`] can
    /// run ahead (Yao's garbling, the mixed protocol's shared products and garbling), so that
    /// `veil bench` measures it both ahead and on the spot.
    fn offline_per_query(&self) -> bool {
        false
    }

    /// How many of `n` test inputs `veil bench` measures it on: all, unless one costs seconds.
    fn bench_inputs(&self, n: usize) -> usize {
        n
    }

    /// The server's side of a session whose hello the server accepted: its admission (if it
    /// has one), the welcome ([`crate::server::welcome`]), its set-up and every query until
    /// the client says goodbye. Returns the inputs classified.
    fn serve<'a>(
        &'a self,
        ch: &'a mut Channel,
        served: &'a Served,
        hello: &'a Hello,
    ) -> BoxFuture<'a, Result<u64, SessionError>>;

    /// The client's set-up once welcomed, on a model of public `architecture`, with the logits
    /// revealed when `logits`.
    fn connect<'a>(
        &'a self,
        ch: &'a mut Channel,
        architecture: &'a Architecture,
        logits: bool,
        options: &'a ClientOptions,
    ) -> BoxFuture<'a, Result<Box<dyn ClientSession>, SessionError>>;
}

/// A client's side of a session once set up.
pub trait ClientSession: Send {
    /// Classifies a query's inputs (input codes of the architecture's width each), after the
    /// client has announced the query.
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>>;

    /// The offline phase of the next `count` inputs (1 to [`crate::wire::MAX_QUERY`]): the
    /// session announces it ([`crate::wire::Request::Prepare`]) and runs it, or does nothing
    /// and sends nothing when it has nothing to prepare (the default).
    fn prepare<'a>(
        &'a mut self,
        _ch: &'a mut Channel,
        _count: usize,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(async { Ok(()) })
    }
}

/// What a circuit reveals: the class, and the logits when `logits`.
pub(crate) fn outputs(logits: bool) -> Outputs {
    if logits {
        Outputs::ClassAndLogits
    } else {
        Outputs::Class
    }
}

/// Every protocol, in the order the tools list them.
pub static REGISTRY: [&dyn InferenceProtocol; 5] = [
    &crate::he::He,
    &crate::yao::Yao,
    &crate::gmw::Gmw,
    &crate::mixed::Mixed,
    &crate::clear::Clear,
];

/// The registered implementation of `protocol`.
pub fn get(protocol: Protocol) -> &'static dyn InferenceProtocol {
    REGISTRY
        .iter()
        .copied()
        .find(|p| p.protocol() == protocol)
        .expect("every protocol is registered (checked by the registry's tests)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_protocol_is_registered_once() {
        for p in Protocol::ALL {
            let n = REGISTRY.iter().filter(|r| r.protocol() == p).count();
            assert_eq!(n, 1, "{p}");
            assert_eq!(get(p).protocol(), p);
        }
        assert_eq!(REGISTRY.len(), Protocol::ALL.len());
    }
}
