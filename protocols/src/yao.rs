//! The Yao session: one garbled evaluation of the compiled model per input. See `yao/SPEC.md`.

use veil_gc::{Evaluator, Garbler, Party, PreparedCircuit, Reveal};
use veil_net::Channel;
use veil_nn::compile::{CompiledModel, Prediction};

use crate::SessionError;

fn owners(compiled: &CompiledModel) -> Vec<Party> {
    compiled
        .server_owned()
        .into_iter()
        .map(|s| if s { Party::Garbler } else { Party::Evaluator })
        .collect()
}

/// The compiled model's circuit made ready for every query of a session: the model's bits are
/// the garbler's inputs, the client's codes the evaluator's, the output the evaluator's.
pub fn prepare(compiled: &CompiledModel) -> Result<PreparedCircuit, SessionError> {
    Ok(PreparedCircuit::new(
        &compiled.circuit,
        &owners(compiled),
        Reveal::Evaluator,
    )?)
}

/// Server side of one query: garbles the circuit with the model as the garbler's input.
pub async fn serve_one(
    ch: &mut Channel,
    garbler: &mut Garbler,
    prepared: &PreparedCircuit,
    server_inputs: &[Vec<bool>],
) -> Result<(), SessionError> {
    garbler.run_prepared(ch, prepared, server_inputs).await?;
    Ok(())
}

/// Client side of one query: evaluates with the codes as the evaluator's input.
pub async fn query_one(
    ch: &mut Channel,
    evaluator: &mut Evaluator,
    compiled: &CompiledModel,
    prepared: &PreparedCircuit,
    codes: &[u8],
) -> Result<Prediction, SessionError> {
    let mine = compiled.client_inputs(codes)?;
    let out = evaluator
        .run_prepared(ch, prepared, &mine)
        .await?
        .ok_or_else(|| SessionError::Protocol("no output for the evaluator".into()))?;
    Ok(compiled.decode(&out)?)
}
