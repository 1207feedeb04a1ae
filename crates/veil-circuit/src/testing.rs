//! A backend-independent test suite for circuit evaluators.
//!
//! A backend is any closure `FnMut(&Circuit, &[Vec<bool>]) -> Vec<Vec<bool>>` that evaluates a
//! circuit on input bit vectors, in the clear ([`plaintext`]), garbled, or shared between two
//! GMW parties. [`check_gadgets`] builds every gadget of [`Gadgets`] with the [`Builder`] at
//! the widths asked and compares the backend's answers with `i128`/`u128` arithmetic on edge
//! values (0, 1, the largest unsigned value, the smallest and largest signed values, all their
//! pairs) and on random values; [`check_backends`] runs the same gadgets, once written, on the
//! crate's own backends too ([`Plain`] on every input, [`Cost`] against the built circuit's
//! counts); [`check_sample_circuits`] runs the Bristol Fashion samples of `circuits/`
//! against published known answers (FIPS-197 for AES, FIPS 180-4 for SHA-256) and 64-bit
//! arithmetic. Random values come from a SplitMix64 generator (Steele, Lea and Flood, OOPSLA
//! 2014) seeded by the caller, so runs are reproducible without a dependency.

use std::fmt;
use std::path::Path;

use crate::bits::{bits_from_hex, bits_from_u128, bits_to_hex, mask, sign_extend};
use crate::bristol::read_bristol;
use crate::builder::{Builder, Word};
use crate::circuit::Circuit;
use crate::cost::{Cost, CostBit, CostReport};
use crate::error::CircuitError;
use crate::gadgets::Gadgets;
use crate::plain::Plain;

/// A backend's wrong answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The gadget or circuit, with its width.
    pub case: String,
    /// The input values, in hex.
    pub inputs: Vec<String>,
    /// The expected output values, in hex.
    pub expected: Vec<String>,
    /// The backend's output values, in hex (with their widths when they are wrong).
    pub got: Vec<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: inputs [{}] gave [{}], expected [{}]",
            self.case,
            self.inputs.join(", "),
            self.got.join(", "),
            self.expected.join(", ")
        )
    }
}

/// Why a check failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A sample circuit could not be read.
    #[error(transparent)]
    Circuit(#[from] CircuitError),
    /// The backend computed a wrong answer.
    #[error("{0}")]
    Mismatch(Box<Mismatch>),
}

/// What a check ran.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Circuits built or read.
    pub circuits: usize,
    /// Backend evaluations.
    pub evaluations: usize,
}

/// The plaintext backend: [`Circuit::eval`].
///
/// # Panics
/// If the circuit is malformed or the inputs do not fit it (the suites never do that).
pub fn plaintext(circuit: &Circuit, inputs: &[Vec<bool>]) -> Vec<Vec<bool>> {
    circuit
        .eval(inputs)
        .unwrap_or_else(|e| panic!("plaintext evaluation failed: {e}"))
}

/// SplitMix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform below `n` (`n > 0`; the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn u128(&mut self) -> u128 {
        (u128::from(self.next_u64()) << 64) | u128::from(self.next_u64())
    }

    /// A `width`-bit value: uniform, or of random magnitude, positive or negative.
    fn value(&mut self, width: usize) -> u128 {
        let r = self.u128();
        let small = r & mask(self.below(width + 1));
        match self.below(4) {
            0 | 1 => r & mask(width),
            2 => small,
            _ => small.wrapping_neg() & mask(width),
        }
    }
}

/// 0, 1, the largest unsigned, the smallest and the largest signed value of `width` bits.
fn edges(width: usize) -> Vec<u128> {
    let mut e: Vec<u128> = Vec::new();
    let top = if width == 0 { 0 } else { 1u128 << (width - 1) };
    for v in [0, 1, mask(width), top, top.wrapping_sub(1) & mask(width)] {
        if !e.contains(&(v & mask(width))) {
            e.push(v & mask(width));
        }
    }
    e
}

/// Edge-value input tuples: all combinations for one or two inputs, diagonals for more.
fn edge_tuples(widths: &[usize]) -> Vec<Vec<u128>> {
    let e: Vec<Vec<u128>> = widths.iter().map(|&w| edges(w)).collect();
    match e.as_slice() {
        [] => vec![Vec::new()],
        [a] => a.iter().map(|&x| vec![x]).collect(),
        [a, b] => a
            .iter()
            .flat_map(|&x| b.iter().map(move |&y| vec![x, y]))
            .collect(),
        _ => {
            let m = e.iter().map(Vec::len).max().unwrap_or(0);
            let mut t = Vec::new();
            for i in 0..m {
                t.push(e.iter().map(|v| v[i % v.len()]).collect());
                t.push(
                    e.iter()
                        .enumerate()
                        .map(|(j, v)| v[(i + j) % v.len()])
                        .collect(),
                );
            }
            t
        }
    }
}

