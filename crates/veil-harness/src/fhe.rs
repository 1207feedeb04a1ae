//! Encrypted inference with TFHE, the client and server roles in one process, over a test
//! split (the model's dataset): accuracy, agreement with the plaintext integer model, timings,
//! bootstrap counts and failure rates, and key and ciphertext sizes.

use std::time::Instant;

use anyhow::Result;
use serde::Serialize;
use veil_fhe::{FheClient, FheServer};
use veil_nn::quant::argmax_i64;
use veil_nn::Model;

use crate::progress::Progress;
use crate::stats::{fraction, median, p95};

pub use veil_protocols::he::Answer;

/// What an encrypted evaluation ([`eval`]) reports.
#[derive(Debug, Serialize)]
pub struct FheReport {
    /// What the server answered: `"class"` (the encrypted argmax) or `"logits"`.
    pub answer: &'static str,
    /// Test images evaluated.
    pub samples: usize,
    /// Fraction classified correctly under encryption.
    pub accuracy: f64,
    /// Fraction whose encrypted prediction equals the plaintext integer model's.
    pub agreement: f64,
    /// Accuracy of the plaintext integer model on the same images.
    pub plaintext_accuracy: f64,
    /// Median server evaluation time per sample, in milliseconds.
    pub server_ms_median: f64,
    /// 95th percentile of the same.
    pub server_ms_p95: f64,
    /// Median client encryption time per sample.
    pub encrypt_ms_median: f64,
    /// Median client decryption time per sample.
    pub decrypt_ms_median: f64,
    /// Median time of one bare keyswitch and bootstrap on this machine.
    pub bare_pbs_ms_median: f64,
    /// Bootstraps per sample: one per hidden neuron, and the encrypted argmax's for a class
    /// answer.
    pub pbs_per_sample: usize,
    /// Class answers: the argmax's levels of sign (0 for logits answers).
    pub argmax_levels: usize,
    /// Class answers: radix of the output weights' digits in the argmax (1: whole weights).
    pub argmax_radix: i64,
    /// Logits answers: bits per bootstrapped digit of a logit (0 for class answers).
    pub digit_bits: u32,
    /// Bootstraps of the answer per sample beyond the hidden stages before the last (the
    /// encrypted argmax, or the logits' digits), in `pbs_per_sample`.
    pub answer_pbs: usize,
    /// Answers that differ from what the activations the encrypted hidden stages produced
    /// imply (the argmax of their logits, or those logits): failures of the answer's own
    /// bootstraps.
    pub answer_failures: usize,
    /// `answer_failures` over the samples.
    pub answer_failure_rate: f64,
    /// The plan's bound on the probability that an answer's bootstraps misread, under its
    /// Gaussian noise model (`veil_fhe::ArgmaxPlan::failure_bound`,
    /// `veil_fhe::DigitsPlan::failure_bound`).
    pub answer_failure_bound: f64,
    /// Hidden bootstraps whose noise chose another table entry than the noiseless phase of the
    /// same encrypted inputs would have (read through a twin bootstrap at a readable scale).
    pub pbs_failures: usize,
    /// `pbs_failures` over the hidden bootstraps (one per hidden neuron and sample).
    pub pbs_failure_rate: f64,
    /// The failure rate of each stage of bootstraps (each ReLU layer), input side first.
    pub pbs_failure_rate_per_stage: Vec<f64>,
    /// Per stage, the fraction of encrypted activations that differ from the plaintext integer
    /// model's: bootstrap failures, the approximate rounding of accumulators wider than the
    /// slots (see `veil_fhe::plan`), and errors carried in from earlier stages.
    pub activation_mismatch_rate_per_stage: Vec<f64>,
    /// Logits that differ from the plaintext ones, over all logits (logit answers).
    pub logit_mismatch_rate: f64,
    /// Largest difference between an encrypted and a plaintext logit.
    pub logit_max_abs_error: i64,
    /// Key generation time (client and evaluation key), in milliseconds.
    pub keygen_ms: f64,
    /// Serialized evaluation key (what the server needs), in bytes.
    pub server_key_bytes: usize,
    /// Serialized compressed (seeded) evaluation key, in bytes.
    pub server_key_compressed_bytes: usize,
    /// Serialized encrypted query, in bytes.
    pub query_bytes: usize,
    /// Serialized encrypted answer, in bytes.
    pub answer_bytes: usize,
}

fn size_of<T: Serialize>(v: &T) -> usize {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map(|b| b.len())
        .unwrap_or(0)
}

