//! The mixed session: the model's linear maps on additive shares in `Z_2^k`, its activations
//! and its argmax in garbled circuits (ABY, Demmler, Schneider and Zohner, NDSS 2015; MiniONN,
//! Liu et al., CCS 2017). See `mixed/SPEC.md`.
//!
//! The model graph is cut into *stages*, as the HE planner cuts it: the linear ops between two
//! ReLUs compose into one affine map (integer coefficients, exact), and the last stage is the
//! output layer. For each query, offline, the client draws a mask `r_s` for the inputs of every
//! stage and the parties get shares of `W_s·r_s` ([`veil_arith::matvec`], Gilboa's OT
//! product). Online, the client sends `x − r_0`; at each stage the server adds its share and
//! the bias to `W_s·(x_s − r_s)`, the client holds the other share, and a garbled circuit
//! ([`veil_arith::circuits`]) turns the two shares into the next stage's input masked by
//! `r_{s+1}` (revealed to the server) or, after the last stage, into the class (and the logits
//! when allowed, revealed to the client).
//!
//! Each stage works modulo `2^k` with `k` the width the public architecture gives its
//! accumulators, so the sum of the shares is the accumulator itself; which coefficients of a
//! stage may be non-zero follows from the architecture alone (the stage composed with every
//! weight 1), so the client needs no weight and the bytes say nothing of them.
//!
//! Semi-honest: a client that deviates (masks that differ from the ones of its OT products,
//! chosen garbled-circuit inputs) can learn more of the model than its outputs (Lehmkuhl,
//! Mishra, Srinivasan and Popa, "MUSE", USENIX Security 2021), so the server serves it only to
//! clients it trusts, as GMW.

use std::collections::VecDeque;

use rand::Rng;
use veil_arith::circuits::{argmax_of_shares, requant_reshare};
use veil_arith::matvec;
use veil_arith::ring::{embed, from_bits, mask, pack, signed, to_bits, unpack};
use veil_arith::{ArithError, Pattern};
use veil_gc::{Evaluator, Garbler, Party, PreparedCircuit, Reveal, MAX_DEFERRED};
use veil_net::Channel;
use veil_nn::compile::Prediction;
use veil_nn::graph::{identity_affine, Affine, Architecture, QuantGraph};
use veil_nn::quant::Requant;
use veil_ot::{OtReceiver, OtSender};
use zeroize::Zeroize;

use crate::client::ClientOptions;
use crate::registry::{BoxFuture, ClientSession, InferenceProtocol};
use crate::server::{check_prepare, next_request, welcome, Next, Served};
use crate::wire::{Hello, Protocol, Request, MAX_AHEAD};
use crate::SessionError;

/// One stage's public shape: its inputs, the non-zero pattern of its affine map, the ring
/// width of its accumulators, and the requantization after it (none for the output layer).
#[derive(Clone, Debug)]
pub struct StageShape {
    /// The pattern of the stage's matrix (rows: its accumulators; columns: its inputs).
    pub pattern: Pattern,
    /// Ring width `k` of the stage.
    pub k: u32,
    /// The activation after the stage; `None` for the output layer.
    pub requant: Option<Requant>,
}

/// The public plan: every stage's shape, first to last (the last is the output layer).
#[derive(Clone, Debug)]
pub struct MixedPlan {
    /// The stages.
    pub stages: Vec<StageShape>,
}

/// An affine map composed so far: one expression per output.
type AffineMap = Vec<Affine>;

/// The stages of `arch`, with the server's affine maps when `model` is given.
fn stages(
    arch: &Architecture,
    model: Option<&QuantGraph>,
) -> Result<(MixedPlan, Vec<AffineMap>), SessionError> {
    let invalid = |e: veil_nn::graph::GraphError| SessionError::Invalid(e.to_string());
    let types = arch.validate().map_err(invalid)?;
    let shapes = arch.shapes().map_err(invalid)?;
    let mut plan = Vec::new();
    let mut maps = Vec::new();
    let (mut structure, mut real) = (
        identity_affine(arch.input_count()),
        identity_affine(arch.input_count()),
    );
    let mut inputs = arch.input_count();
    let mut p = 0;
    let mut finish = |structure: &AffineMap,
                      real: AffineMap,
                      inputs: usize,
                      k: u32,
                      requant: Option<Requant>|
     -> Result<(), SessionError> {
        let mut columns = vec![Vec::new(); inputs];
        for (j, (terms, _)) in structure.iter().enumerate() {
            for &i in terms.keys() {
                if let Some(c) = columns.get_mut(i as usize) {
                    c.push(j as u32);
                }
            }
        }
        let pattern = Pattern::new(structure.len(), columns)?;
        plan.push(StageShape {
            pattern,
            k,
            requant,
        });
        maps.push(real);
        Ok(())
    };
    for (k, op) in arch.ops.iter().enumerate() {
        let g = op.geometry();
        if let Some(rows) = g.rows(shapes[k]) {
            let params = if g.has_params() {
                p += 1;
                model.and_then(|m| m.params.get(p - 1))
            } else {
                None
            };
            structure = rows.compose(&structure, None, true);
            if model.is_some() {
                real = rows.compose(&real, params, false);
            }
        } else if let Some(requant) = op.requant() {
            // The accumulators this ReLU reads, with one bit to spare.
            let width = (types[k].1.bits + 1).min(64);
            let outputs = structure.len();
            finish(
                &structure,
                std::mem::replace(&mut real, identity_affine(outputs)),
                inputs,
                width,
                Some(requant),
            )?;
            structure = identity_affine(outputs);
            inputs = outputs;
        }
    }
    let last = types
        .last()
        .ok_or_else(|| SessionError::Invalid("empty architecture".into()))?;
    let width = (last.1.bits + 1).min(64);
    finish(&structure, real, inputs, width, None)?;
    Ok((MixedPlan { stages: plan }, maps))
}

