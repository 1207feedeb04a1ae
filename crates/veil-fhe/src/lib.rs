//! `veil-fhe`: encrypted inference with TFHE (Chillotti, Gama, Georgieva and Izabachène,
//! J. Cryptology 2020) through the `tfhe` crate.
//!
//! The client encrypts its input codes; the server evaluates veil-nn's quantized MLP on the
//! ciphertexts with its plaintext weights: the hidden layer as LWE linear combinations (no
//! bootstrap), then ReLU and requantization fused into one programmable bootstrap per hidden
//! neuron, then either the class alone, computed under encryption by the bootstraps of
//! [`argmax`] so that the client decrypts one ciphertext out of a bootstrap, or the output layer
//! as linear combinations again, left as wide accumulators (the logits) that the client
//! decrypts. [`plan`] gives the encoding and why it reproduces the plaintext integer inference;
//! this module holds the keys and the two roles.
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

pub mod argmax;
pub mod digits;
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

pub use argmax::ArgmaxPlan;
pub use digits::DigitsPlan;
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

    /// Decrypts a class-only answer.
    ///
    /// # Errors
    ///
    /// [`FheError::Shape`] for a ciphertext of other dimensions than the key's, or a class out
    /// of range (a server that did not follow the protocol).
    pub fn decrypt_class(&self, out: &EncryptedClass) -> Result<usize, FheError> {
        check_answer(std::slice::from_ref(&out.class))?;
        let bits = argmax::class_bits(self.shape.outputs);
        let class = decode_logit(self.phase(&out.class), bits);
        usize::try_from(class)
            .ok()
            .filter(|&c| c < self.shape.outputs)
            .ok_or_else(|| {
                FheError::Shape(format!(
                    "class {class} decrypted, of {} classes",
                    self.shape.outputs
                ))
            })
    }

    /// Decrypts logits sent as bootstrapped digits.
    ///
    /// # Errors
    ///
    /// [`FheError::Shape`] for a digit width or a count of ciphertexts that does not fit the
    /// model's logits, a ciphertext of other dimensions than the key's, or a digit out of range.
    pub fn decrypt_digits(&self, out: &EncryptedDigits) -> Result<Vec<i64>, FheError> {
        let (b, bits) = (out.digit_bits, self.shape.output_bits);
        if !(1..=8).contains(&b) || !(2..=40).contains(&bits) {
            return Err(FheError::Shape(format!(
                "digits of {b} bits for logits of {bits}"
            )));
        }
        let k = bits.div_ceil(b) as usize;
        if out.digits.len() != self.shape.outputs * k {
            return Err(FheError::Shape(format!(
                "{} digit ciphertexts, expected {} logits of {k} digits",
                out.digits.len(),
                self.shape.outputs
            )));
        }
        check_answer(&out.digits)?;
        let cb = digits::client_bits(b);
        out.digits
            .chunks(k)
            .map(|ds| {
                let mut l = 0i64;
                for (t, ct) in ds.iter().enumerate() {
                    let d = decode_logit(self.phase(ct), cb);
                    if !(0..1i64 << b).contains(&d) {
                        return Err(FheError::Shape(format!("a digit of {d}")));
                    }
                    l += d << (b * t as u32);
                }
                Ok(l - (1i64 << (bits - 1)))
            })
            .collect()
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
        check_answer(&out.logits)?;
        Ok(out
            .logits
            .iter()
            .map(|ct| decode_logit(self.phase(ct), self.shape.output_bits))
            .collect())
    }
}

/// Checks ciphertexts that come from the server: one of another size or modulus than the
/// key's would trip tfhe's assertions.
fn check_answer(cts: &[Ciphertext]) -> Result<(), FheError> {
    let params = parameters();
    let lwe_size = params.glwe_dimension.0 * params.polynomial_size.0 + 1;
    if let Some(ct) = cts.iter().find(|ct| {
        ct.ct.lwe_size().0 != lwe_size || ct.ct.ciphertext_modulus() != params.ciphertext_modulus
    }) {
        return Err(FheError::Shape(format!(
            "an answer ciphertext of LWE size {} (expected {lwe_size}) or of another modulus",
            ct.ct.lwe_size().0
        )));
    }
    Ok(())
}