/// Runs the evaluation on the first `samples` test images of the model's dataset (all if
/// `None`), the server answering with `answer`. Progress: a phase for key generation, one for
/// the compressed key, then one of a step per image.
pub fn eval(
    model: &Model,
    samples: Option<usize>,
    answer: Answer,
    progress: &mut dyn Progress,
) -> Result<FheReport> {
    let q = &model.quantized;
    let test = crate::data::DatasetName::choose(None, Some(model)).test_set()?;
    let n = samples.unwrap_or(test.len()).min(test.len());
    // The tensors after each ReLU: what each stage's bootstraps must give.
    let relu_tensors: Vec<usize> = q
        .architecture
        .ops
        .iter()
        .enumerate()
        .filter(|(_, o)| o.requant().is_some())
        .map(|(k, _)| k + 1)
        .collect();

    progress.phase("generating keys (tfhe 128-bit parameters)", None);
    let t0 = Instant::now();
    let shape = veil_fhe::PublicShape::of(&q.architecture)?;
    let (client, server_key) = FheClient::generate(shape);
    let keygen_ms = t0.elapsed().as_secs_f64() * 1e3;
    let server_key_bytes = size_of(&server_key);
    progress.finish();

    progress.phase("measuring the compressed evaluation key", None);
    let compressed = tfhe::shortint::CompressedServerKey::new(client_key_ref(&client));
    let server_key_compressed_bytes = size_of(&compressed);
    drop(compressed);
    progress.finish();

    let server = FheServer::new(q, server_key)?;
    let hidden_pbs = server.bootstraps_per_query();
    let (pbs, answer_pbs, answer_failure_bound) = match answer {
        Answer::Logits => {
            let d = server.digits_plan()?;
            (
                server.bootstraps_per_digits_query()?,
                d.bootstraps(),
                d.failure_bound(),
            )
        }
        Answer::Class => {
            let a = server.argmax_plan()?;
            (
                server.bootstraps_per_class_query()?,
                a.bootstraps(),
                a.failure_bound(),
            )
        }
    };
    let (argmax_levels, argmax_radix) = match (answer, server.argmax_plan()) {
        (Answer::Class, Ok(a)) => (a.levels.len(), a.radix),
        _ => (0, 0),
    };
    let digit_bits = match (answer, server.digits_plan()) {
        (Answer::Logits, Ok(d)) => d.digit_bits,
        _ => 0,
    };
    let mut answer_failures = 0;

    // One bare keyswitch + bootstrap, for the overhead comparison.
    let probe = client.encrypt(&vec![0u8; shape.inputs])?;
    let mut bare = Vec::new();
    if let Some(ct) = probe.cts.first() {
        for k in 0..12 {
            let t = Instant::now();
            let _ = std::hint::black_box(server.bare_bootstrap(ct));
            // The first two warm the FFT plans and caches up.
            if k >= 2 {
                bare.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
    }

    progress.phase("encrypted inference", Some(n as u64));
    let (mut enc_ms, mut srv_ms, mut dec_ms) = (Vec::new(), Vec::new(), Vec::new());
    let (mut correct, mut agree, mut plain_correct) = (0, 0, 0);
    let (mut failures, mut logit_mismatch, mut logit_max_err) = (0usize, 0usize, 0i64);
    let mut stage_failures = vec![0usize; relu_tensors.len()];
    let mut stage_mismatch = vec![0usize; relu_tensors.len()];
    let (mut query_bytes, mut answer_bytes) = (0, 0);
    for i in 0..n {
        let label = test.label(i);
        let codes = q.quantize_input(test.image(i));
        let tensors = q.tensors(&codes);
        let t = Instant::now();
        let input = client.encrypt(&codes)?;
        enc_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if i == 0 {
            query_bytes = size_of(&input);
        }
        // The answer, timed; its hidden stages are run again, untimed, for the diagnostics
        // below.
        let t = Instant::now();
        let (stages, answered) = match answer {
            Answer::Logits => {
                let out = server.eval_digits(&input)?;
                srv_ms.push(t.elapsed().as_secs_f64() * 1e3);
                if i == 0 {
                    answer_bytes = size_of(&out);
                }
                let t = Instant::now();
                let logits = client.decrypt_digits(&out)?;
                dec_ms.push(t.elapsed().as_secs_f64() * 1e3);
                (server.eval_stages(&input)?, Ok(logits))
            }
            Answer::Class => {
                let out = server.eval_class(&input)?;
                srv_ms.push(t.elapsed().as_secs_f64() * 1e3);
                if i == 0 {
                    answer_bytes = size_of(&out);
                }
                let t = Instant::now();
                let class = client.decrypt_class(&out)?;
                dec_ms.push(t.elapsed().as_secs_f64() * 1e3);
                (server.eval_stages(&input)?, Err(class))
            }
        };

        // Diagnostics with the client key: the table entry each bootstrap chose, read through
        // a twin bootstrap of the same accumulator at a readable scale, against the entry of
        // the noiseless phase of the same (encrypted) inputs, and against the plaintext.
        let readable = server.readable_activations(&input, &stages)?;
        let plan = server.plan();
        let mut x: Vec<i64> = codes.iter().map(|&c| i64::from(c)).collect();
        for (s, ((cts, stage), &t)) in readable
            .iter()
            .zip(&plan.stages)
            .zip(&relu_tensors)
            .enumerate()
        {
            let bits = veil_fhe::readable_bits(stage.requant);
            let got: Vec<i64> = cts
                .iter()
                .map(|ct| veil_fhe::decode_logit(client.phase(ct), bits))
                .collect();
            for (j, (row, &g)) in stage.rows.iter().zip(&got).enumerate() {
                let acc = row.constant
                    + row
                        .terms
                        .iter()
                        .map(|&(i, c)| c * x.get(i as usize).copied().unwrap_or(0))
                        .sum::<i64>();
                if g != plan.noiseless_activation(s, j, acc) {
                    failures += 1;
                    stage_failures[s] += 1;
                }
            }
            stage_mismatch[s] += got.iter().zip(&tensors[t]).filter(|(a, b)| a != b).count();
            x = got;
        }
        let plain = &tensors[tensors.len() - 1];
        // The logits of the activations the encrypted last stage produced: what the answer
        // must carry.
        let of_activations = plan.logits_of(&x);
        let enc_pred = match answered {
            Ok(logits) => {
                answer_failures += usize::from(logits != of_activations);
                for (a, b) in logits.iter().zip(plain) {
                    if a != b {
                        logit_mismatch += 1;
                    }
                    logit_max_err = logit_max_err.max((a - b).abs());
                }
                argmax_i64(&logits)
            }
            Err(class) => {
                answer_failures += usize::from(class != argmax_i64(&of_activations));
                class
            }
        };
        let plain_pred = argmax_i64(plain);
        correct += usize::from(enc_pred == label);
        plain_correct += usize::from(plain_pred == label);
        agree += usize::from(enc_pred == plain_pred);
        progress.step(&format!("agreement {agree}/{}", i + 1));
    }
    progress.finish();
    let server_ms_p95 = p95(&srv_ms).unwrap_or(f64::NAN);
    Ok(FheReport {
        answer: match answer {
            Answer::Class => "class",
            Answer::Logits => "logits",
        },
        samples: n,
        accuracy: fraction(correct, n),
        agreement: fraction(agree, n),
        plaintext_accuracy: fraction(plain_correct, n),
        server_ms_median: median(srv_ms),
        server_ms_p95,
        encrypt_ms_median: median(enc_ms),
        decrypt_ms_median: median(dec_ms),
        bare_pbs_ms_median: median(bare),
        pbs_per_sample: pbs,
        argmax_levels,
        argmax_radix,
        digit_bits,
        answer_pbs,
        answer_failures,
        answer_failure_rate: fraction(answer_failures, n),
        answer_failure_bound,
        pbs_failures: failures,
        pbs_failure_rate: fraction(failures, n * hidden_pbs),
        pbs_failure_rate_per_stage: stage_failures
            .iter()
            .zip(&server.plan().stages)
            .map(|(&f, s)| fraction(f, n * s.neurons.len()))
            .collect(),
        activation_mismatch_rate_per_stage: stage_mismatch
            .iter()
            .zip(&server.plan().stages)
            .map(|(&f, s)| fraction(f, n * s.neurons.len()))
            .collect(),
        logit_mismatch_rate: fraction(logit_mismatch, n * shape.outputs),
        logit_max_abs_error: logit_max_err,
        keygen_ms,
        server_key_bytes,
        server_key_compressed_bytes,
        query_bytes,
        answer_bytes,
    })
}

fn client_key_ref(c: &FheClient) -> &tfhe::shortint::ClientKey {
    c.key()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bundled digits model is planned exactly (every accumulator has a slot of its own and
    /// its range is the exact one), so an activation of its single stage differs from the
    /// plaintext model's exactly when its bootstrap failed: the two rates the report gives
    /// must agree, sample by sample.
    #[test]
    fn activations_off_are_counted_against_the_activations_of_the_same_stage() {
        let model = veil_nn::bundled_model().unwrap();
        let report = eval(&model, Some(3), Answer::Logits, &mut ()).unwrap();
        assert_eq!(report.samples, 3);
        assert_eq!(
            report.activation_mismatch_rate_per_stage,
            report.pbs_failure_rate_per_stage
        );
        assert!(report.activation_mismatch_rate_per_stage[0] < 0.5);
    }
}
