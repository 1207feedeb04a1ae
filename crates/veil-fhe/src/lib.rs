//! `veil-fhe`: encrypted inference with TFHE (Chillotti, Gama, Georgieva and Izabachène,
//! J. Cryptology 2020) through the `tfhe` crate.
//!
//! The client encrypts its input codes; the server evaluates veil-nn's quantized MLP on the
//! ciphertexts with its plaintext weights: the hidden layer as LWE linear combinations (no
//! bootstrap), then ReLU and requantization fused into one programmable bootstrap per hidden
//! neuron, then the output layer as linear combinations again, left as wide accumulators that
//! the client decrypts. [`plan`] gives the encoding and why it reproduces the plaintext integer
//! inference; this module holds the keys and the two roles.
//!
//! Keys come only from tfhe's 128-bit parameter set `PARAM_MESSAGE_2_CARRY_2_KS_PBS`
//! (TUniform noise, failure probability 2^-128 for its own encoding); the encoding of our
//! messages is ours.
//!
//! # Secrets in memory: a known limit
//!
//! The secret key of an [`FheClient`] is a `tfhe::shortint::ClientKey`, and `tfhe` 1.8 offers
//! no zeroization for it (nor for the LWE and GLWE secret keys inside it): when a client is
//! dropped its key material is freed without being erased. Veil does not reach into `tfhe`'s
//! key containers to wipe them. Keep client processes short-lived, and keep their memory out of
//! swap and core dumps where that matters. The evaluation key is public.

pub mod plan;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::prelude::{GlweCiphertext, GlweSize};
use tfhe::shortint::ciphertext::Degree;
use tfhe::shortint::parameters::PARAM_MESSAGE_2_CARRY_2_KS_PBS;
use tfhe::shortint::server_key::LookupTableOwned;
use tfhe::shortint::{Ciphertext, ClientKey, ServerKey};
use veil_nn::quant::QuantModel;

pub use plan::{decode_logit, FhePlan, PlanError, PublicShape};

/// Why an encrypted evaluation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FheError {
    /// The model cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The ciphertexts do not fit the model or the keys.
    #[error("invalid ciphertexts: {0}")]
    Shape(String),
    /// Serialized keys or ciphertexts could not be read.
    #[error("could not decode {what}: {reason}")]
    Decode {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
}

/// The tfhe parameter set every key is made from.
pub fn parameters() -> tfhe::shortint::ClassicPBSParameters {
    PARAM_MESSAGE_2_CARRY_2_KS_PBS
}

/// Polynomial size of the parameter set.
pub fn polynomial_size() -> usize {
    parameters().polynomial_size.0
}

/// An encrypted query: one LWE ciphertext per input code.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedInput {
    /// The ciphertexts, in input order.
    pub cts: Vec<Ciphertext>,
}

/// An encrypted answer: one wide LWE accumulator per logit.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedOutput {
    /// The logit ciphertexts, in class order.
    pub logits: Vec<Ciphertext>,
}

/// The client: holds the secret key.
pub struct FheClient {
    key: ClientKey,
    shape: PublicShape,
}

/// The server's evaluation key, to be sent once per session.
pub type EvaluationKey = ServerKey;

impl FheClient {
    /// Generates a fresh client key and the matching evaluation key, for a model of the given
    /// public shape. Key generation draws from tfhe's OS-seeded CSPRNG.
    pub fn generate(shape: PublicShape) -> (FheClient, EvaluationKey) {
        let key = ClientKey::new(parameters());
        let server = ServerKey::new(&key);
        (FheClient { key, shape }, server)
    }

    /// A fresh client key alone, for a client that will send the server a compressed
    /// evaluation key ([`FheClient::compressed_evaluation_key`]).
    pub fn new(shape: PublicShape) -> FheClient {
        FheClient {
            key: ClientKey::new(parameters()),
            shape,
        }
    }

