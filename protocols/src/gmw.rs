//! The GMW session: the compiled model evaluated on XOR shares, up to 64 inputs per batch
//! (one per bit lane), triples made ahead of the query. See `gmw/SPEC.md`.

use veil_gmw::{GmwParty, PartyId, PreparedCircuit, Reveal, P0, P1};
use veil_net::Channel;
use veil_nn::compile::{compile_architecture, CompiledModel, Prediction};
use veil_nn::graph::Architecture;

use crate::client::ClientOptions;
use crate::registry::{BoxFuture, ClientSession, InferenceProtocol};
use crate::server::{next_request, welcome, Next, Served};
use crate::wire::{Hello, Protocol, Request};
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
    party: &mut GmwParty<P0>,
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
    party: &mut GmwParty<P1>,
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

/// The registry's entry for GMW.
pub struct Gmw;

struct GmwClient {
    party: GmwParty<P1>,
    compiled: CompiledModel,
    prepared: PreparedCircuit,
}

impl ClientSession for GmwClient {
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(inputs.len());
            for batch in inputs.chunks(LANES) {
                out.extend(
                    query_batch(ch, &mut self.party, &self.compiled, &self.prepared, batch).await?,
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
            ch.send(&Request::Prepare {
                count: count as u32,
            })
            .await?;
            let missing = missing_triples(&self.party, &self.prepared, count);
            if missing > 0 {
                self.party.offline(ch, missing).await?;
            }
            ch.flush().await?;
            Ok(())
        })
    }
}

/// Triples still to make before a batch of `count` inputs (at most one batch, [`LANES`]) can
/// run: the rule both parties follow on [`crate::wire::Request::Prepare`].
fn missing_triples<R: veil_gmw::Role>(
    party: &GmwParty<R>,
    prepared: &PreparedCircuit,
    count: usize,
) -> usize {
    triples_for(prepared, count.min(LANES)).saturating_sub(party.triples_available())
}

async fn serve(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<u64, SessionError> {
    let logits = hello.want_logits && served.config().allow_logits;
    let mut budget = welcome(ch, served, logits).await?;
    let (compiled, server_inputs) = served.compiled(logits);
    let mut party = GmwParty::<P0>::new(&mut veil_ot::secure_rng());
    let prepared = prepare(compiled)?;
    // Triples for a first full batch, before any query arrives.
    party.offline(ch, triples_for(&prepared, LANES)).await?;
    let mut inputs = 0;
    while let Some(next) = next_request(ch, &mut budget).await? {
        match next {
            Next::Query(n) => {
                let mut left = n as usize;
                while left > 0 {
                    let lanes = left.min(LANES);
                    serve_batch(ch, &mut party, &prepared, server_inputs, lanes).await?;
                    left -= lanes;
                }
                inputs += u64::from(n);
            }
            Next::Prepare(n) => {
                let missing = missing_triples(&party, &prepared, n as usize);
                if missing > 0 {
                    party.offline(ch, missing).await?;
                }
            }
        }
    }
    Ok(inputs)
}

impl InferenceProtocol for Gmw {
    fn protocol(&self) -> Protocol {
        Protocol::Gmw
    }

    fn summary(&self) -> &'static str {
        "GMW on XOR shares, 64 inputs per batch; semi-honest: trusted clients only"
    }

    fn requires_trust(&self) -> bool {
        true
    }

    fn lanes(&self) -> usize {
        LANES
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
        ch: &'a mut Channel,
        architecture: &'a Architecture,
        logits: bool,
        _options: &'a ClientOptions,
    ) -> BoxFuture<'a, Result<Box<dyn ClientSession>, SessionError>> {
        Box::pin(async move {
            let compiled = compile_architecture(architecture, crate::registry::outputs(logits))?;
            let prepared = prepare(&compiled)?;
            let mut party = GmwParty::<P1>::new(&mut veil_ot::secure_rng());
            party.offline(ch, triples_for(&prepared, LANES)).await?;
            Ok(Box::new(GmwClient {
                party,
                compiled,
                prepared,
            }) as Box<dyn ClientSession>)
        })
    }
}
