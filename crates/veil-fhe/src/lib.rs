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

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::conformance::ParameterSetConformant;
use tfhe::core_crypto::prelude::{GlweCiphertext, GlweSize};
use tfhe::shortint::atomic_pattern::compressed::CompressedAtomicPatternServerKey;
use tfhe::shortint::ciphertext::{Degree, MaxDegree};
use tfhe::shortint::parameters::{
    AtomicPatternParameters, CiphertextConformanceParams, PARAM_MESSAGE_2_CARRY_2_KS_PBS,
};
use tfhe::shortint::server_key::LookupTableOwned;
use tfhe::shortint::{Ciphertext, ClientKey, CompressedServerKey, ServerKey};
use veil_nn::graph::QuantGraph;

pub use plan::{decode_logit, AffineRow, FhePlan, PlanError, PublicShape};

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
    /// An evaluation key was not made from [`parameters`] (checked before it is expanded).
    #[error("evaluation key refused: {0}")]
    Key(String),
    /// The evaluation was cancelled (its session ended) before it finished.
    #[error("evaluation cancelled")]
    Cancelled,
}

/// The tfhe parameter set every key is made from.
pub fn parameters() -> tfhe::shortint::ClassicPBSParameters {
    PARAM_MESSAGE_2_CARRY_2_KS_PBS
}

/// Polynomial size of the parameter set.
pub fn polynomial_size() -> usize {
    parameters().polynomial_size.0
}

/// What a server expects of a client's evaluation key: tfhe's conformance parameters of a
/// `CompressedServerKey` made from [`parameters`] by `CompressedServerKey::new` (which sets the
/// maximum degree to the whole message-and-carry space).
pub fn key_conformance() -> (AtomicPatternParameters, MaxDegree) {
    let p = parameters();
    (
        p.into(),
        MaxDegree::from_msg_carry_modulus(p.message_modulus, p.carry_modulus),
    )
}

/// Checks, before anything is expanded, that a compressed evaluation key is one that
/// [`FheClient::compressed_evaluation_key`] makes: tfhe's conformance check of every dimension,
/// decomposition, modulus and container length of the keyswitching and bootstrapping keys,
/// and of the key's moduli, maximum degree and noise level, against [`key_conformance`]. A key
/// with other dimensions (for instance a bootstrapping key of GLWE size 32 and polynomial size
/// 128: as compact on the wire, sixteen times larger once expanded) is refused here, so its
/// expansion never allocates.
pub fn check_compressed_key(key: &CompressedServerKey) -> Result<(), FheError> {
    if key.is_conformant(&key_conformance()) {
        return Ok(());
    }
    let p = parameters();
    let got = match &key.compressed_ap_server_key {
        CompressedAtomicPatternServerKey::Standard(k) => {
            let b = k.bootstrapping_key();
            format!(
                "a bootstrapping key of LWE dimension {}, GLWE size {}, polynomial size {} and \
                 {} levels, for ciphertexts of LWE dimension {}",
                b.input_lwe_dimension().0,
                b.glwe_size().0,
                b.polynomial_size().0,
                b.decomposition_level_count().0,
                k.ciphertext_lwe_dimension().0
            )
        }
        CompressedAtomicPatternServerKey::KeySwitch32(_) => {
            "a key of another atomic pattern (KS32)".to_string()
        }
    };
    Err(FheError::Key(format!(
        "not conformant to the parameter set (expected a bootstrapping key of LWE dimension {}, \
         GLWE size {}, polynomial size {} and {} levels, for ciphertexts of LWE dimension {}); \
         got {got}",
        p.lwe_dimension.0,
        p.glwe_dimension.0 + 1,
        p.polynomial_size.0,
        p.pbs_level.0,
        p.glwe_dimension.0 * p.polynomial_size.0,
    )))
}

/// The LWE dimension `n`, GLWE dimension `k` and polynomial size `N` of [`parameters`].
fn dimensions() -> (u64, u64, u64) {
    let p = parameters();
    (
        p.lwe_dimension.0 as u64,
        p.glwe_dimension.0 as u64,
        p.polynomial_size.0 as u64,
    )
}

