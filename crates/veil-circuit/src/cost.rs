//! The cost counter: AND gates, AND depth and protocol bytes of a computation, without building
//! its circuit.
//!
//! [`Cost`] is a [`BoolBackend`] whose bits record only what the cost depends on: whether they
//! are public constants, their AND depth, and an identity that lets it fold `x ^ x = 0`,
//! `x & x = x`, `x ^ !x = 1`, `x & !x = 0` and `!!x = x` exactly as the
//! [`Builder`](crate::Builder) does (a bit is a class of equal-or-complementary values and a
//! polarity, which is how the builder pairs a wire with its remembered inverse). So a gadget
//! run on the counter counts the AND gates the builder emits for it, and the AND depth the
//! built circuit has, in memory proportional to the number of AND layers rather than of gates:
//! a model too large to build can still be costed.
//!
//! The depth is the multiplicative depth of [`crate::circuit`]: an AND is one above the deeper
//! of its operands, anything else as deep as its deepest operand. A [`CostReport`] turns the
//! counts into bytes for Veil's protocols, under their cost model: half-gates garbling
//! (Zahur, Rosulek and Evans, Eurocrypt 2015) sends two 16-byte ciphertexts per AND gate; GMW
//! (the two-party boolean form of ABY, Demmler, Schneider and Zohner, NDSS 2015, section III-B,
//! as `veil-gmw` runs it) uses one Beaver triple per AND gate, made from two SoftSpokenOT
//! random OTs with random choice bits of 31 bits each (7.75 bytes per triple; IKNP's were 16
//! bytes each), and opens two bits per AND gate and party in one round per AND layer, each
//! layer's bits packed into bytes.
//!
//! The counter is also an [`ArithBackend`](crate::backend::ArithBackend) (see [`crate::ring`]):
//! it costs ring arithmetic done with the boolean gadgets.

use crate::backend::BoolBackend;
use crate::circuit::Circuit;

/// A bit of the cost counter: a public constant, or a secret value with its AND depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CostBit(Repr);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Repr {
    Const(bool),
    /// Values of one class are equal (same polarity) or complementary.
    Var {
        class: u64,
        inverted: bool,
        depth: u32,
    },
}

impl CostBit {
    /// The AND depth of the bit (0 for constants and inputs).
    pub fn depth(self) -> u32 {
        match self.0 {
            Repr::Const(_) => 0,
            Repr::Var { depth, .. } => depth,
        }
    }
}

/// The cost counter; see the module documentation.
///
/// ```
/// use veil_circuit::cost::Cost;
/// use veil_circuit::gadgets::Gadgets;
///
/// let mut c = Cost::new();
/// let x = c.input(64);
/// let y = c.input(64);
/// let p = c.mul(&x, &y);
/// c.output(&p);
/// assert_eq!(c.and_count(), 4033);
/// assert_eq!(c.report().half_gates_bytes(), 32 * 4033);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Cost {
    next_class: u64,
    /// `ands[d]`: AND gates of depth `d + 1`.
    ands: Vec<u64>,
    output_depth: u32,
}

impl Cost {
    /// A counter with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&mut self, depth: u32) -> CostBit {
        let class = self.next_class;
        self.next_class += 1;
        CostBit(Repr::Var {
            class,
            inverted: false,
            depth,
        })
    }

    /// A new secret input value of `width` bits, at depth 0.
    pub fn input(&mut self, width: usize) -> Vec<CostBit> {
        (0..width).map(|_| self.fresh(0)).collect()
    }

    /// Declares `word` as an output: the AND depth is the deepest output bit's.
    pub fn output(&mut self, word: &[CostBit]) {
        for b in word {
            self.output_depth = self.output_depth.max(b.depth());
        }
    }

    /// AND gates counted so far.
    pub fn and_count(&self) -> u64 {
        self.ands.iter().sum()
    }

    /// The AND depth of the outputs declared so far.
    pub fn and_depth(&self) -> u32 {
        self.output_depth
    }

    /// The counts so far.
    pub fn report(&self) -> CostReport {
        CostReport {
            and_gates: self.and_count(),
            and_depth: self.output_depth,
            ands_per_layer: self.ands.clone(),
        }
    }
}

impl BoolBackend for Cost {
    type Bit = CostBit;

    fn constant_bit(&self, value: bool) -> CostBit {
        CostBit(Repr::Const(value))
    }

    fn as_constant(&self, bit: &CostBit) -> Option<bool> {
        match bit.0 {
            Repr::Const(c) => Some(c),
            Repr::Var { .. } => None,
        }
    }