impl MixedPlan {
    /// The plan of an architecture, from its public description alone.
    pub fn of(arch: &Architecture) -> Result<MixedPlan, SessionError> {
        Ok(stages(arch, None)?.0)
    }
}

/// The server's weights of every stage, by column of its pattern, and its biases.
struct ServerStage {
    columns: Vec<Vec<i64>>,
    bias: Vec<i64>,
}

fn server_stages(plan: &MixedPlan, maps: &[AffineMap]) -> Vec<ServerStage> {
    plan.stages
        .iter()
        .zip(maps)
        .map(|(st, map)| {
            let columns = (0..st.pattern.columns())
                .map(|i| {
                    st.pattern
                        .column(i)
                        .iter()
                        .map(|&j| {
                            map.get(j as usize)
                                .and_then(|(t, _)| t.get(&(i as u32)).copied())
                                .unwrap_or(0)
                        })
                        .collect()
                })
                .collect();
            let bias = map.iter().map(|(_, c)| *c).collect();
            ServerStage { columns, bias }
        })
        .collect()
}

/// The circuits of every stage, prepared once per session: the activation re-masked for the
/// next stage (revealed to the server), then the argmax (revealed to the client).
fn circuits(plan: &MixedPlan, logits: bool) -> Result<Vec<PreparedCircuit>, SessionError> {
    let n = plan.stages.len();
    (0..n)
        .map(|s| {
            let st = &plan.stages[s];
            let rows = st.pattern.rows();
            Ok(match st.requant {
                Some(r) => PreparedCircuit::new(
                    &requant_reshare(rows, st.k, r.shift, r.out_bits, plan.stages[s + 1].k),
                    &[Party::Garbler, Party::Evaluator, Party::Evaluator],
                    Reveal::Garbler,
                )?,
                None => PreparedCircuit::new(
                    &argmax_of_shares(rows, st.k, logits),
                    &[Party::Garbler, Party::Evaluator],
                    Reveal::Evaluator,
                )?,
            })
        })
        .collect()
}

/// `W·v + bias + share` in `Z_2^k`.
fn affine(st: &ServerStage, pattern: &Pattern, v: &[u64], share: &[u64], k: u32) -> Vec<u64> {
    let mut out: Vec<u64> = st
        .bias
        .iter()
        .zip(share)
        .map(|(&b, &s)| embed(b, 64).wrapping_add(s))
        .collect();
    for (i, (&x, col)) in v.iter().zip(&st.columns).enumerate() {
        for (&j, &w) in pattern.column(i).iter().zip(col) {
            let o = &mut out[j as usize];
            *o = o.wrapping_add(embed(w, 64).wrapping_mul(x));
        }
    }
    out.iter().map(|o| o & mask(k)).collect()
}

/// The server's shares of one query's offline phase, one vector per stage.
type ServerShares = Vec<Vec<u64>>;

/// The client's masks and shares of one query's offline phase, per stage; erased on drop.
struct ClientShares {
    masks: Vec<Vec<u64>>,
    shares: Vec<Vec<u64>>,
}

impl Drop for ClientShares {
    fn drop(&mut self) {
        self.masks.iter_mut().for_each(|m| m.zeroize());
        self.shares.iter_mut().for_each(|s| s.zeroize());
    }
}

/// Queries a session may prepare ahead: [`MAX_AHEAD`], fewer when the model has so many
/// stages that their garbled circuits would pass [`MAX_DEFERRED`] (one more query's worth is
/// left for a query made on the spot).
fn max_prepared(plan: &MixedPlan) -> usize {
    let stages = plan.stages.len().max(1);
    (MAX_AHEAD as usize).min((MAX_DEFERRED / stages).saturating_sub(1))
}