    /// The evaluation key in seeded (compressed) form: what a client sends over the network;
    /// the server expands it with `decompress()`.
    pub fn compressed_evaluation_key(&self) -> tfhe::shortint::CompressedServerKey {
        tfhe::shortint::CompressedServerKey::new(&self.key)
    }

    /// The tfhe client key (for instance to derive a compressed evaluation key).
    pub fn key(&self) -> &ClientKey {
        &self.key
    }

    /// The model's public shape this client encrypts for.
    pub fn shape(&self) -> PublicShape {
        self.shape
    }

    /// Encrypts input codes: each code `x` as `x · Δ_in` (see [`plan`]).
    pub fn encrypt(&self, codes: &[u8]) -> Result<EncryptedInput, FheError> {
        if codes.len() != self.shape.inputs || codes.iter().any(|&c| c > self.shape.input_max) {
            return Err(FheError::Shape(format!(
                "{} input codes (expected {} codes of at most {})",
                codes.len(),
                self.shape.inputs,
                self.shape.input_max
            )));
        }
        let d = plan::input_delta(polynomial_size());
        let cts = codes
            .par_iter()
            .map(|&x| {
                // An encryption of zero, then the message added to the body: an encryption of
                // x under our encoding with the key's standard noise.
                let mut ct = self.key.unchecked_encrypt(0);
                let body = ct.ct.get_mut_body();
                *body.data = body.data.wrapping_add(u64::from(x).wrapping_mul(d));
                ct
            })
            .collect();
        Ok(EncryptedInput { cts })
    }

    /// The raw phase of a ciphertext (for diagnostics: decrypting a hidden neuron).
    pub fn phase(&self, ct: &Ciphertext) -> u64 {
        self.key.decrypt_no_decode(ct).0
    }

    /// Decrypts the logits.
    pub fn decrypt(&self, out: &EncryptedOutput) -> Result<Vec<i64>, FheError> {
        if out.logits.len() != self.shape.outputs {
            return Err(FheError::Shape(format!(
                "{} logits, expected {}",
                out.logits.len(),
                self.shape.outputs
            )));
        }
        // The logits come from the server: a ciphertext of another size or modulus than the
        // key's would trip tfhe's assertions.
        let params = parameters();
        let lwe_size = params.glwe_dimension.0 * params.polynomial_size.0 + 1;
        if let Some(ct) = out.logits.iter().find(|ct| {
            ct.ct.lwe_size().0 != lwe_size
                || ct.ct.ciphertext_modulus() != params.ciphertext_modulus
        }) {
            return Err(FheError::Shape(format!(
                "a logit ciphertext of LWE size {} (expected {lwe_size}) or of another modulus",
                ct.ct.lwe_size().0
            )));
        }
        Ok(out
            .logits
            .iter()
            .map(|ct| decode_logit(self.phase(ct), self.shape.output_bits))
            .collect())
    }
}

/// The server: the model's plan, its lookup tables and a client's evaluation key.
pub struct FheServer {
    plan: FhePlan,
    luts: Vec<LookupTableOwned>,
    key: ServerKey,
}

impl FheServer {
    /// Prepares `model` for evaluation under `key`.
    pub fn new(model: &QuantModel, key: ServerKey) -> Result<FheServer, FheError> {
        let params = parameters();
        let plan = FhePlan::new(model, params.polynomial_size.0)?;
        let glwe_size = GlweSize(params.glwe_dimension.0 + 1);
        let luts = (0..plan.neurons.len())
            .map(|j| {
                let mut acc = GlweCiphertext::new(
                    0u64,
                    glwe_size,
                    params.polynomial_size,
                    params.ciphertext_modulus,
                );
                let mut body = acc.get_mut_body();
                body.as_mut().copy_from_slice(&plan.lookup_table(j));
                LookupTableOwned {
                    acc,
                    degree: Degree::new(u64::from(plan.requant.max_out() as u32)),
                }
            })
            .collect();
        Ok(FheServer { plan, luts, key })
    }