    fn xor(&mut self, a: &CostBit, b: &CostBit) -> CostBit {
        match (a.0, b.0) {
            (Repr::Const(x), Repr::Const(y)) => CostBit(Repr::Const(x ^ y)),
            (Repr::Const(false), _) => *b,
            (_, Repr::Const(false)) => *a,
            (Repr::Const(true), _) => self.not(b),
            (_, Repr::Const(true)) => self.not(a),
            (
                Repr::Var {
                    class: ca,
                    inverted: ia,
                    depth: da,
                },
                Repr::Var {
                    class: cb,
                    inverted: ib,
                    depth: db,
                },
            ) => {
                if ca == cb {
                    CostBit(Repr::Const(ia != ib))
                } else {
                    self.fresh(da.max(db))
                }
            }
        }
    }

    fn and(&mut self, a: &CostBit, b: &CostBit) -> CostBit {
        match (a.0, b.0) {
            (Repr::Const(x), Repr::Const(y)) => CostBit(Repr::Const(x & y)),
            (Repr::Const(false), _) | (_, Repr::Const(false)) => CostBit(Repr::Const(false)),
            (Repr::Const(true), _) => *b,
            (_, Repr::Const(true)) => *a,
            (
                Repr::Var {
                    class: ca,
                    inverted: ia,
                    depth: da,
                },
                Repr::Var {
                    class: cb,
                    inverted: ib,
                    depth: db,
                },
            ) => {
                if ca == cb {
                    if ia == ib {
                        *a
                    } else {
                        CostBit(Repr::Const(false))
                    }
                } else {
                    let depth = da.max(db) + 1;
                    let layer = depth as usize - 1;
                    if self.ands.len() <= layer {
                        self.ands.resize(layer + 1, 0);
                    }
                    self.ands[layer] += 1;
                    self.fresh(depth)
                }
            }
        }
    }

    fn not(&mut self, a: &CostBit) -> CostBit {
        CostBit(match a.0 {
            Repr::Const(c) => Repr::Const(!c),
            Repr::Var {
                class,
                inverted,
                depth,
            } => Repr::Var {
                class,
                inverted: !inverted,
                depth,
            },
        })
    }
}

/// AND gates and AND depth of a computation, and what they cost in Veil's protocols (see the
/// module documentation for the cost model).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CostReport {
    /// AND gates.
    pub and_gates: u64,
    /// The AND depth of the outputs.
    pub and_depth: u32,
    /// `ands_per_layer[d]`: the AND gates of AND depth `d + 1` (GMW's layer `d + 1`).
    pub ands_per_layer: Vec<u64>,
}

/// Bytes of one garbled AND gate: two 16-byte ciphertexts (half gates).
pub const HALF_GATES_BYTES_PER_AND: u64 = 32;
/// Bits of one GMW Beaver triple on the wire: two SoftSpokenOT (`k = 4`) random OTs with
/// random choice bits, 31 bits each.
pub const GMW_TRIPLE_BITS: u64 = 62;

impl CostReport {
    /// The report of a compiled circuit: its AND gates, its AND depth over the outputs
    /// ([`crate::CircuitStats::and_depth`]) and its AND layers ([`Circuit::layers`]).
    pub fn of_circuit(circuit: &Circuit) -> CostReport {
        let ands_per_layer = circuit
            .layers()
            .iter()
            .skip(1)
            .map(|l| l.and_gates.len() as u64)
            .collect();
        let stats = circuit.stats();
        CostReport {
            and_gates: stats.and_count as u64,
            and_depth: stats.and_depth,
            ands_per_layer,
        }
    }

    /// Garbled-table bytes of half-gates garbling, sent by the garbler.
    pub fn half_gates_bytes(&self) -> u64 {
        HALF_GATES_BYTES_PER_AND * self.and_gates
    }

    /// Offline bytes of GMW on `lanes` lanes, both directions: one triple per AND gate and lane.
    pub fn gmw_triple_bytes(&self, lanes: u64) -> u64 {
        (GMW_TRIPLE_BITS * self.and_gates * lanes).div_ceil(8)
    }

    /// Online bytes of GMW's AND layers on `lanes` lanes, both parties together: each party
    /// sends the `(d, e)` bits of every AND gate and lane of a layer, packed into
    /// `ceil(2 n lanes / 8)` bytes. (Input sharing and output opening come on top.)
    pub fn gmw_layer_bytes(&self, lanes: u64) -> u64 {
        self.ands_per_layer
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| 2 * (2 * n * lanes).div_ceil(8))
            .sum()
    }

    /// GMW's rounds for the AND layers: one per layer with AND gates.
    pub fn gmw_rounds(&self) -> usize {
        self.ands_per_layer.iter().filter(|&&n| n > 0).count()
    }
}