/// The server's offline phase of one query: per stage, its share of `W_s·r_s`, then the
/// stage's circuit garbled with its own input (its share of the accumulators) deferred.
async fn server_offline(
    ch: &mut Channel,
    ot: &mut OtSender,
    garbler: &mut Garbler,
    plan: &MixedPlan,
    weights: &[ServerStage],
    prepared: &[PreparedCircuit],
) -> Result<ServerShares, SessionError> {
    let mut out = Vec::with_capacity(plan.stages.len());
    for ((st, w), circuit) in plan.stages.iter().zip(weights).zip(prepared) {
        out.push(matvec::send(ch, ot, &st.pattern, &w.columns, st.k).await?);
        garbler.garble_deferred(ch, circuit).await?;
    }
    Ok(out)
}

/// The client's offline phase of one query: per stage, a fresh mask and its share of
/// `W_s·r_s`, then its inputs to the stage's circuit (that share and the next stage's mask)
/// bound to the labels of a garbling it keeps.
async fn client_offline(
    ch: &mut Channel,
    ot: &mut OtReceiver,
    evaluator: &mut Evaluator,
    plan: &MixedPlan,
    prepared: &[PreparedCircuit],
) -> Result<ClientShares, SessionError> {
    let mut rng = veil_ot::secure_rng();
    let masks: Vec<Vec<u64>> = plan
        .stages
        .iter()
        .map(|st| {
            (0..st.pattern.columns())
                .map(|_| rng.random::<u64>() & mask(st.k))
                .collect()
        })
        .collect();
    veil_ot::erase_rng(&mut rng);
    let mut shares = ClientShares {
        masks,
        shares: Vec::with_capacity(plan.stages.len()),
    };
    for (s, (st, circuit)) in plan.stages.iter().zip(prepared).enumerate() {
        let share = matvec::receive(ch, ot, &st.pattern, &shares.masks[s], st.k).await?;
        let mut inputs = vec![to_bits(&share, st.k)];
        if let Some(next) = plan.stages.get(s + 1) {
            inputs.push(to_bits(&shares.masks[s + 1], next.k));
        }
        shares.shares.push(share);
        evaluator.receive_deferred(ch, circuit, &inputs).await?;
        inputs.iter_mut().for_each(|i| i.zeroize());
    }
    Ok(shares)
}

/// Server side of one input, its offline phase done.
async fn serve_one(
    ch: &mut Channel,
    garbler: &mut Garbler,
    plan: &MixedPlan,
    weights: &[ServerStage],
    prepared: &[PreparedCircuit],
    shares: &ServerShares,
) -> Result<(), SessionError> {
    let first = &plan.stages[0];
    let n0 = first.pattern.columns();
    let bytes = ch.recv_bytes().await?;
    let mut v = unpack(&bytes, n0, first.k).ok_or_else(|| {
        SessionError::Protocol(format!(
            "a masked input of {} bytes, expected {n0} values of {} bits packed",
            bytes.len(),
            first.k
        ))
    })?;
    for (s, st) in plan.stages.iter().enumerate() {
        let y = affine(&weights[s], &st.pattern, &v, &shares[s], st.k);
        let out = garbler
            .run_deferred(ch, &prepared[s], &[to_bits(&y, st.k)])
            .await?;
        if st.requant.is_some() {
            let z = out.ok_or_else(|| SessionError::Protocol("no masked activation".into()))?;
            v = from_bits(&z[0], plan.stages[s + 1].k);
        }
    }
    Ok(())
}

/// Client side of one input.
async fn query_one(
    ch: &mut Channel,
    evaluator: &mut Evaluator,
    plan: &MixedPlan,
    prepared: &[PreparedCircuit],
    shares: &ClientShares,
    codes: &[u8],
    logits: bool,
) -> Result<Prediction, SessionError> {
    let first = &plan.stages[0];
    if codes.len() != first.pattern.columns() {
        return Err(SessionError::Invalid(format!(
            "{} input codes, the model takes {}",
            codes.len(),
            first.pattern.columns()
        )));
    }
    let masked: Vec<u64> = codes
        .iter()
        .zip(&shares.masks[0])
        .map(|(&x, r)| u64::from(x).wrapping_sub(*r) & mask(first.k))
        .collect();
    ch.send_bytes(&pack(&masked, first.k)).await?;
    ch.flush().await?;
    let last = plan.stages.len() - 1;
    for (s, st) in plan.stages.iter().enumerate() {
        if s < last {
            evaluator.run_deferred(ch, &prepared[s]).await?;
        } else {
            let out = evaluator
                .run_deferred(ch, &prepared[s])
                .await?
                .ok_or_else(|| SessionError::Protocol("no output for the client".into()))?;
            let class = from_bits(&out[0], out[0].len().max(1) as u32)
                .first()
                .copied()
                .unwrap_or(0) as usize;
            let rows = st.pattern.rows();
            if class >= rows {
                return Err(SessionError::Protocol(format!("class {class} of {rows}")));
            }
            let logits = if logits {
                let words = out
                    .get(1)
                    .ok_or_else(|| SessionError::Protocol("no logits".into()))?;
                Some(
                    from_bits(words, st.k)
                        .iter()
                        .map(|&w| signed(w, st.k))
                        .collect(),
                )
            } else {
                None
            };
            return Ok(Prediction {
                class: Some(class),
                logits,
            });
        }
    }
    Err(SessionError::Invalid("a model with no stage".into()))
}

