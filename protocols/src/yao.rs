//! The Yao session: one garbled evaluation of the compiled model per input. See `yao/SPEC.md`.

use veil_gc::{Evaluator, Garbler, Party, Reveal};
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

/// Server side of one query: garbles the circuit with the model as the garbler's input.
pub async fn serve_one(
    ch: &mut Channel,
    garbler: &mut Garbler,
    compiled: &CompiledModel,
    server_inputs: &[Vec<bool>],
) -> Result<(), SessionError> {
    garbler
        .run(
            ch,
            &compiled.circuit,
            &owners(compiled),
            server_inputs,
            Reveal::Evaluator,
        )
        .await?;
    Ok(())
}

/// Client side of one query: evaluates with the codes as the evaluator's input.
pub async fn query_one(
    ch: &mut Channel,
    evaluator: &mut Evaluator,
    compiled: &CompiledModel,
    codes: &[u8],
) -> Result<Prediction, SessionError> {
    let mine = compiled.client_inputs(codes)?;
    let out = evaluator
        .run(
            ch,
            &compiled.circuit,
            &owners(compiled),
            &mine,
            Reveal::Evaluator,
        )
        .await?
        .ok_or_else(|| SessionError::Protocol("no output for the evaluator".into()))?;
    Ok(compiled.decode(&out)?)
}