/// The server: the model's plan, its lookup tables and a client's evaluation key.
pub struct FheServer {
    plan: FhePlan,
    /// One table per hidden value, per stage.
    luts: Vec<Vec<LookupTableOwned>>,
    /// The encrypted argmax's plan and tables, or why the model has none.
    argmax: Result<ArgmaxTables, PlanError>,
    /// The bootstrapped logits' plan and tables, or why the model has none.
    digits: Result<DigitsTables, PlanError>,
    key: ServerKey,
}

/// The tables of the bootstrapped logits ([`digits`]).
struct DigitsTables {
    plan: DigitsPlan,
    /// The last hidden stage at each step's scale: `[step][value]`.
    hidden: Vec<Vec<LookupTableOwned>>,
    fold: LookupTableOwned,
    /// A digit for the client.
    client: LookupTableOwned,
    /// Digit `s` at step `t`'s scale: `[s][t − s − 1]`.
    subtract: Vec<Vec<LookupTableOwned>>,
}

impl DigitsTables {
    fn new(plan: &FhePlan) -> Result<DigitsTables, PlanError> {
        let d = DigitsPlan::new(plan)?;
        let s = plan.stages.len() - 1;
        let hidden = (0..d.digits)
            .map(|t| {
                (0..d.hidden)
                    .map(|j| lookup_table(plan, s, j, d.hidden_scale(t)))
                    .collect()
            })
            .collect();
        let subtract = (0..d.digits)
            .map(|sd| {
                (sd + 1..d.digits)
                    .map(|t| table_of(&d.digit_table(d.subtract_scale(sd, t))))
                    .collect()
            })
            .collect();
        Ok(DigitsTables {
            fold: table_of(&d.fold_table()),
            client: table_of(&d.digit_table(d.client_scale())),
            hidden,
            subtract,
            plan: d,
        })
    }
}

/// Logits as bootstrapped digits: `digits[i · K + t]` is digit `t` of logit `i`.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedDigits {
    /// Bits per digit `b` (the server's plan: it depends on the output weights' norms).
    pub digit_bits: u32,
    /// The digits, logit by logit, lowest first, each at scale `2^(64 − b − 2)`.
    pub digits: Vec<Ciphertext>,
}

/// The tables of the encrypted argmax ([`argmax`]).
struct ArgmaxTables {
    plan: ArgmaxPlan,
    /// The last hidden stage at each level's scale: `[level][digit][value]`.
    hidden: Vec<Vec<Vec<LookupTableOwned>>>,
    /// One sign table per level.
    levels: Vec<LookupTableOwned>,
    /// `S` to `±W/2`.
    sign: LookupTableOwned,
    /// Class `i`'s wins to `i` or 0 (index 0 unused).
    winners: Vec<LookupTableOwned>,
    /// The class, re-encrypted at the client's scale.
    class: LookupTableOwned,
    /// Each pair's terms over the flattened `[digit][value]` hidden ciphertexts of a level.
    pair_terms: Vec<Vec<(u32, i64)>>,
}