/// The registry's entry for the mixed protocol.
pub struct Mixed;

struct MixedClient {
    ot: OtReceiver,
    evaluator: Evaluator,
    plan: MixedPlan,
    prepared: Vec<PreparedCircuit>,
    ahead: VecDeque<ClientShares>,
    logits: bool,
}

impl ClientSession for MixedClient {
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(inputs.len());
            for codes in inputs {
                let shares = match self.ahead.pop_front() {
                    Some(s) => s,
                    None => {
                        client_offline(
                            ch,
                            &mut self.ot,
                            &mut self.evaluator,
                            &self.plan,
                            &self.prepared,
                        )
                        .await?
                    }
                };
                out.push(
                    query_one(
                        ch,
                        &mut self.evaluator,
                        &self.plan,
                        &self.prepared,
                        &shares,
                        codes,
                        self.logits,
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
            let count = count.min(max_prepared(&self.plan).saturating_sub(self.ahead.len()));
            if count == 0 {
                return Ok(());
            }
            ch.send(&Request::Prepare {
                count: count as u32,
            })
            .await?;
            for _ in 0..count {
                let shares = client_offline(
                    ch,
                    &mut self.ot,
                    &mut self.evaluator,
                    &self.plan,
                    &self.prepared,
                )
                .await?;
                self.ahead.push_back(shares);
            }
            Ok(())
        })
    }
}

async fn serve(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<u64, SessionError> {
    let logits = hello.want_logits && served.config().allow_logits;
    let model = &served.config().model;
    let (plan, maps) = stages(&model.architecture, Some(model))?;
    let weights = server_stages(&plan, &maps);
    let prepared = circuits(&plan, logits)?;
    let mut budget = welcome(ch, served, logits).await?;
    let mut rng = veil_ot::secure_rng();
    let mut ot = OtSender::setup(ch, &mut rng)
        .await
        .map_err(ArithError::from)?;
    let mut garbler = Garbler::new(&mut rng);
    veil_ot::erase_rng(&mut rng);
    let mut ahead: VecDeque<ServerShares> = VecDeque::new();
    let mut inputs = 0;
    while let Some(next) = next_request(ch, &mut budget).await? {
        match next {
            Next::Query(n) => {
                for _ in 0..n {
                    let shares = match ahead.pop_front() {
                        Some(s) => s,
                        None => {
                            server_offline(ch, &mut ot, &mut garbler, &plan, &weights, &prepared)
                                .await?
                        }
                    };
                    serve_one(ch, &mut garbler, &plan, &weights, &prepared, &shares).await?;
                }
                inputs += u64::from(n);
            }
            Next::Prepare(n) => {
                check_prepare(ahead.len(), n, max_prepared(&plan))?;
                for _ in 0..n {
                    ahead.push_back(
                        server_offline(ch, &mut ot, &mut garbler, &plan, &weights, &prepared)
                            .await?,
                    );
                }
            }
        }
    }
    Ok(inputs)
}

impl InferenceProtocol for Mixed {
    fn protocol(&self) -> Protocol {
        Protocol::Mixed
    }

    fn summary(&self) -> &'static str {
        "linear layers on additive shares, activations in garbled circuits; semi-honest: trusted clients only"
    }

    fn requires_trust(&self) -> bool {
        true
    }

    fn offline_per_query(&self) -> bool {
        true
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
            let plan = MixedPlan::of(architecture)?;
            let prepared = circuits(&plan, logits)?;
            let mut rng = veil_ot::secure_rng();
            let ot = OtReceiver::setup(ch, &mut rng)
                .await
                .map_err(ArithError::from)?;
            let evaluator = Evaluator::new(&mut rng);
            veil_ot::erase_rng(&mut rng);
            Ok(Box::new(MixedClient {
                ot,
                evaluator,
                plan,
                prepared,
                ahead: VecDeque::new(),
                logits,
            }) as Box<dyn ClientSession>)
        })
    }
}
