//! The `clear` session: no protection at all. The client sends its input codes in the clear
//! and the server answers with its plaintext integer model's class (and logits, if asked and
//! allowed). See `clear/SPEC.md`.
//!
//! INSECURE by construction: the server sees every input. It exists as the baseline that
//! `veil bench` divides every protocol's latency and bytes by, so that a protocol's overhead
//! reads as a ratio. A server offers it only when its operator lists it by name
//! (`veil serve --protocol clear`), never by default, and a client uses it only when it asks
//! for it by name.

use serde::{Deserialize, Serialize};
use veil_net::Channel;
use veil_nn::compile::Prediction;
use veil_nn::graph::Architecture;

use crate::client::ClientOptions;
use crate::registry::{BoxFuture, ClientSession, InferenceProtocol};
use crate::server::{next_query, welcome, Served};
use crate::wire::{Hello, Protocol};
use crate::SessionError;

/// Client → server, once per input: the input codes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearQuery {
    /// The input codes, as many as the architecture's inputs, each at most its largest code.
    pub codes: Vec<u8>,
}

/// Server → client, once per input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearAnswer {
    /// The class of the plaintext integer model.
    pub class: u32,
    /// Its logits, when the session reveals them.
    pub logits: Option<Vec<i64>>,
}

/// The registry's entry for `clear`.
pub struct Clear;

/// Checks a query's codes against the public architecture.
fn check(architecture: &Architecture, codes: &[u8]) -> Result<(), SessionError> {
    let max = architecture.input_max();
    if codes.len() != architecture.input_count() || codes.iter().any(|&c| i64::from(c) > max) {
        return Err(SessionError::Protocol(format!(
            "{} input codes (expected {} codes of at most {max})",
            codes.len(),
            architecture.input_count()
        )));
    }
    Ok(())
}

async fn serve(ch: &mut Channel, served: &Served, hello: &Hello) -> Result<u64, SessionError> {
    let logits = hello.want_logits && served.config().allow_logits;
    let mut budget = welcome(ch, served, logits).await?;
    let model = &served.config().model;
    let mut inputs = 0u64;
    while let Some(n) = next_query(ch, &mut budget).await? {
        for _ in 0..n {
            // A query's size follows from the architecture: the codes and bincode's length
            // prefix (at most 9 bytes). Anything longer is refused before it is read.
            let query: ClearQuery = ch
                .recv_within(model.architecture.input_count().saturating_add(9))
                .await?;
            check(&model.architecture, &query.codes)?;
            let out = model.logits(&query.codes);
            let class = veil_nn::quant::argmax_i64(&out) as u32;
            ch.send(&ClearAnswer {
                class,
                logits: logits.then_some(out),
            })
            .await?;
            ch.flush().await?;
        }
        inputs += u64::from(n);
    }
    Ok(inputs)
}

struct ClearClient {
    architecture: Architecture,
    logits: bool,
}

impl ClientSession for ClearClient {
    fn classify<'a>(
        &'a mut self,
        ch: &'a mut Channel,
        inputs: &'a [Vec<u8>],
    ) -> BoxFuture<'a, Result<Vec<Prediction>, SessionError>> {
        Box::pin(async move {
            let classes = self.architecture.classes();
            let mut out = Vec::with_capacity(inputs.len());
            // One round trip per input, as HE and Yao take.
            for codes in inputs {
                check(&self.architecture, codes).map_err(|e| match e {
                    SessionError::Protocol(why) => SessionError::Invalid(why),
                    e => e,
                })?;
                ch.send(&ClearQuery {
                    codes: codes.clone(),
                })
                .await?;
                ch.flush().await?;
                let answer: ClearAnswer = ch.recv().await?;
                let bad = answer.class as usize >= classes
                    || answer.logits.is_some() != self.logits
                    || answer.logits.as_ref().is_some_and(|l| l.len() != classes);
                if bad {
                    return Err(SessionError::Protocol(
                        "an answer that does not fit the architecture".into(),
                    ));
                }
                out.push(Prediction {
                    class: Some(answer.class as usize),
                    logits: answer.logits,
                });
            }
            Ok(out)
        })
    }
}

impl InferenceProtocol for Clear {
    fn protocol(&self) -> Protocol {
        Protocol::Clear
    }

    fn summary(&self) -> &'static str {
        "INSECURE baseline: the input in the clear, the plaintext integer model's answer"
    }

    fn insecure(&self) -> bool {
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
        _ch: &'a mut Channel,
        architecture: &'a Architecture,
        logits: bool,
        _options: &'a ClientOptions,
    ) -> BoxFuture<'a, Result<Box<dyn ClientSession>, SessionError>> {
        Box::pin(async move {
            Ok(Box::new(ClearClient {
                architecture: architecture.clone(),
                logits,
            }) as Box<dyn ClientSession>)
        })
    }
}