struct Runner<F> {
    backend: F,
    rng: Rng,
    samples: usize,
    report: CheckReport,
    /// Whether gadget cases also run on [`Plain`] and [`Cost`].
    backends: bool,
}

impl<F: FnMut(&Circuit, &[Vec<bool>]) -> Vec<Vec<bool>>> Runner<F> {
    /// Runs `circuit` on `inputs` and compares with `expected` (masked to the output widths).
    fn compare(
        &mut self,
        case: &dyn Fn() -> String,
        circuit: &Circuit,
        inputs: &[Vec<bool>],
        expected: &[Vec<bool>],
    ) -> Result<(), CheckError> {
        self.report.evaluations += 1;
        let got = (self.backend)(circuit, inputs);
        if got == expected {
            return Ok(());
        }
        let hex = |values: &[Vec<bool>]| values.iter().map(|v| bits_to_hex(v)).collect();
        Err(CheckError::Mismatch(Box::new(Mismatch {
            case: case(),
            inputs: hex(inputs),
            expected: hex(expected),
            got: got
                .iter()
                .map(|v| format!("{} ({} bits)", bits_to_hex(v), v.len()))
                .collect(),
        })))
    }

    /// Builds a circuit with inputs of `widths` and the outputs of `case`, and checks it
    /// against the case's reference on edge and random inputs; with `backends` set, also runs
    /// the case on [`Plain`] on every input and on [`Cost`] once.
    fn case(
        &mut self,
        name: &str,
        width: usize,
        widths: &[usize],
        case: &Case,
    ) -> Result<(), CheckError> {
        let w2 = second_width(width);
        let mut b = Builder::new();
        let inputs: Vec<Word> = widths.iter().map(|&w| b.input(w)).collect();
        for out in case.build(&mut b, &inputs) {
            b.output(&out);
        }
        let emitted = b.and_count();
        let circuit = b.finish();
        self.report.circuits += 1;
        let label = || format!("{name} at width {width}");
        if self.backends {
            self.check_cost(&label, widths, case, emitted, &circuit)?;
        }
        let out_widths = circuit.output_widths();
        let mut tuples = edge_tuples(widths);
        for _ in 0..self.samples {
            let mut t: Vec<u128> = widths.iter().map(|&w| self.rng.value(w)).collect();
            // Repeat earlier values now and then: equal operands, ties.
            for j in 1..t.len() {
                let i = self.rng.below(j);
                if widths[i] == widths[j] && self.rng.below(3) == 0 {
                    t[j] = t[i];
                }
            }
            tuples.push(t);
        }
        for t in tuples {
            let bits: Vec<Vec<bool>> = t
                .iter()
                .zip(widths)
                .map(|(&v, &w)| bits_from_u128(v, w))
                .collect();
            let expected: Vec<Vec<bool>> = case
                .reference(width, w2, &t)
                .into_iter()
                .zip(&out_widths)
                .map(|(v, &w)| bits_from_u128(v, w))
                .collect();
            self.compare(&label, &circuit, &bits, &expected)?;
            if self.backends {
                self.report.evaluations += 1;
                let got = case.build(&mut Plain, &bits);
                if got != expected {
                    return Err(mismatch(
                        &label,
                        " on the plaintext backend",
                        &bits,
                        &expected,
                        &got,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Runs `case` on the cost counter: its AND count must be the builder's (`emitted`) and the
    /// built circuit's, its AND depth and layers the circuit's.
    fn check_cost(
        &mut self,
        label: &dyn Fn() -> String,
        widths: &[usize],
        case: &Case,
        emitted: usize,
        circuit: &Circuit,
    ) -> Result<(), CheckError> {
        let mut cost = Cost::new();
        let inputs: Vec<Vec<CostBit>> = widths.iter().map(|&w| cost.input(w)).collect();
        for out in case.build(&mut cost, &inputs) {
            cost.output(&out);
        }
        let got = cost.report();
        let built = CostReport::of_circuit(circuit);
        if got != built || got.and_gates != emitted as u64 {
            return Err(CheckError::Mismatch(Box::new(Mismatch {
                case: format!("{} on the cost counter", label()),
                inputs: Vec::new(),
                expected: vec![format!("{built:?}, {emitted} ANDs emitted")],
                got: vec![format!("{got:?}")],
            })));
        }
        Ok(())
    }
}

fn mismatch(
    label: &dyn Fn() -> String,
    on: &str,
    inputs: &[Vec<bool>],
    expected: &[Vec<bool>],
    got: &[Vec<bool>],
) -> CheckError {
    let hex = |values: &[Vec<bool>]| values.iter().map(|v| bits_to_hex(v)).collect();
    CheckError::Mismatch(Box::new(Mismatch {
        case: format!("{}{on}", label()),
        inputs: hex(inputs),
        expected: hex(expected),
        got: got
            .iter()
            .map(|v| format!("{} ({} bits)", bits_to_hex(v), v.len()))
            .collect(),
    }))
}

/// A second width for gadgets with operands of different widths.
fn second_width(w: usize) -> usize {
    1 + (w * 29) % 64
}

/// One circuit of the gadget suite: related gadgets share one, with one output each. The
/// parameters are drawn per width. [`Case::build`] runs on any backend, [`Case::reference`]
/// is the same computation on integers.
enum Case {
    Add,
    Sub,
    Neg,
    AddWithCarry,
    Mul,
    MulUnsignedWide,
    MulSignedWide,
    MulUnsignedSigned,
    Compare,
    MinMax,
    Mux,
    Reduce,
    Bitwise,
    Bits,
    Relu,
    Saturate([usize; 6]),
    Clamp([(i128, i128); 5]),
    Shifts([usize; 6]),
    Extend,
    Constants { k: u128, ks: i128 },
    Sum3,
    SumMixed { wide: usize },
    Dot { bias: i128, acc: usize },
    Argmax,
}

impl Case {
    /// The case's outputs from inputs `v`, on backend `b`.
    fn build<B: Gadgets + ?Sized>(&self, b: &mut B, v: &[Vec<B::Bit>]) -> Vec<Vec<B::Bit>> {
        let w = v[0].len();
        let bits = |b: &mut B, f: &dyn Fn(&mut B) -> Vec<B::Bit>| -> Vec<Vec<B::Bit>> {
            f(b).into_iter().map(|bit| vec![bit]).collect()
        };
        match self {
            Case::Add => vec![b.add(&v[0], &v[1])],
            Case::Sub => vec![b.sub(&v[0], &v[1])],
            Case::Neg => vec![b.neg(&v[0])],
            Case::AddWithCarry => {
                let (sum, carry) = b.add_with_carry(&v[0], &v[1], &v[2][0]);
                vec![sum, vec![carry]]
            }
            Case::Mul => vec![b.mul(&v[0], &v[1])],
            Case::MulUnsignedWide => vec![b.mul_unsigned_wide(&v[0], &v[1])],
            Case::MulSignedWide => vec![b.mul_signed_wide(&v[0], &v[1])],
            Case::MulUnsignedSigned => vec![b.mul_unsigned_signed(&v[0], &v[1])],
            Case::Compare => bits(b, &|b| {
                let (x, y) = (&v[0], &v[1]);
                vec![
                    b.lt_unsigned(x, y),
                    b.lt_signed(x, y),
                    b.le_unsigned(x, y),
                    b.le_signed(x, y),
                    b.gt_unsigned(x, y),
                    b.gt_signed(x, y),
                    b.ge_unsigned(x, y),
                    b.ge_signed(x, y),
                    b.eq(x, y),
                    b.ne(x, y),
                ]
            }),
            Case::MinMax => {
                let (x, y) = (&v[0], &v[1]);
                vec![
                    b.max_signed(x, y),
                    b.max_unsigned(x, y),
                    b.min_signed(x, y),
                    b.min_unsigned(x, y),
                ]
            }
            Case::Mux => vec![b.mux(&v[0][0], &v[1], &v[2])],
            Case::Reduce => bits(b, &|b| {
                let x = &v[0];
                vec![
                    b.is_zero(x),
                    b.and_reduce(x),
                    b.or_reduce(x),
                    b.xor_reduce(x),
                ]
            }),
            Case::Bitwise => {
                let (x, y) = (&v[0], &v[1]);
                vec![
                    b.xor_words(x, y),
                    b.and_words(x, y),
                    b.or_words(x, y),
                    b.not_word(x),
                ]
            }
            Case::Bits => bits(b, &|b| {
                let (x, y, z) = (&v[0][0], &v[1][0], &v[2][0]);
                vec![
                    b.xor(x, y),
                    b.and(x, y),
                    b.or(x, y),
                    b.xnor(x, y),
                    b.not(x),
                    b.mux_bit(x, y, z),
                ]
            }),
            Case::Relu => vec![b.relu(&v[0])],
            Case::Saturate(sat_bits) => sat_bits
                .iter()
                .map(|&k| b.saturate_unsigned(&v[0], k))
                .collect(),
            Case::Clamp(bounds) => bounds
                .iter()
                .map(|&(lo, hi)| b.clamp_signed(&v[0], lo, hi))
                .collect(),
            Case::Shifts(shifts) => {
                let x = &v[0];
                let mut outs = Vec::new();
                for &k in shifts {
                    outs.push(b.shl_const(x, k));
                    outs.push(b.shr_logical_const(x, k));
                    outs.push(b.shr_arith_const(x, k));
                }
                outs
            }
            Case::Extend => vec![
                b.sign_extend(&v[0], w + 5),
                b.zero_extend(&v[0], w + 5),
                b.truncate(&v[0], w.div_ceil(2)),
            ],
            Case::Constants { k, ks } => {
                let c = b.constant(*k, w);
                let cs = b.constant_signed(*ks, w + 2);
                let sum = b.add(&v[0], &c);
                let masked = b.xor_words(&v[0], &c);
                vec![v[0].clone(), c, cs, sum, masked, v[0].clone()]
            }
            Case::Sum3 => vec![b.sum(v)],
            Case::SumMixed { wide } => vec![
                b.sum_unsigned(v, *wide),
                b.sum_unsigned(v, w),
                b.sum_signed(v, *wide),
                b.sum_signed(v, w),
            ],
            Case::Dot { bias, acc } => vec![
                b.dot_unsigned_signed(&v[..3], &v[3..], *bias, *acc),
                b.dot_unsigned_signed(&v[..3], &v[3..], *bias, w),
            ],
            Case::Argmax => vec![b.argmax_signed(v), b.argmax_unsigned(v)],
        }
    }

    /// The case's outputs on integer inputs `x` (masked to the output widths by the caller),
    /// for the width `w` and the second width `w2`.
    fn reference(&self, w: usize, w2: usize, x: &[u128]) -> Vec<u128> {
        let m = mask(w);
        match self {
            Case::Add => vec![x[0].wrapping_add(x[1])],
            Case::Sub => vec![x[0].wrapping_sub(x[1])],
            Case::Neg => vec![x[0].wrapping_neg()],
            Case::AddWithCarry => {
                let t = x[0] + x[1] + x[2];
                vec![t, t >> w]
            }
            Case::Mul => vec![x[0].wrapping_mul(x[1])],
            Case::MulUnsignedWide => vec![x[0] * x[1]],
            Case::MulSignedWide => vec![u(s(x[0], w) * s(x[1], w2))],
            Case::MulUnsignedSigned => vec![u(x[0] as i128 * s(x[1], w2))],
            Case::Compare => {
                let (a, c) = (x[0], x[1]);
                let (sa, sc) = (s(a, w), s(c, w));
                [
                    a < c,
                    sa < sc,
                    a <= c,
                    sa <= sc,
                    a > c,
                    sa > sc,
                    a >= c,
                    sa >= sc,
                    a == c,
                    a != c,
                ]
                .into_iter()
                .map(b)
                .collect()
            }
            Case::MinMax => {
                let (sa, sc) = (s(x[0], w), s(x[1], w));
                vec![u(sa.max(sc)), x[0].max(x[1]), u(sa.min(sc)), x[0].min(x[1])]
            }
            Case::Mux => vec![if x[0] == 1 { x[1] } else { x[2] }],
            Case::Reduce => vec![
                b(x[0] == 0),
                b(x[0] == m),
                b(x[0] != 0),
                u128::from(x[0].count_ones() % 2),
            ],
            Case::Bitwise => vec![x[0] ^ x[1], x[0] & x[1], x[0] | x[1], !x[0]],
            Case::Bits => {
                let (p, q, t) = (x[0], x[1], x[2]);
                vec![
                    p ^ q,
                    p & q,
                    p | q,
                    1 ^ p ^ q,
                    1 ^ p,
                    if p == 1 { q } else { t },
                ]
            }
            Case::Relu => vec![u(s(x[0], w).max(0))],
            Case::Saturate(sat_bits) => sat_bits
                .iter()
                .map(|&k| u(s(x[0], w).clamp(0, mask(k) as i128)))
                .collect(),
            Case::Clamp(bounds) => bounds
                .iter()
                .map(|&(lo, hi)| u(s(x[0], w).clamp(lo, hi)))
                .collect(),
            Case::Shifts(shifts) => {
                let mut outs = Vec::new();
                for &k in shifts {
                    outs.push(if k >= w { 0 } else { x[0] << k });
                    outs.push(if k >= w { 0 } else { x[0] >> k });
                    outs.push(u(s(x[0], w) >> k.min(127)));
                }
                outs
            }
            Case::Extend => vec![u(s(x[0], w)), x[0], x[0]],
            Case::Constants { k, ks } => {
                vec![x[0], *k, u(*ks), x[0].wrapping_add(*k), x[0] ^ k, x[0]]
            }
            Case::Sum3 => vec![x[0].wrapping_add(x[1]).wrapping_add(x[2])],
            Case::SumMixed { .. } => {
                let su = x[0] + x[1] + x[2];
                let ss = u(s(x[0], w) + s(x[1], w2) + s(x[2], 1));
                vec![su, su, ss, ss]
            }
            Case::Dot { bias, .. } => {
                let mut t = u(*bias);
                for i in 0..3 {
                    t = t.wrapping_add(x[i].wrapping_mul(u(s(x[3 + i], w2))));
                }
                vec![t, t]
            }
            Case::Argmax => {
                let signed: Vec<i128> = x.iter().map(|&v| s(v, w)).collect();
                let unsigned: Vec<i128> = x.iter().map(|&v| v as i128).collect();
                vec![first_max(&signed), first_max(&unsigned)]
            }
        }
    }
}

/// Signed value of `v` at width `w`.
fn s(v: u128, w: usize) -> i128 {
    sign_extend(v, w)
}

/// Two's complement of `v` as an integer word.
fn u(v: i128) -> u128 {
    v as u128
}

fn b(v: bool) -> u128 {
    u128::from(v)
}

fn first_max(values: &[i128]) -> u128 {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best as u128
}

/// Checks every [`Builder`] gadget at each of `widths` (each in `1..=64`) on `backend`: the
/// edge values and all their pairs, plus `samples` random input tuples per gadget and width.
/// Each width builds 24 circuits (related gadgets share one circuit, with one output each);
/// at all 64 widths and 8 samples that is 1,536 circuits and about 33,000 evaluations, mostly
/// of small circuits (the plaintext evaluator takes a fraction of a second). Fewer widths or
/// samples make a quick smoke test for an expensive backend.
///
/// # Panics
/// If a width is 0 or above 64.
pub fn check_gadgets<F>(
    backend: F,
    widths: impl IntoIterator<Item = usize>,
    samples: usize,
    seed: u64,
) -> Result<CheckReport, CheckError>
where
    F: FnMut(&Circuit, &[Vec<bool>]) -> Vec<Vec<bool>>,
{
    let mut r = Runner {
        backend,
        rng: Rng(seed),
        samples,
        report: CheckReport::default(),
        backends: false,
    };
    for w in widths {
        assert!(
            (1..=64).contains(&w),
            "check_gadgets: width {w} not in 1..=64"
        );
        check_width(&mut r, w)?;
    }
    Ok(r.report)
}

/// Checks every gadget of [`Gadgets`] on the three backends of the crate, at each of `widths`
/// (each in `1..=64`), on the inputs of [`check_gadgets`]: the [`Builder`]'s circuit evaluated
/// by [`Circuit::eval`] and the [`Plain`] backend must both compute the integer reference, and
/// the [`Cost`] counter, run once per gadget and width, must count the AND gates the builder
/// emits and find the AND depth and AND layers of the built circuit ([`CostReport`]).
///
/// # Panics
/// If a width is 0 or above 64.
pub fn check_backends(
    widths: impl IntoIterator<Item = usize>,
    samples: usize,
    seed: u64,
) -> Result<CheckReport, CheckError> {
    let mut r = Runner {
        backend: plaintext,
        rng: Rng(seed),
        samples,
        report: CheckReport::default(),
        backends: true,
    };
    for w in widths {
        assert!(
            (1..=64).contains(&w),
            "check_backends: width {w} not in 1..=64"
        );
        check_width(&mut r, w)?;
    }
    Ok(r.report)
}

fn check_width<F>(r: &mut Runner<F>, w: usize) -> Result<(), CheckError>
where
    F: FnMut(&Circuit, &[Vec<bool>]) -> Vec<Vec<bool>>,
{
    let w2 = second_width(w);
    let ww = [w, w];

    r.case("add", w, &ww, &Case::Add)?;
    r.case("sub", w, &ww, &Case::Sub)?;
    r.case("neg", w, &[w], &Case::Neg)?;
    r.case("add_with_carry", w, &[w, w, 1], &Case::AddWithCarry)?;
    r.case("mul", w, &ww, &Case::Mul)?;
    r.case("mul_unsigned_wide", w, &[w, w2], &Case::MulUnsignedWide)?;
    r.case("mul_signed_wide", w, &[w, w2], &Case::MulSignedWide)?;
    r.case("mul_unsigned_signed", w, &[w, w2], &Case::MulUnsignedSigned)?;
    r.case(
        "lt_unsigned, lt_signed, le_unsigned, le_signed, gt_unsigned, gt_signed, \
         ge_unsigned, ge_signed, eq, ne",
        w,
        &ww,
        &Case::Compare,
    )?;
    r.case(
        "max_signed, max_unsigned, min_signed, min_unsigned",
        w,
        &ww,
        &Case::MinMax,
    )?;
    r.case("mux", w, &[1, w, w], &Case::Mux)?;
    r.case(
        "is_zero, and_reduce, or_reduce, xor_reduce",
        w,
        &[w],
        &Case::Reduce,
    )?;
    r.case(
        "xor_words, and_words, or_words, not_word",
        w,
        &ww,
        &Case::Bitwise,
    )?;
    r.case(
        "xor, and, or, xnor, not, mux_bit",
        w,
        &[1, 1, 1],
        &Case::Bits,
    )?;
    r.case("relu", w, &[w], &Case::Relu)?;
    let sat_bits = [0, 1, w / 2, w - 1, w, w + 3];
    r.case(
        "saturate_unsigned to 0, 1, w/2, w-1, w, w+3 bits",
        w,
        &[w],
        &Case::Saturate(sat_bits),
    )?;
    let (lo_s, hi_s) = (-(1i128 << (w - 1)), (1i128 << (w - 1)) - 1);
    let (p, q) = (s(r.rng.value(w), w), s(r.rng.value(w), w));
    let bounds = [
        (p.min(q), p.max(q)),
        (lo_s, hi_s),
        (p, p),
        (0, hi_s),
        (lo_s, 0.min(hi_s)),
    ];
    r.case(
        &format!("clamp_signed to {bounds:?}"),
        w,
        &[w],
        &Case::Clamp(bounds),
    )?;
    let shifts = [0, 1, w / 2, w - 1, w, w + 1];
    r.case(
        "shl_const, shr_logical_const, shr_arith_const by 0, 1, w/2, w-1, w, w+1",
        w,
        &[w],
        &Case::Shifts(shifts),
    )?;
    r.case(
        "sign_extend, zero_extend to w+5, truncate to ceil(w/2)",
        w,
        &[w],
        &Case::Extend,
    )?;
    let k = r.rng.value(w);
    let ks = s(r.rng.value(w), w);
    r.case(
        "constants, input and repeated outputs",
        w,
        &[w],
        &Case::Constants { k, ks },
    )?;
    r.case("sum of 3 words", w, &[w, w, w], &Case::Sum3)?;
    let wide = (w.max(w2) + 2).min(128);
    r.case(
        "sum_unsigned, sum_signed of widths w, w2, 1 (wide and wrapping)",
        w,
        &[w, w2, 1],
        &Case::SumMixed { wide },
    )?;
    let bias = s(r.rng.u128(), w + 1);
    let acc = (w + w2 + 2).min(128);
    r.case(
        "dot_unsigned_signed of 3 terms",
        w,
        &[w, w, w, w2, w2, w2],
        &Case::Dot { bias, acc },
    )?;
    let n = 1 + w % 6;
    r.case(
        &format!("argmax_signed, argmax_unsigned of {n} values"),
        w,
        &vec![w; n],
        &Case::Argmax,
    )?;
    Ok(())
}

/// SHA-256 compression function (FIPS 180-4, section 6.2.2) on one 64-byte block.
fn sha256_compress(state: &mut [u32; 8], block: &[u8; 64]) {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut w = [0u32; 64];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([
            block[4 * i],
            block[4 * i + 1],
            block[4 * i + 2],
            block[4 * i + 3],
        ]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let mut v = *state;
    for i in 0..64 {
        let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
        let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
        let t1 = v[7]
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
        let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
        let t2 = s0.wrapping_add(maj);
        v = [
            t1.wrapping_add(t2),
            v[0],
            v[1],
            v[2],
            v[3].wrapping_add(t1),
            v[4],
            v[5],
            v[6],
        ];
    }
    for (h, x) in state.iter_mut().zip(v) {
        *h = h.wrapping_add(x);
    }
}

/// The SHA-256 initial hash value (FIPS 180-4, section 5.3.3).
pub const SHA256_IV: &str = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19";

/// The SHA-256 padding of `message` (FIPS 180-4, section 5.1.1), as hex blocks of 64 bytes:
/// under the crate's convention each block is the big-endian integer of its bytes, the first
/// byte most significant, which is how `sha256.txt` takes its input value 0.
pub fn sha256_padded_blocks(message: &[u8]) -> Vec<String> {
    let mut bytes = message.to_vec();
    bytes.push(0x80);
    while bytes.len() % 64 != 56 {
        bytes.push(0);
    }
    bytes.extend_from_slice(&(8 * message.len() as u64).to_be_bytes());
    bytes
        .chunks(64)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect())
        .collect()
}

/// Runs the Bristol Fashion samples of `dir` (Veil's `circuits/`) on `backend`:
///
/// - `aes_128.txt` (input 0 the key, input 1 the plaintext) on FIPS-197 appendices B and C.1;
/// - `aes_256.txt` (the same order) on FIPS-197 appendix C.3;
/// - `sha256.txt` (input 0 a padded 512-bit block as the big-endian integer of its 64 bytes,
///   input 1 the chaining value `H0 || ... || H7` as a big-endian 256-bit integer, output the
///   new chaining value the same way) on SHA-256 of `abc` and of the two-block FIPS 180-4
///   example, and on `samples` random blocks and chaining values against a reference
///   compression function;
/// - `adder64.txt`, `sub64.txt`, `mult64.txt`, `neg64.txt` and `zero_equal.txt` against `u64`
///   arithmetic on edge values and `samples` random values.
pub fn check_sample_circuits<F>(
    mut backend: F,
    dir: impl AsRef<Path>,
    samples: usize,
    seed: u64,
) -> Result<CheckReport, CheckError>
where
    F: FnMut(&Circuit, &[Vec<bool>]) -> Vec<Vec<bool>>,
{
    let dir = dir.as_ref();
    let mut r = Runner {
        backend: &mut backend,
        rng: Rng(seed),
        samples,
        report: CheckReport::default(),
        backends: false,
    };
    let hex = |h: &str, w: usize| {
        bits_from_hex(h, w).unwrap_or_else(|e| unreachable!("fixed test vector: {e}"))
    };

    let aes128 = read_bristol(dir.join("aes_128.txt"))?;
    let aes256 = read_bristol(dir.join("aes_256.txt"))?;
    r.report.circuits += 2;
    let aes = [
        (
            &aes128,
            "aes_128.txt, FIPS-197 appendix B",
            "2b7e151628aed2a6abf7158809cf4f3c",
            "3243f6a8885a308d313198a2e0370734",
            "3925841d02dc09fbdc118597196a0b32",
        ),
        (
            &aes128,
            "aes_128.txt, FIPS-197 appendix C.1",
            "000102030405060708090a0b0c0d0e0f",
            "00112233445566778899aabbccddeeff",
            "69c4e0d86a7b0430d8cdb78070b4c55a",
        ),
        (
            &aes256,
            "aes_256.txt, FIPS-197 appendix C.3",
            "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
            "00112233445566778899aabbccddeeff",
            "8ea2b7ca516745bfeafc49904b496089",
        ),
    ];
    for (circuit, name, key, plain, cipher) in aes {
        let inputs = [hex(key, key.len() * 4), hex(plain, 128)];
        r.compare(&|| name.to_string(), circuit, &inputs, &[hex(cipher, 128)])?;
    }

    let sha = read_bristol(dir.join("sha256.txt"))?;
    r.report.circuits += 1;
    let kats = [
        (
            "sha256.txt, SHA-256(\"abc\")",
            &b"abc"[..],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            "sha256.txt, SHA-256 of the FIPS 180-4 two-block message",
            &b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"[..],
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
    ];
    for (name, message, digest) in kats {
        let mut state = hex(SHA256_IV, 256);
        for block in sha256_padded_blocks(message) {
            let got = (r.backend)(&sha, &[hex(&block, 512), state]);
            r.report.evaluations += 1;
            state = got.into_iter().next().unwrap_or_default();
        }
        let expected = hex(digest, 256);
        if state != expected {
            return Err(CheckError::Mismatch(Box::new(Mismatch {
                case: name.to_string(),
                inputs: vec![String::from_utf8_lossy(message).into_owned()],
                expected: vec![digest.to_string()],
                got: vec![bits_to_hex(&state)],
            })));
        }
    }
    for _ in 0..samples {
        let mut block = [0u8; 64];
        block.iter_mut().for_each(|b| *b = r.rng.next_u64() as u8);
        let mut state = [0u32; 8];
        state.iter_mut().for_each(|h| *h = r.rng.next_u64() as u32);
        let block_hex: String = block.iter().map(|b| format!("{b:02x}")).collect();
        let state_hex: String = state.iter().map(|h| format!("{h:08x}")).collect();
        sha256_compress(&mut state, &block);
        let out_hex: String = state.iter().map(|h| format!("{h:08x}")).collect();
        r.compare(
            &|| "sha256.txt, random block".to_string(),
            &sha,
            &[hex(&block_hex, 512), hex(&state_hex, 256)],
            &[hex(&out_hex, 256)],
        )?;
    }

    type Op = fn(u64, u64) -> u64;
    let arithmetic: [(&str, usize, Op); 5] = [
        ("adder64.txt", 2, |a, b| a.wrapping_add(b)),
        ("sub64.txt", 2, |a, b| a.wrapping_sub(b)),
        ("mult64.txt", 2, |a, b| a.wrapping_mul(b)),
        ("neg64.txt", 1, |a, _| a.wrapping_neg()),
        ("zero_equal.txt", 1, |a, _| u64::from(a == 0)),
    ];
    for (file, arity, op) in arithmetic {
        let circuit = read_bristol(dir.join(file))?;
        r.report.circuits += 1;
        let widths = vec![64; arity];
        let mut tuples = edge_tuples(&widths);
        for _ in 0..samples {
            tuples.push(widths.iter().map(|&w| r.rng.value(w)).collect());
        }
        for t in tuples {
            let (a, b) = (t[0] as u64, t.get(1).copied().unwrap_or(0) as u64);
            let inputs: Vec<Vec<bool>> = t.iter().map(|&v| bits_from_u128(v, 64)).collect();
            let out_width = circuit.output_bits();
            let expected = [bits_from_u128(u128::from(op(a, b)), out_width)];
            r.compare(&|| file.to_string(), &circuit, &inputs, &expected)?;
        }
    }
    Ok(r.report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex_to_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reference_sha256() {
        let mut state = [0u32; 8];
        for (i, h) in state.iter_mut().enumerate() {
            *h = u32::from_str_radix(&SHA256_IV[8 * i..8 * i + 8], 16).unwrap();
        }
        let block = hex_to_bytes(&sha256_padded_blocks(b"abc")[0]);
        sha256_compress(&mut state, &block.try_into().unwrap());
        assert_eq!(state[0], 0xba7816bf);
        assert_eq!(state[7], 0xf20015ad);
    }

    #[test]
    fn edge_values() {
        assert_eq!(edges(1), vec![0, 1]);
        assert_eq!(edges(2), vec![0, 1, 3, 2]);
        assert_eq!(edges(8), vec![0, 1, 255, 128, 127]);
        assert_eq!(edge_tuples(&[8, 8]).len(), 25);
        assert_eq!(edge_tuples(&[1, 8, 8]).len(), 10);
    }

    #[test]
    fn a_wrong_backend_is_caught() {
        // A backend that flips the lowest output bit of any circuit with two inputs.
        let flip = |c: &Circuit, inputs: &[Vec<bool>]| {
            let mut out = plaintext(c, inputs);
            if inputs.len() == 2 {
                if let Some(bit) = out.first_mut().and_then(|v| v.first_mut()) {
                    *bit = !*bit;
                }
            }
            out
        };
        match check_gadgets(flip, [5], 2, 1) {
            Err(CheckError::Mismatch(m)) => {
                assert_eq!(m.case, "add at width 5");
                assert!(m
                    .to_string()
                    .starts_with("add at width 5: inputs [00, 00] gave [01 (5 bits)]"));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
    }
}
