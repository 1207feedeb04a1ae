//! The Yao session: one garbled evaluation of the compiled model per input, garbled on the
//! spot or ahead of the query when the client prepares it ([`crate::Client::prepare`]). See
//! `yao/SPEC.md`.

use veil_gc::{Evaluator, Garbler, Party, PreparedCircuit, Reveal};
use veil_net::Channel;
use veil_nn::compile::{compile_architecture, CompiledModel, Prediction};
use veil_nn::graph::Architecture;

use crate::client::ClientOptions;
use crate::registry::{BoxFuture, ClientSession, InferenceProtocol};
use crate::server::{check_prepare, next_request, welcome, Next, Served};
use crate::wire::{Hello, Protocol, Request, MAX_AHEAD};
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

/// The registry's entry for Yao.
pub struct Yao;

struct YaoClient {
    evaluator: Evaluator,
    compiled: CompiledModel,
    prepared: PreparedCircuit,
}

impl ClientSession for YaoClient {
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(inputs.len());
            for codes in inputs {
                out.push(
                    query_one(
                        ch,
                        &mut self.evaluator,
                        &self.compiled,
                        &self.prepared,
                        codes,
                    )
                    .await?,
                );
            }
            Ok(out)
        })
    }

    fn prepare<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        count: usize,
    ) -> BoxFuture<'a, Result<(), SessionError>> {
        Box::pin(async move {
            // At most MAX_AHEAD held: the rest of the inputs run on the spot.
            let count = count.min((MAX_AHEAD as usize).saturating_sub(self.evaluator.ahead()));
            if count == 0 {
                return Ok(());
            }
            ch.send(&Request::Prepare {
                count: count as u32,
            })
            .await?;
            for _ in 0..count {
                self.evaluator.receive_ahead(ch, &self.prepared).await?;
            }
            Ok(())
        })
    }
}

async fn serve(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<u64, SessionError> {
    let logits = hello.want_logits && served.config().allow_logits;
    let mut budget = welcome(ch, served, logits).await?;
    let (compiled, server_inputs) = served.compiled(logits);
    let mut garbler = Garbler::new(&mut veil_ot::secure_rng());
    let prepared = prepare(compiled)?;
    let mut inputs = 0;
    while let Some(next) = next_request(ch, &mut budget).await? {
        match next {
            Next::Query(n) => {
                for _ in 0..n {
                    serve_one(ch, &mut garbler, &prepared, server_inputs).await?;
                }
                inputs += u64::from(n);
            }
            Next::Prepare(n) => {
                // Each evaluation garbled ahead costs the server a garbling and the client
                // its tables; the queue is bounded like the client's.
                check_prepare(garbler.ahead(), n, MAX_AHEAD as usize)?;
                for _ in 0..n {
                    garbler.garble_ahead(ch, &prepared, server_inputs).await?;
                }
            }
        }
    }
    Ok(inputs)
}

impl InferenceProtocol for Yao {
    fn offline_per_query(&self) -> bool {
        true
    }

    fn protocol(&self) -> Protocol {
        Protocol::Yao
    }

    fn summary(&self) -> &'static str {
        "Yao garbled circuits: the server garbles, the client evaluates; any client"
    }

    fn serve<'a>(
        &'a self,
        ch: &'a mut Channel,
        served: &'a Served,
        hello: &'a Hello,
    ) -> BoxFuture<'a, Result<u64, SessionError>> {
        Box::pin(serve(ch, served, hello))
    }

    fn connect<'a>(
        &'a self,
        _ch: &'a mut Channel,
        architecture: &'a Architecture,
        logits: bool,
        _options: &'a ClientOptions,
    ) -> BoxFuture<'a, Result<Box<dyn ClientSession>, SessionError>> {
        Box::pin(async move {
            let compiled = compile_architecture(architecture, crate::registry::outputs(logits))?;
            let prepared = prepare(&compiled)?;
            Ok(Box::new(YaoClient {
                evaluator: Evaluator::new(&mut veil_ot::secure_rng()),
                compiled,
                prepared,
            }) as Box<dyn ClientSession>)
        })
    }
}
