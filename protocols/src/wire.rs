//! The messages every session starts with, and the requests that follow. Typed, encoded by
//! veil-net (bincode), each one frame.

use serde::{Deserialize, Serialize};
use veil_nn::graph::Architecture;

/// Version of this message set and of the protocols behind it. Version 2: Yao's evaluator
/// labels come from KOS-checked random OT, and HE keys travel in fixed-width encoding.
pub const WIRE_VERSION: u32 = 3;

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
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 3] = [Protocol::He, Protocol::Yao, Protocol::Gmw];

    /// Whether the protocol is served only to clients the server trusts: GMW, which is secure
    /// only against a semi-honest client (one that deviates can learn more of the model than
    /// its outputs). HE and Yao are served to any client.
    pub fn requires_trust(self) -> bool {
        matches!(self, Protocol::Gmw)
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::He => "he",
            Protocol::Yao => "yao",
            Protocol::Gmw => "gmw",
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
        match s {
            "he" => Ok(Protocol::He),
            "yao" => Ok(Protocol::Yao),
            "gmw" => Ok(Protocol::Gmw),
            other => Err(format!("unknown protocol {other:?} (he, yao or gmw)")),
        }
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
}

/// Most inputs one query may carry.
pub const MAX_QUERY: u32 = 4096;