impl ArgmaxTables {
    fn new(plan: &FhePlan) -> Result<ArgmaxTables, PlanError> {
        let a = ArgmaxPlan::new(plan)?;
        let s = plan.stages.len() - 1;
        let hidden = (0..a.levels.len())
            .map(|k| {
                (0..a.digits)
                    .map(|q| {
                        (0..a.hidden)
                            .map(|j| lookup_table(plan, s, j, a.hidden_scale(k, q)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        let levels = (0..a.levels.len())
            .map(|k| table_of(&a.level_table(k)))
            .collect();
        let winners = (0..a.classes)
            .map(|i| table_of(&a.winner_table(i)))
            .collect();
        let h = a.hidden as u32;
        let pair_terms = a
            .pairs
            .iter()
            .map(|p| p.terms.iter().map(|&(k, q, c)| (q * h + k, c)).collect())
            .collect();
        Ok(ArgmaxTables {
            sign: table_of(&a.sign_table()),
            class: table_of(&a.class_table()),
            hidden,
            levels,
            winners,
            pair_terms,
            plan: a,
        })
    }
}

/// An encrypted class: one ciphertext, the output of a bootstrap.
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedClass {
    /// The class index at scale `2^(64 − class_bits)` ([`argmax::class_bits`]).
    pub class: Ciphertext,
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
    table_of(&plan.lookup_table_at(s, j, scale))
}

/// A bootstrap table whose entry `s` is returned for a phase that rounds to slot `s` (and
/// negated in the upper half of the torus).
fn table_of(values: &[u64]) -> LookupTableOwned {
    let params = parameters();
    let mut acc = GlweCiphertext::new(
        0u64,
        GlweSize(params.glwe_dimension.0 + 1),
        params.polynomial_size,
        params.ciphertext_modulus,
    );
    let mut body = acc.get_mut_body();
    body.as_mut().copy_from_slice(values);
    // The degree is tfhe's bookkeeping for its own encoding, which veil-fhe does not use.
    LookupTableOwned {
        acc,
        degree: Degree::new(1),
    }
}

/// `Σ coef · ct + constant` over ciphertexts given by reference.
fn combine<'a>(
    template: &Ciphertext,
    terms: impl IntoIterator<Item = (&'a Ciphertext, i64)>,
    constant: u64,
) -> Ciphertext {
    let mut acc = template.clone();
    let out = acc.ct.as_mut();
    out.fill(0);
    for (ct, c) in terms {
        let c = c as u64;
        for (o, x) in out.iter_mut().zip(ct.ct.as_ref()) {
            *o = o.wrapping_add(x.wrapping_mul(c));
        }
    }
    if let Some(b) = out.last_mut() {
        *b = b.wrapping_add(constant);
    }
    acc
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
        let argmax = ArgmaxTables::new(&plan);
        let digits = DigitsTables::new(&plan);
        Ok(FheServer {
            plan,
            luts,
            argmax,
            digits,
            key,
        })
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
        let mut all = self.run_stages(input, cancel, false, self.plan.stages.len())?;
        all.pop()
            .ok_or_else(|| FheError::Shape("the plan has no stage".into()))
    }

    /// Every hidden stage's bootstrapped outputs, input side first (for diagnostics with the
    /// client key: stage `s`'s values are encoded at `plan().stages[s].out_delta`).
    pub fn eval_stages(&self, input: &EncryptedInput) -> Result<Vec<Vec<Ciphertext>>, FheError> {
        let all = self.plan.stages.len();
        self.run_stages(input, &AtomicBool::new(false), true, all)
    }

    /// The first `count` stages; the outputs of the last one run (or the inputs when `count`
    /// is 0), and with `keep_all` those of every stage.
    fn run_stages(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
        keep_all: bool,
        count: usize,
    ) -> Result<Vec<Vec<Ciphertext>>, FheError> {
        self.check(input)?;
        let mut kept = Vec::new();
        let mut cts = input.cts.clone();
        for (s, stage) in self.plan.stages.iter().enumerate().take(count) {
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
            if keep_all && s + 1 < count {
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

    /// The whole model on an encrypted input, the logits left as wide accumulators: linear
    /// combinations of the last bootstraps, whose noise grows with the weights. A diagnostic
    /// for a holder of the client key; a server answers with [`eval_class`](Self::eval_class)
    /// or [`eval_digits`](Self::eval_digits), whose every ciphertext comes out of a bootstrap.
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

    /// The encrypted argmax's plan, or why this model has none (an output layer too noisy for
    /// the parameter set).
    pub fn argmax_plan(&self) -> Result<&ArgmaxPlan, PlanError> {
        self.argmax.as_ref().map(|t| &t.plan).map_err(Clone::clone)
    }

    /// Bootstraps per query of a class-only answer: the hidden stages before the last, then
    /// the encrypted argmax ([`ArgmaxPlan::bootstraps`]).
    pub fn bootstraps_per_class_query(&self) -> Result<usize, PlanError> {
        Ok(self.bootstraps_before_last() + self.argmax_plan()?.bootstraps())
    }

    /// Bootstraps of the hidden stages before the last.
    fn bootstraps_before_last(&self) -> usize {
        self.plan.stages[..self.plan.stages.len() - 1]
            .iter()
            .map(|s| s.neurons.len())
            .sum()
    }

    /// One bootstrap, unless `cancel` is set.
    fn bootstrap(
        &self,
        ct: &Ciphertext,
        lut: &LookupTableOwned,
        cancel: &AtomicBool,
    ) -> Result<Ciphertext, FheError> {
        if cancel.load(Ordering::Relaxed) {
            return Err(FheError::Cancelled);
        }
        Ok(self.key.apply_lookup_table(ct, lut))
    }

    /// The last hidden stage's accumulators (the stages before it run): what an answer's
    /// bootstraps start from.
    fn last_accumulators(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
    ) -> Result<Vec<Ciphertext>, FheError> {
        let last = self.plan.stages.len() - 1;
        let inputs = self
            .run_stages(input, cancel, false, last)?
            .pop()
            .ok_or_else(|| FheError::Shape("the plan has no stage".into()))?;
        let stage = &self.plan.stages[last];
        let accs: Vec<Ciphertext> = (0..stage.neurons.len())
            .into_par_iter()
            .map(|j| {
                affine(
                    &inputs[0],
                    &stage.mults[j],
                    1,
                    &inputs,
                    stage.neurons[j].offset,
                )
            })
            .collect();
        if accs.is_empty() {
            return Err(FheError::Shape("the last stage has no value".into()));
        }
        Ok(accs)
    }

    /// The model on an encrypted input, answered with the class alone: the encrypted argmax
    /// of [`argmax`], every returned ciphertext out of a bootstrap.
    pub fn eval_class(&self, input: &EncryptedInput) -> Result<EncryptedClass, FheError> {
        self.eval_class_cancellable(input, &AtomicBool::new(false))
    }

    /// [`eval_class`](Self::eval_class), cooperatively cancellable as
    /// [`eval_cancellable`](Self::eval_cancellable) is.
    pub fn eval_class_cancellable(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
    ) -> Result<EncryptedClass, FheError> {
        let t = self
            .argmax
            .as_ref()
            .map_err(|e| FheError::Plan(e.clone()))?;
        let a = &t.plan;
        let pbs = |ct: &Ciphertext, lut: &LookupTableOwned| self.bootstrap(ct, lut, cancel);
        // The last stage's accumulators once, then bootstrapped at every level and digit.
        let accs = self.last_accumulators(input, cancel)?;
        let template = &accs[0];
        let (levels, digits, h) = (a.levels.len(), a.digits as usize, a.hidden);
        let flat: Vec<Ciphertext> = (0..levels * digits * h)
            .into_par_iter()
            .map(|x| {
                let (k, q, j) = (x / (digits * h), x / h % digits, x % h);
                pbs(&accs[j], &t.hidden[k][q][j])
            })
            .collect::<Result<_, _>>()?;
        let per_level = digits * h;
        // Every pair at every level: t_k · V.
        let npairs = a.pairs.len();
        let signs: Vec<Ciphertext> = (0..levels * npairs)
            .into_par_iter()
            .map(|x| {
                let (k, p) = (x / npairs, x % npairs);
                let hidden = &flat[k * per_level..(k + 1) * per_level];
                let ct = affine(template, &t.pair_terms[p], 1, hidden, a.pair_constant(p, k));
                pbs(&ct, &t.levels[k])
            })
            .collect::<Result<_, _>>()?;
        // Each pair's bit: S = Σ 2^(L−1−k) t_k, to ±W/2.
        let bits: Vec<Ciphertext> = (0..npairs)
            .into_par_iter()
            .map(|p| {
                let s = combine(
                    template,
                    (0..levels).map(|k| (&signs[k * npairs + p], a.level_weight(k))),
                    0,
                );
                pbs(&s, &t.sign)
            })
            .collect::<Result<_, _>>()?;
        // Class i's wins, W each, plus W/2: b_ij = out_ij + W/2 for i < j, W/2 − out_ji else.
        let c = a.classes;
        let index = |i: usize, j: usize| -> usize {
            // Pairs are (0,1), (0,2), …: pair (i, j), i < j, is at i·(2C − i − 1)/2 + j − i − 1.
            i * (2 * c - i - 1) / 2 + j - i - 1
        };
        let half = a.win_unit / 2;
        let winners: Vec<Ciphertext> = (1..c)
            .into_par_iter()
            .map(|i| {
                let terms = (0..c).filter(|&j| j != i).map(|j| {
                    if i < j {
                        (&bits[index(i, j)], 1)
                    } else {
                        (&bits[index(j, i)], -1)
                    }
                });
                let constant = (c as u64 - 1).wrapping_mul(half).wrapping_add(half);
                let wins = combine(template, terms, constant);
                pbs(&wins, &t.winners[i])
            })
            .collect::<Result<_, _>>()?;
        let class = combine(template, winners.iter().map(|w| (w, 1)), a.class_unit / 2);
        Ok(EncryptedClass {
            class: pbs(&class, &t.class)?,
        })
    }

    /// The bootstrapped logits' plan, or why this model has none.
    pub fn digits_plan(&self) -> Result<&DigitsPlan, PlanError> {
        self.digits.as_ref().map(|t| &t.plan).map_err(Clone::clone)
    }

    /// Bootstraps per query of a logits answer sent as bootstrapped digits.
    pub fn bootstraps_per_digits_query(&self) -> Result<usize, PlanError> {
        Ok(self.bootstraps_before_last() + self.digits_plan()?.bootstraps())
    }

    /// The model on an encrypted input, answered with its logits as bootstrapped digits
    /// ([`digits`]): every returned ciphertext is the output of a bootstrap.
    pub fn eval_digits(&self, input: &EncryptedInput) -> Result<EncryptedDigits, FheError> {
        self.eval_digits_cancellable(input, &AtomicBool::new(false))
    }

    /// [`eval_digits`](Self::eval_digits), cooperatively cancellable.
    pub fn eval_digits_cancellable(
        &self,
        input: &EncryptedInput,
        cancel: &AtomicBool,
    ) -> Result<EncryptedDigits, FheError> {
        let t = self
            .digits
            .as_ref()
            .map_err(|e| FheError::Plan(e.clone()))?;
        let d = &t.plan;
        let pbs = |ct: &Ciphertext, lut: &LookupTableOwned| self.bootstrap(ct, lut, cancel);
        let accs = self.last_accumulators(input, cancel)?;
        let template = &accs[0];
        let (steps, h) = (d.digits as usize, d.hidden);
        let hidden: Vec<Ciphertext> = (0..steps * h)
            .into_par_iter()
            .map(|x| pbs(&accs[x % h], &t.hidden[x / h][x % h]))
            .collect::<Result<_, _>>()?;
        // Logit by logit (in parallel), step by step.
        let per_logit: Vec<Vec<Ciphertext>> = self
            .plan
            .output
            .par_iter()
            .map(|row| {
                let mut client = Vec::with_capacity(steps);
                // subtract[s][t − s − 1]: digit s at step t's scale.
                let mut subtract: Vec<Vec<Ciphertext>> = Vec::with_capacity(steps);
                for step in 0..steps {
                    let at = &hidden[step * h..(step + 1) * h];
                    let mut res = affine(
                        template,
                        &row.terms,
                        1,
                        at,
                        d.constant(row.constant, step as u32),
                    );
                    let earlier = subtract
                        .iter()
                        .enumerate()
                        .map(|(s, v)| (&v[step - s - 1], -1));
                    res = combine(template, std::iter::once((&res, 1)).chain(earlier), 0);
                    let folded = if step + 1 < steps {
                        let sign = pbs(&res, &t.fold)?;
                        combine(template, [(&res, 1), (&sign, -1)], d.fold_constant())
                    } else {
                        res
                    };
                    client.push(pbs(&folded, &t.client)?);
                    subtract.push(
                        t.subtract[step]
                            .iter()
                            .map(|lut| pbs(&folded, lut))
                            .collect::<Result<_, _>>()?,
                    );
                }
                Ok(client)
            })
            .collect::<Result<_, FheError>>()?;
        Ok(EncryptedDigits {
            digit_bits: d.digit_bits,
            digits: per_logit.into_iter().flatten().collect(),
        })
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
