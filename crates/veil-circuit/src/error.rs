//! The crate's error type.
//!
//! One enum for everything that can go wrong with a circuit, in the `thiserror` style the other
//! Veil crates use. Parse errors carry the 1-based line of the Bristol file they concern;
//! validation and evaluation errors carry the [`Site`] (input, gate or output) that failed.

use std::fmt;

use crate::circuit::WireId;

/// Where in a circuit a validation or evaluation error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// Bit `bit` of input value `value`.
    Input {
        /// Index of the input value.
        value: usize,
        /// Index of the bit within the value.
        bit: usize,
    },
    /// The gate at this index of [`crate::Circuit::gates`].
    Gate(usize),
    /// Bit `bit` of output value `value`.
    Output {
        /// Index of the output value.
        value: usize,
        /// Index of the bit within the value.
        bit: usize,
    },
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Site::Input { value, bit } => write!(f, "input value {value} bit {bit}"),
            Site::Gate(g) => write!(f, "gate {g}"),
            Site::Output { value, bit } => write!(f, "output value {value} bit {bit}"),
        }
    }
}

/// Everything that can go wrong when reading, checking or evaluating a circuit.
#[derive(Debug, thiserror::Error)]
pub enum CircuitError {
    /// A Bristol Fashion file is malformed; `line` is 1-based.
    #[error("line {line}: {reason}")]
    Parse {
        /// The offending line (1-based; one past the last line for a truncated file).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A circuit file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The number of input values given to an evaluator differs from the circuit's.
    #[error("the circuit takes {expected} input values, {got} were given")]
    InputCount {
        /// Input values of the circuit.
        expected: usize,
        /// Input values given.
        got: usize,
    },
    /// An input value given to an evaluator has the wrong width.
    #[error("input value {index} has {expected} bits in the circuit, {got} were given")]
    InputWidth {
        /// Index of the input value.
        index: usize,
        /// Its width in the circuit.
        expected: usize,
        /// The width given.
        got: usize,
    },
    /// A wire index is not below [`crate::Circuit::num_wires`].
    #[error("{site}: wire {wire} is beyond the {num_wires} wires of the circuit")]
    WireOutOfRange {
        /// Where the wire is used.
        site: Site,
        /// The wire.
        wire: WireId,
        /// The circuit's wire count.
        num_wires: u32,
    },
    /// A wire is written twice (by two gates, two input bits, or an input bit and a gate).
    #[error("{site}: wire {wire} is written a second time")]
    WrittenTwice {
        /// The second writer.
        site: Site,
        /// The wire.
        wire: WireId,
    },
    /// A gate or output reads a wire that no input or earlier gate writes.
    #[error("{site}: wire {wire} is read before it is written")]
    ReadBeforeWrite {
        /// The reader.
        site: Site,
        /// The wire.
        wire: WireId,
    },
    /// A value is wider than the 128 bits of an integer word.
    #[error("a value of {width} bits does not fit in 128 bits")]
    TooWide {
        /// The value's width.
        width: usize,
    },
    /// A hex string is malformed or does not fit its width.
    #[error("invalid hex value: {reason}")]
    Hex {
        /// What is wrong with it.
        reason: String,
    },
}