/// The 64-bit words of an honest compressed evaluation key: its seeded bootstrapping key
/// (one body polynomial per GLWE row: `n · ℓ_pbs · (k + 1) · N`) and its seeded keyswitching
/// key (one body per row: `k·N · ℓ_ks`). With [`parameters`]: 3 768 320 words.
pub fn compressed_key_words() -> u64 {
    let p = parameters();
    let (n, k, big_n) = dimensions();
    n * p.pbs_level.0 as u64 * (k + 1) * big_n + k * big_n * p.ks_level.0 as u64
}

/// Bytes of memory one HE session needs at its peak on the server: the compressed key twice
/// (the bytes received and the decoded key), the standard bootstrapping key expanded from it
/// (`n · ℓ · (k+1)² · N` words), its Fourier copy (as many bytes) and the keyswitching key
/// (`k·N · ℓ_ks · (n+1)` words), plus 32 MiB for frames, lookup tables, queries and FFT
/// scratch. About 274 MB with [`parameters`] (a whole honest session was measured at 261 MB
/// above the server's resting peak); once expanded, a key keeps about 120 MB.
pub fn key_memory_bytes() -> u64 {
    let p = parameters();
    let (n, k, big_n) = dimensions();
    let bsk = n * p.pbs_level.0 as u64 * (k + 1) * (k + 1) * big_n * 8;
    let ksk = k * big_n * p.ks_level.0 as u64 * (n + 1) * 8;
    2 * compressed_key_words() * 8 + 2 * bsk + ksk + (32 << 20)
}

