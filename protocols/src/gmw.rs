//! The GMW session: the compiled model evaluated on XOR shares, up to 64 inputs per batch
//! (one per bit lane), triples made ahead of the query. See `gmw/SPEC.md`.

use veil_gmw::{GmwParty, PartyId, PreparedCircuit, Reveal};
use veil_net::Channel;
use veil_nn::compile::{CompiledModel, Prediction};

use crate::SessionError;

/// Inputs per batch: one per bit of a machine word.
pub const LANES: usize = 64;

fn owners(compiled: &CompiledModel) -> Vec<PartyId> {
    compiled
        .server_owned()
        .into_iter()
        .map(|s| if s { PartyId::P0 } else { PartyId::P1 })
        .collect()
}

/// The compiled model's circuit made ready for every batch of a session: the model's bits are
/// party 0's inputs, the client's codes party 1's, the output party 1's.
pub fn prepare(compiled: &CompiledModel) -> Result<PreparedCircuit, SessionError> {
    Ok(PreparedCircuit::new(
        &compiled.circuit,
        &owners(compiled),
        Reveal::P1,
    )?)
}

/// AND gates of one batch, the triples a batch of `lanes` inputs uses.
pub fn triples_for(prepared: &PreparedCircuit, lanes: usize) -> usize {
    prepared.and_gates() * lanes
}

/// Server side of one batch of `lanes` inputs: the model's bits in every lane.
pub async fn serve_batch(
    ch: &mut Channel,
    party: &mut GmwParty,
    prepared: &PreparedCircuit,
    server_inputs: &[Vec<bool>],
    lanes: usize,
) -> Result<(), SessionError> {
    let mask = if lanes == 64 {
        u64::MAX
    } else {
        (1u64 << lanes) - 1
    };
    let words: Vec<Vec<u64>> = server_inputs
        .iter()
        .map(|v| v.iter().map(|&b| if b { mask } else { 0 }).collect())
        .collect();
    party
        .run_batch_prepared(ch, prepared, &words, lanes)
        .await?;
    Ok(())
}

/// Client side of one batch: each input in its own lane.
pub async fn query_batch(
    ch: &mut Channel,
    party: &mut GmwParty,
    compiled: &CompiledModel,
    prepared: &PreparedCircuit,
    inputs: &[Vec<u8>],
) -> Result<Vec<Prediction>, SessionError> {
    let lanes = inputs.len();
    if lanes == 0 || lanes > LANES {
        return Err(SessionError::Invalid(format!(
            "{lanes} inputs in one batch (1 to 64)"
        )));
    }
    let per_input: Vec<Vec<Vec<bool>>> = inputs
        .iter()
        .map(|c| compiled.client_inputs(c))
        .collect::<Result<_, _>>()?;
    // Bit-slice: value v, bit i, lane k.
    let words: Vec<Vec<u64>> = (0..per_input[0].len())
        .map(|v| {
            (0..per_input[0][v].len())
                .map(|i| {
                    per_input
                        .iter()
                        .enumerate()
                        .fold(0u64, |w, (k, inp)| w | (u64::from(inp[v][i]) << k))
                })
                .collect()
        })
        .collect();
    let out = party
        .run_batch_prepared(ch, prepared, &words, lanes)
        .await?
        .ok_or_else(|| SessionError::Protocol("no output for the client".into()))?;
    (0..lanes)
        .map(|k| {
            let bits: Vec<Vec<bool>> = out
                .iter()
                .map(|value| value.iter().map(|w| (w >> k) & 1 == 1).collect())
                .collect();
            Ok(compiled.decode(&bits)?)
        })
        .collect()
}