    /// The plan (public shape, encodings).
    pub fn plan(&self) -> &FhePlan {
        &self.plan
    }

    /// What the client needs to know about the model.
    pub fn public_shape(&self, input_max: u8) -> PublicShape {
        self.plan.public_shape(input_max)
    }

    fn check(&self, input: &EncryptedInput) -> Result<(), FheError> {
        let big = parameters().glwe_dimension.0 * parameters().polynomial_size.0;
        if input.cts.len() != self.plan.inputs {
            return Err(FheError::Shape(format!(
                "{} input ciphertexts, expected {}",
                input.cts.len(),
                self.plan.inputs
            )));
        }
        if let Some(ct) = input.cts.iter().find(|c| c.ct.lwe_size().0 != big + 1) {
            return Err(FheError::Shape(format!(
                "a ciphertext of LWE size {}, expected {}",
                ct.ct.lwe_size().0,
                big + 1
            )));
        }
        Ok(())
    }

    /// The hidden layer: returns one bootstrapped ciphertext per hidden neuron, each an
    /// encryption of its requantized activation times `Δ_out`.
    pub fn eval_hidden(&self, input: &EncryptedInput) -> Result<Vec<Ciphertext>, FheError> {
        self.check(input)?;
        let template = &input.cts[0];
        Ok((0..self.plan.neurons.len())
            .into_par_iter()
            .map(|j| {
                let mut acc = template.clone();
                let out = acc.ct.as_mut();
                out.fill(0);
                for (w, ct) in self.plan.hidden_row(j).iter().zip(&input.cts) {
                    if *w != 0 {
                        let c = (i64::from(*w) * self.plan.neurons[j].k as i64) as u64;
                        for (o, x) in out.iter_mut().zip(ct.ct.as_ref()) {
                            *o = o.wrapping_add(x.wrapping_mul(c));
                        }
                    }
                }
                if let Some(b) = out.last_mut() {
                    *b = b.wrapping_add(self.plan.neurons[j].offset);
                }
                self.key.apply_lookup_table(&acc, &self.luts[j])
            })
            .collect())
    }

    /// The output layer on bootstrapped hidden activations.
    pub fn eval_output(&self, hidden: &[Ciphertext]) -> Result<EncryptedOutput, FheError> {
        if hidden.len() != self.plan.neurons.len() || hidden.is_empty() {
            return Err(FheError::Shape(format!(
                "{} hidden ciphertexts",
                hidden.len()
            )));
        }
        let d = plan::output_delta(self.plan.output_bits);
        let logits = (0..self.plan.output_bias.len())
            .map(|k| {
                let mut acc = hidden[0].clone();
                let out = acc.ct.as_mut();
                out.fill(0);
                for (w, ct) in self.plan.output_row(k).iter().zip(hidden) {
                    let c = i64::from(*w) as u64;
                    for (o, x) in out.iter_mut().zip(ct.ct.as_ref()) {
                        *o = o.wrapping_add(x.wrapping_mul(c));
                    }
                }
                if let Some(b) = out.last_mut() {
                    *b = b
                        .wrapping_add((i64::from(self.plan.output_bias[k]) as u64).wrapping_mul(d));
                }
                acc
            })
            .collect();
        Ok(EncryptedOutput { logits })
    }

    /// The whole model on an encrypted input.
    pub fn eval(&self, input: &EncryptedInput) -> Result<EncryptedOutput, FheError> {
        let hidden = self.eval_hidden(input)?;
        self.eval_output(&hidden)
    }

    /// One keyswitch and bootstrap of `ct` with the first neuron's table: the unit cost of
    /// the hidden layer, for comparisons.
    pub fn bare_bootstrap(&self, ct: &Ciphertext) -> Ciphertext {
        self.key.apply_lookup_table(ct, &self.luts[0])
    }

    /// Bootstraps per query: one per hidden neuron.
    pub fn bootstraps_per_query(&self) -> usize {
        self.plan.neurons.len()
    }
}