/// What the server expects of each input ciphertext: tfhe's conformance parameters of
/// [`parameters`] (LWE dimension `k·N`, native modulus, the parameter set's message and carry
/// moduli and atomic pattern, nominal noise level), with the degree the client's encryption
/// gives: the whole message-and-carry space, since our encoding is not tfhe's.
pub fn input_conformance() -> CiphertextConformanceParams {
    let mut c = parameters().to_shortint_conformance_param();
    c.degree = Degree::new(c.message_modulus.0 * c.carry_modulus.0 - 1);
    c
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

/// Checks that a client key is of [`parameters`] (a key read from a file, say).
///
/// # Errors
///
/// [`FheError::Key`] when it is not.
pub fn check_client_key(key: &ClientKey) -> Result<(), FheError> {
    let want = tfhe::shortint::PBSParameters::PBS(parameters());
    if key.parameters().pbs_parameters() != Some(want) {
        return Err(FheError::Key(
            "the client key is not of veil-fhe's parameter set".into(),
        ));
    }
    Ok(())
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

    /// A client with a key made before (a client that keeps its keys across sessions, so that
    /// a server that stored its evaluation key needs no second upload), for a model of
    /// `shape`.
    ///
    /// # Errors
    ///
    /// [`FheError::Key`] when the key is not of veil-fhe's parameter set.
    pub fn from_key(key: ClientKey, shape: PublicShape) -> Result<FheClient, FheError> {
        check_client_key(&key)?;
        Ok(FheClient { key, shape })
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
    /// One table per hidden value, per stage.
    luts: Vec<Vec<LookupTableOwned>>,
    key: ServerKey,
}

/// `Σ coef · ct + constant` on raw LWE ciphertexts (wrapping), into a copy of `template`.
fn affine(
    template: &Ciphertext,
    terms: &[(u32, i64)],
    scale: i64,
    cts: &[Ciphertext],
    constant: u64,
) -> Ciphertext {
    let mut acc = template.clone();
    let out = acc.ct.as_mut();
    out.fill(0);
    for &(i, c) in terms {
        let Some(ct) = cts.get(i as usize) else {
            continue;
        };
        let c = c.wrapping_mul(scale) as u64;
        for (o, x) in out.iter_mut().zip(ct.ct.as_ref()) {
            *o = o.wrapping_add(x.wrapping_mul(c));
        }
    }
    if let Some(b) = out.last_mut() {
        *b = b.wrapping_add(constant);
    }
    acc
}

/// The bootstrap table of neuron `j` of stage `s`, returning its activation times `scale`.
fn lookup_table(plan: &FhePlan, s: usize, j: usize, scale: u64) -> LookupTableOwned {
    let params = parameters();
    let mut acc = GlweCiphertext::new(
        0u64,
        GlweSize(params.glwe_dimension.0 + 1),
        params.polynomial_size,
        params.ciphertext_modulus,
    );
    let mut body = acc.get_mut_body();
    let requant = plan.stages[s].requant;
    body.as_mut()
        .copy_from_slice(&plan.lookup_table_at(s, j, scale));
    LookupTableOwned {
        acc,
        degree: Degree::new(u64::from(requant.max_out() as u32)),
    }
}

/// Bits that [`decode_logit`] reads a readable activation with (see
/// [`FheServer::readable_activations`]): scale `2^(64 − bits)`, `bits = out_bits + 2`.
pub fn readable_bits(requant: veil_nn::quant::Requant) -> u32 {
    u32::from(requant.out_bits) + 2
}

impl FheServer {
    /// Prepares `model` for evaluation under `key`.
    pub fn new(model: &QuantGraph, key: ServerKey) -> Result<FheServer, FheError> {
        let params = parameters();
        let plan = FhePlan::new(model, params.polynomial_size.0)?;
        let luts = plan
            .stages
            .iter()
            .enumerate()
            .map(|(s, stage)| {
                (0..stage.neurons.len())
                    .map(|j| lookup_table(&plan, s, j, stage.out_scale[j]))
                    .collect()
            })
            .collect();
        Ok(FheServer { plan, luts, key })
    }

    /// The plan (public shape, encodings).
    pub fn plan(&self) -> &FhePlan {
        &self.plan
    }

    /// What the client needs to know about the model.
    pub fn public_shape(&self) -> PublicShape {
        self.plan.public_shape()
    }

    /// Checks a client's query before any arithmetic on it: the number of ciphertexts, then
    /// every ciphertext against [`input_conformance`] (LWE dimension, modulus, message and
    /// carry moduli, atomic pattern, degree, noise level), so that nothing a client sends can
    /// reach one of tfhe's assertions.
    pub fn check(&self, input: &EncryptedInput) -> Result<(), FheError> {
        if input.cts.len() != self.plan.inputs {
            return Err(FheError::Shape(format!(
                "{} input ciphertexts, expected {}",
                input.cts.len(),
                self.plan.inputs
            )));
        }
        let want = input_conformance();
        if let Some((i, ct)) = input
            .cts
            .iter()
            .enumerate()
            .find(|(_, c)| !c.is_conformant(&want))
        {
            return Err(FheError::Shape(format!(
                "input ciphertext {i} does not conform to the parameter set: LWE size {} \
                 (expected {}), modulus {} (expected {}), degree {} (expected {}), noise level \
                 {} (expected {}), message and carry moduli {} and {} (expected {} and {}), \
                 atomic pattern {:?} (expected {:?})",
                ct.ct.lwe_size().0,
                want.ct_params.lwe_dim.to_lwe_size().0,
                ct.ct.ciphertext_modulus(),
                want.ct_params.ct_modulus,
                ct.degree.get(),
                want.degree.get(),
                ct.noise_level().get(),
                want.noise_level.get(),
                ct.message_modulus.0,
                ct.carry_modulus.0,
                want.message_modulus.0,
                want.carry_modulus.0,
                ct.atomic_pattern,
                want.atomic_pattern,
            )));
        }
        Ok(())
    }

    /// Every hidden stage: returns the last stage's bootstrapped ciphertexts, each an
    /// encryption of its requantized activation times `Δ_out`.
    pub fn eval_hidden(&self, input: &EncryptedInput) -> Result<Vec<Ciphertext>, FheError> {
        self.eval_hidden_cancellable(input, &AtomicBool::new(false))
    }

    /// [`eval_hidden`](Self::eval_hidden), stopping with [`FheError::Cancelled`] once `cancel`
    /// is set: the flag is read before each bootstrap, so a cancelled evaluation ends within
    /// about one bootstrap per thread.
    pub fn eval_hidden_cancellable(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
    ) -> Result<Vec<Ciphertext>, FheError> {
        let mut all = self.run_stages(input, cancel, false)?;
        all.pop()
            .ok_or_else(|| FheError::Shape("the plan has no stage".into()))
    }

    /// Every hidden stage's bootstrapped outputs, input side first (for diagnostics with the
    /// client key: stage `s`'s values are encoded at `plan().stages[s].out_delta`).
    pub fn eval_stages(&self, input: &EncryptedInput) -> Result<Vec<Vec<Ciphertext>>, FheError> {
        self.run_stages(input, &AtomicBool::new(false), true)
    }

    fn run_stages(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
        keep_all: bool,
    ) -> Result<Vec<Vec<Ciphertext>>, FheError> {
        self.check(input)?;
        let mut kept = Vec::new();
        let mut cts = input.cts.clone();
        for (s, stage) in self.plan.stages.iter().enumerate() {
            let template = &cts[0];
            // The bootstraps of a stage are independent: spread over the cores.
            cts = (0..stage.neurons.len())
                .into_par_iter()
                .map(|j| {
                    if cancel.load(Ordering::Relaxed) {
                        return Err(FheError::Cancelled);
                    }
                    let n = &stage.neurons[j];
                    let acc = affine(template, &stage.mults[j], 1, &cts, n.offset);
                    Ok(self.key.apply_lookup_table(&acc, &self.luts[s][j]))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if keep_all && s + 1 < self.plan.stages.len() {
                kept.push(cts.clone());
            }
        }
        kept.push(cts);
        Ok(kept)
    }

    /// Diagnostics for a client that holds the key: stage `s`'s accumulators, recomputed from
    /// its inputs as [`eval_stages`](Self::eval_stages) kept them, bootstrapped once more
    /// through the same tables with every activation at scale `2^(64 − readable_bits)`, far
    /// above a bootstrap's output noise, so that each decrypts to the table entry its
    /// bootstrap chose. Keyswitching and modulus switching are deterministic, so the entry is
    /// the one the evaluation's own bootstrap chose; its output, at the next stage's input
    /// scale, is too noisy to be read alone.
    pub fn readable_activations(
        &self,
        input: &EncryptedInput,
        stages: &[Vec<Ciphertext>],
    ) -> Result<Vec<Vec<Ciphertext>>, FheError> {
        self.check(input)?;
        if stages.len() != self.plan.stages.len() {
            return Err(FheError::Shape(format!(
                "{} stages, expected {}",
                stages.len(),
                self.plan.stages.len()
            )));
        }
        let mut out = Vec::with_capacity(stages.len());
        for (s, stage) in self.plan.stages.iter().enumerate() {
            let inputs = if s == 0 { &input.cts } else { &stages[s - 1] };
            let template = &inputs[0];
            let scale = plan::output_delta(readable_bits(stage.requant));
            out.push(
                (0..stage.neurons.len())
                    .into_par_iter()
                    .map(|j| {
                        let acc = affine(
                            template,
                            &stage.mults[j],
                            1,
                            inputs,
                            stage.neurons[j].offset,
                        );
                        let lut = lookup_table(&self.plan, s, j, scale);
                        self.key.apply_lookup_table(&acc, &lut)
                    })
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The output layer on the last stage's bootstrapped activations.
    pub fn eval_output(&self, hidden: &[Ciphertext]) -> Result<EncryptedOutput, FheError> {
        let expected = self.plan.stages.last().map_or(0, |s| s.neurons.len());
        if hidden.len() != expected || hidden.is_empty() {
            return Err(FheError::Shape(format!(
                "{} hidden ciphertexts, expected {expected}",
                hidden.len()
            )));
        }
        let d = plan::output_delta(self.plan.output_bits);
        let logits = self
            .plan
            .output
            .iter()
            .map(|row| {
                affine(
                    &hidden[0],
                    &row.terms,
                    1,
                    hidden,
                    (row.constant as u64).wrapping_mul(d),
                )
            })
            .collect();
        Ok(EncryptedOutput { logits })
    }

    /// The whole model on an encrypted input.
    pub fn eval(&self, input: &EncryptedInput) -> Result<EncryptedOutput, FheError> {
        self.eval_cancellable(input, &AtomicBool::new(false))
    }

    /// [`eval`](Self::eval), cooperatively cancellable: see
    /// [`eval_hidden_cancellable`](Self::eval_hidden_cancellable). The output layer (no
    /// bootstrap) is not interrupted.
    pub fn eval_cancellable(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
    ) -> Result<EncryptedOutput, FheError> {
        let hidden = self.eval_hidden_cancellable(input, cancel)?;
        if cancel.load(Ordering::Relaxed) {
            return Err(FheError::Cancelled);
        }
        self.eval_output(&hidden)
    }

    /// One keyswitch and bootstrap of `ct` with the first neuron's table: the unit cost of
    /// the hidden layers, for comparisons.
    pub fn bare_bootstrap(&self, ct: &Ciphertext) -> Ciphertext {
        self.key.apply_lookup_table(ct, &self.luts[0][0])
    }

    /// Bootstraps per query: one per hidden activation.
    pub fn bootstraps_per_query(&self) -> usize {
        self.plan.bootstraps()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tfhe::core_crypto::prelude::{DecompositionLevelCount, GlweDimension, PolynomialSize};

    fn shape() -> PublicShape {
        let m = veil_nn::bundled_model().unwrap().quantized;
        PublicShape::of(&m.architecture).unwrap()
    }

    #[test]
    fn honest_keys_and_ciphertexts_conform_and_a_key_of_other_dimensions_does_not() {
        let client = FheClient::new(shape());
        let key = client.compressed_evaluation_key();
        check_compressed_key(&key).unwrap();
        let input = client.encrypt(&[7; 64]).unwrap();
        assert!(input
            .cts
            .iter()
            .all(|c| c.is_conformant(&input_conformance())));

        // A bootstrapping key of GLWE size 32 and polynomial size 128: as many words.
        let mut p = parameters();
        p.glwe_dimension = GlweDimension(31);
        p.polynomial_size = PolynomialSize(128);
        p.ks_level = DecompositionLevelCount(2);
        let bad = CompressedServerKey::new(&ClientKey::new(p));
        assert_eq!(
            bad.bootstrapping_key_size_elements(),
            key.bootstrapping_key_size_elements()
        );
        let e = check_compressed_key(&bad).unwrap_err().to_string();
        assert!(e.contains("GLWE size 32, polynomial size 128"), "{e}");

        // The expanded server refuses a query whose ciphertext has another degree, and a
        // cancelled evaluation stops before its first bootstrap.
        let m = veil_nn::bundled_model().unwrap().quantized;
        let server = FheServer::new(&m, key.decompress()).unwrap();
        let mut q = input.clone();
        q.cts[3].degree = Degree::new(3);
        assert!(matches!(server.eval(&q), Err(FheError::Shape(w)) if w.contains("degree 3")));
        let cancel = AtomicBool::new(true);
        assert!(matches!(
            server.eval_cancellable(&input, &cancel),
            Err(FheError::Cancelled)
        ));
    }

    #[test]
    fn the_key_size_and_memory_follow_the_parameters() {
        // 918·1·2·2048 (bootstrapping) + 2048·4 (keyswitching) words.
        assert_eq!(compressed_key_words(), 3_768_320);
        let share = key_memory_bytes();
        assert!((250_000_000..300_000_000).contains(&share), "{share}");
    }
}
