//! The messages every session starts with, and the requests that follow. Typed, encoded by
//! veil-net (bincode), each one frame.

use serde::{Deserialize, Serialize};
use veil_nn::graph::Architecture;

/// Version of this message set and of the protocols behind it. Version 2: Yao's evaluator
/// labels come from KOS-checked random OT, and HE keys travel in fixed-width encoding.
/// Version 4: [`Request::Prepare`], and Yao's queries name their mode (evaluate now, garble
/// ahead, spend an evaluation garbled ahead).
pub const WIRE_VERSION: u32 = 6;

/// The private-inference protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TFHE: the client encrypts, the server evaluates on ciphertexts.
    He,
    /// Yao garbled circuits: the server garbles, the client evaluates.
    Yao,
    /// GMW: both parties evaluate on XOR shares, with Beaver triples. Semi-honest: served
    /// only to trusted clients (see [`Protocol::requires_trust`]).
    Gmw,
    /// Linear layers on additive shares, activations in garbled circuits. Semi-honest: served
    /// only to trusted clients.
    Mixed,
    /// No protection at all: the client sends its input codes in the clear and the server
    /// answers with its plaintext integer model. INSECURE: a baseline for measurements,
    /// offered only when the server's operator lists it (see [`Protocol::insecure`]).
    Clear,
}

impl Protocol {
    /// Every protocol, in the order of [`crate::registry::REGISTRY`].
    pub const ALL: [Protocol; 5] = [
        Protocol::He,
        Protocol::Yao,
        Protocol::Gmw,
        Protocol::Mixed,
        Protocol::Clear,
    ];

    /// The protocols that protect the client's input and the model: what a server offers by
    /// default ([`Protocol::ALL`] without the insecure ones).
    pub fn secure() -> Vec<Protocol> {
        Protocol::ALL
            .into_iter()
            .filter(|p| !p.insecure())
            .collect()
    }

    /// Whether the protocol is served only to clients the server trusts: GMW and mixed, which
    /// are secure only against a semi-honest client (one that deviates can learn more of the
    /// model than its outputs). HE and Yao are served to any client.
    pub fn requires_trust(self) -> bool {
        crate::registry::get(self).requires_trust()
    }

    /// Whether the protocol protects nothing (`clear`).
    pub fn insecure(self) -> bool {
        crate::registry::get(self).insecure()
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::He => "he",
            Protocol::Yao => "yao",
            Protocol::Gmw => "gmw",
            Protocol::Mixed => "mixed",
            Protocol::Clear => "clear",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Protocol::ALL.iter().map(|p| p.name()).collect();
                format!("unknown protocol {s:?} ({})", names.join(", "))
            })
    }
}

/// Client → server, first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`WIRE_VERSION`].
    pub version: u32,
    /// The protocol the client wants.
    pub protocol: Protocol,
    /// Whether the client asks for the logits as well as the class.
    pub want_logits: bool,
}

/// Server → client, answer to [`Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Welcome {
    /// The session goes on.
    Accepted {
        /// The model's public architecture (sizes, bit widths, shifts).
        architecture: Architecture,
        /// Whether the logits will be revealed (the client asked and the server allows).
        logits: bool,
        /// Inputs this session may have classified ([`crate::budget`]): the session's budget,
        /// or less when the client's budget for the current window leaves less.
        queries: u64,
    },
    /// The server refuses, and says why.
    Refused(String),
}

/// Client → server, after the handshake and after each query.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Classify `count` inputs (GMW evaluates up to 64 per batch; HE and Yao one at a time).
    Query {
        /// Inputs in this query.
        count: u32,
    },
    /// End the session.
    Bye,
    /// Run the offline phase of the next `count` inputs now, before they exist: Yao garbles
    /// that many evaluations ahead (at most [`MAX_AHEAD`] held at once), GMW makes the triples
    /// of up to one batch; HE and `clear` have nothing to prepare and ignore it. The inputs'
    /// queries then spend only their online phase.
    Prepare {
        /// Inputs to prepare for.
        count: u32,
    },
}

/// Most Yao evaluations a session holds garbled ahead ([`Request::Prepare`]).
pub const MAX_AHEAD: u32 = veil_gc::protocol::MAX_AHEAD as u32;

/// Most inputs one query may carry.
pub const MAX_QUERY: u32 = 4096;
