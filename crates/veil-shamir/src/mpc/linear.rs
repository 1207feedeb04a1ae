//! A private fixed-point linear layer `y = W·x + b` between a client (holding `x`) and a model
//! owner (holding `W` and `b`), computed by all `n` parties with BGW (Ben-Or, Goldwasser and
//! Wigderson 1988, section 4) and opened to the client only; and its plaintext twin.
//!
//! Flow: the client shares `x` (length `k`, which fixes the column count); the owner shares `b`
//! (length `m`, the row count) and then `W` (`m · k` elements, row-major; every party checks the
//! length); all parties compute the `m` inner products with one degree reduction each
//! (Gennaro, Rabin and Rabin 1998), add `[b]`, and open `y` to the client.
//!
//! Values are integers already at their fixed-point scale ([`crate::mpc::fixed`]): with `W` and
//! `x` at `f` fractional bits, `b` must be at `2f` bits and `y` comes out at `2f` bits. Nothing
//! is truncated, so the result equals [`linear_layer_plain`] exactly whenever every `|y_j|` is at
//! most `(p-1)/2`; the plaintext twin reports an overflow otherwise.

use std::net::SocketAddr;

use veil_net::Stats;

use crate::error::MpcError;
use crate::field::M61;
use crate::mpc::fixed::{decode_int, encode_ints, MAX_MAGNITUDE};
use crate::mpc::mesh;
use crate::mpc::party::{OpRecord, Party, PartyConfig};

/// Who plays which role in the linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearLayerSpec {
    /// Index of the party holding `x` and learning `y`.
    pub client: usize,
    /// Index of the party holding `W` and `b`.
    pub owner: usize,
}

/// This party's private input to the linear layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinearInput {
    /// The client's vector `x`.
    Client {
        /// Input vector (`k` integers).
        x: Vec<i64>,
    },
    /// The model owner's weights and bias.
    Owner {
        /// `W` row-major, `bias.len() × k` integers.
        weights: Vec<i64>,
        /// `b`, one integer per row, at the product scale.
        bias: Vec<i64>,
    },
    /// Both roles at once (the client is also the owner).
    ClientAndOwner {
        /// Input vector.
        x: Vec<i64>,
        /// Weights, row-major.
        weights: Vec<i64>,
        /// Bias.
        bias: Vec<i64>,
    },
    /// A party with no input that helps compute.
    Helper,
}

/// `y = W·x + b` in exact integer arithmetic, `W` row-major with `bias.len()` rows.
///
/// # Errors
///
/// [`MpcError::InvalidArgument`] if `weights.len() != bias.len() · x.len()`,
/// [`MpcError::Overflow`] if an input or output exceeds `±(p-1)/2`.
pub fn linear_layer_plain(weights: &[i64], x: &[i64], bias: &[i64]) -> Result<Vec<i64>, MpcError> {
    let (rows, cols) = (bias.len(), x.len());
    if rows.checked_mul(cols) != Some(weights.len()) {
        return Err(MpcError::InvalidArgument(format!(
            "{} weights for {rows} rows and {cols} columns",
            weights.len()
        )));
    }
    for v in weights.iter().chain(x).chain(bias) {
        if v.unsigned_abs() > MAX_MAGNITUDE as u64 {
            return Err(MpcError::Overflow(format!("input {v}")));
        }
    }
    (0..rows)
        .map(|r| {
            let row = &weights[r * cols..(r + 1) * cols];
            let acc = row.iter().zip(x).fold(i128::from(bias[r]), |a, (w, v)| {
                a + i128::from(*w) * i128::from(*v)
            });
            if acc.unsigned_abs() > MAX_MAGNITUDE as u128 {
                return Err(MpcError::Overflow(format!("output {r} is {acc}")));
            }
            Ok(acc as i64)
        })
        .collect()
}

/// Runs the linear layer at `party`; returns `Some(y)` at the client, `None` elsewhere.
///
/// # Errors
///
/// [`MpcError::InvalidArgument`] if `input` does not match this party's role in `spec`, or the
/// owner's weights do not have `bias.len() × x.len()` entries (detected after sharing, so every
/// party reports it), [`MpcError::Overflow`] for out-of-range inputs (at the party holding them;
/// the others then fail with a channel error when it stops), and channel or message errors.
pub async fn linear_layer(
    party: &mut Party,
    spec: LinearLayerSpec,
    input: &LinearInput,
) -> Result<Option<Vec<i64>>, MpcError> {
    let me = party.index();
    if spec.client >= party.parties() || spec.owner >= party.parties() {
        return Err(MpcError::InvalidArgument("role index out of range".into()));
    }
    type Parts<'a> = (Option<&'a [i64]>, Option<&'a [i64]>, Option<&'a [i64]>);
    let (x, w, b): Parts<'_> = match input {
        LinearInput::Client { x } => (Some(x), None, None),
        LinearInput::Owner { weights, bias } => (None, Some(weights), Some(bias)),
        LinearInput::ClientAndOwner { x, weights, bias } => (Some(x), Some(weights), Some(bias)),
        LinearInput::Helper => (None, None, None),
    };
    if x.is_some() != (me == spec.client) || w.is_some() != (me == spec.owner) {
        return Err(MpcError::InvalidArgument(format!(
            "party {me}'s input does not match its role (client {}, owner {})",
            spec.client, spec.owner
        )));
    }
    let x_enc = x.map(encode_ints).transpose()?;
    let w_enc = w.map(encode_ints).transpose()?;
    let b_enc = b.map(encode_ints).transpose()?;
    let xs = party.input(spec.client, x_enc.as_deref()).await?;
    let bs = party.input(spec.owner, b_enc.as_deref()).await?;
    let ws = party.input(spec.owner, w_enc.as_deref()).await?;
    let y = party.matvec(&ws, bs.len(), &xs).await?;
    let y = party.add(&y, &bs)?;
    let opened: Option<Vec<M61>> = party.open_to(&y, spec.client).await?;
    Ok(opened.map(|v| v.into_iter().map(decode_int).collect()))
}

/// What [`run_party`] returns.
#[derive(Clone, Debug)]
pub struct PartyOutput {
    /// `y` at the client, `None` at every other party.
    pub output: Option<Vec<i64>>,
    /// This party's channel counters, summed over its peers.
    pub stats: Stats,
    /// Per-operation communication.
    pub ops: Vec<OpRecord>,
}

/// Runs one party of the linear-layer demo end to end: binds `config.parties[config.index]`,
/// sets up the mesh, computes the layer, and closes the session.
///
/// # Errors
///
/// Those of [`mesh::establish`], [`linear_layer`] and [`Party::finish`].
pub async fn run_party(
    config: PartyConfig,
    spec: LinearLayerSpec,
    input: LinearInput,
) -> Result<PartyOutput, MpcError> {
    let mut party = mesh::establish(config).await?;
    let output = linear_layer(&mut party, spec, &input).await?;
    let stats = party.stats();
    let ops = party.op_log().to_vec();
    party.finish().await?;
    Ok(PartyOutput { output, stats, ops })
}

/// Loopback addresses `127.0.0.1:base_port + i` for `n` parties (for the multi-process demo).
pub fn loopback_addresses(n: usize, base_port: u16) -> Vec<SocketAddr> {
    (0..n)
        .map(|i| ([127, 0, 0, 1], base_port.wrapping_add(i as u16)).into())
        .collect()
}
