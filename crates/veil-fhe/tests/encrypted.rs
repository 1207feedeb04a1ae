//! Encrypted inference against the plaintext integer inference, on a few test images. (The
//! whole test split, the failure rate and the timings are `veil fhe eval`'s job.)

use std::sync::OnceLock;

use veil_fhe::{FheClient, FheServer};
use veil_nn::data::digits_split;
use veil_nn::quant::argmax_i64;

/// Keys are generated once for the whole test binary.
fn fixture() -> &'static (FheClient, FheServer) {
    static KEYS: OnceLock<(FheClient, FheServer)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let model = veil_nn::bundled_model().unwrap().quantized;
        let shape = veil_fhe::PublicShape::of(&model.architecture).unwrap();
        let (client, key) = FheClient::generate(shape);
        (client, FheServer::new(&model, key).unwrap())
    })
}

#[test]
fn encrypted_inference_matches_the_plaintext_integers() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let (client, server) = fixture();
    assert_eq!(server.bootstraps_per_query(), 24);
    let r = model.architecture.ops[1].requant().unwrap();
    let mut checked = 0;
    for s in digits_split().test.samples.iter() {
        let codes = model.quantize_input(&s.pixels);
        let tensors = model.tensors(&codes);
        let (accs, logits) = (&tensors[1], &tensors[3]);
        // Images whose top two logits are far apart, so one rare bootstrap failure (which moves
        // an activation by one step) cannot change the class.
        let mut sorted = logits.clone();
        sorted.sort_unstable();
        if sorted[9] - sorted[8] < 40 {
            continue;
        }
        let input = client.encrypt(&codes).unwrap();
        let hidden = server.eval_hidden(&input).unwrap();
        let mut off = 0;
        for (ct, acc) in hidden.iter().zip(accs) {
            let y = veil_fhe::decode_logit(client.phase(ct), server.plan().output_bits);
            // A bootstrap either returns the exact activation or, rarely, a neighbour.
            assert!(
                (y - r.apply(*acc)).abs() <= 1,
                "hidden {y} vs {}",
                r.apply(*acc)
            );
            off += usize::from(y != r.apply(*acc));
        }
        assert!(off <= 2, "{off} of 24 bootstraps failed on one image");
        let got = client
            .decrypt(&server.eval_output(&hidden).unwrap())
            .unwrap();
        assert_eq!(argmax_i64(&got), argmax_i64(logits));
        for (a, b) in got.iter().zip(logits) {
            assert!(
                (a - b).abs() <= 8 * i64::from(off as u32 + 1),
                "logit {a} vs {b}"
            );
        }
        checked += 1;
        if checked == 2 {
            break;
        }
    }
    assert_eq!(checked, 2);
}

#[test]
fn malformed_queries_are_errors_not_panics() {
    let (client, server) = fixture();
    assert!(client.encrypt(&[1, 2, 3]).is_err());
    assert!(client.encrypt(&[16; 64]).is_err());
    let mut q = client.encrypt(&[0; 64]).unwrap();
    q.cts.pop();
    assert!(server.eval(&q).is_err());
    assert!(server.eval_output(&[]).is_err());
}

/// Found by the `fhe_messages` fuzz target: a server's answer holding ten ciphertexts of LWE
/// size 2 made `FheClient::decrypt` panic on tfhe's dimension assertion; it is now an error.
#[test]
fn decrypt_rejects_logits_of_another_size() {
    const ANSWER: &str = "0a02000000400f010404000002000000400f010404000002000000400f0104040000\
        02000000400f010404000002000000400f010404000002000000400f010404000002000000400f0104040000\
        02000000400f010404000002000000400f010404000002000000400f0104040000";
    let bytes: Vec<u8> = (0..ANSWER.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&ANSWER[i..i + 2], 16).unwrap())
        .collect();
    let (out, used): (veil_fhe::EncryptedOutput, usize) =
        bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
    assert_eq!((used, out.logits.len()), (bytes.len(), 10));
    let client = FheClient::new(veil_fhe::PublicShape {
        inputs: 2,
        input_max: 15,
        outputs: 10,
        output_bits: 12,
    });
    let err = client.decrypt(&out).unwrap_err();
    assert!(matches!(err, veil_fhe::FheError::Shape(_)), "{err}");
}

/// The activations the encrypted (single) hidden stage produces for `input`, read through twin
/// bootstraps at a readable scale.
fn encrypted_activations(input: &veil_fhe::EncryptedInput) -> Vec<i64> {
    let (client, server) = fixture();
    let bits = veil_fhe::readable_bits(server.plan().stages[0].requant);
    let stages = server.eval_stages(input).unwrap();
    let readable = server.readable_activations(input, &stages).unwrap();
    readable[0]
        .iter()
        .map(|ct| veil_fhe::decode_logit(client.phase(ct), bits))
        .collect()
}

/// The class-only answer: the argmax computed under encryption, one ciphertext out of a
/// bootstrap. On images whose two largest logits are close (a difference of a few units, where
/// the coarse levels cannot decide and the finest must), the class decrypted is exactly the
/// argmax of the logits of the activations the encrypted hidden stage produced (read through
/// twin bootstraps), and the plaintext integer model's when no hidden bootstrap failed.
#[test]
fn the_encrypted_argmax_is_the_argmax_of_the_encrypted_activations() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let (client, server) = fixture();
    let plan = server.plan();
    let argmax = server.argmax_plan().unwrap();
    assert!(argmax.levels.len() >= 2);
    assert!(argmax.failure_bound() < 1e-9);
    let mut checked = 0;
    for s in digits_split().test.samples.iter() {
        let codes = model.quantize_input(&s.pixels);
        let tensors = model.tensors(&codes);
        let mut sorted = tensors[3].clone();
        sorted.sort_unstable();
        if sorted[9] - sorted[8] > 6 {
            continue;
        }
        let input = client.encrypt(&codes).unwrap();
        let h = encrypted_activations(&input);
        let logits = plan.logits_of(&h);
        let out = server.eval_class(&input).unwrap();
        let class = client.decrypt_class(&out).unwrap();
        assert_eq!(class, argmax_i64(&logits), "logits {logits:?}");
        if h == tensors[2] {
            assert_eq!(class, argmax_i64(&tensors[3]));
        }
        checked += 1;
        if checked == 2 {
            break;
        }
    }
    assert_eq!(checked, 2);
    // An answer of another size is an error, not a panic.
    let mut bad = veil_fhe::EncryptedClass {
        class: client.encrypt(&[0; 64]).unwrap().cts[0].clone(),
    };
    assert_eq!(client.decrypt_class(&bad).unwrap(), 0);
    bad.class.ct = tfhe::core_crypto::prelude::LweCiphertextOwned::new(
        0u64,
        tfhe::core_crypto::prelude::LweSize(2),
        bad.class.ct.ciphertext_modulus(),
    );
    assert!(client.decrypt_class(&bad).is_err());
}

/// The argmax's noise model takes a bootstrap's output noise as at most
/// `PBS_SIGMA_SLOTS` standard deviations of a slot: measured on the hidden bootstraps' outputs
/// (their error to the nearest multiple of the output scale, eight slots, so that a failed
/// bootstrap counts as its noise only).
#[test]
fn pbs_output_noise_is_within_the_model() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let (client, server) = fixture();
    let bits = server.plan().output_bits;
    let slot = veil_fhe::plan::slot(veil_fhe::polynomial_size()) as f64;
    let mut errors = Vec::new();
    for s in digits_split().test.samples.iter().skip(20).take(8) {
        let input = client.encrypt(&model.quantize_input(&s.pixels)).unwrap();
        for ct in server.eval_hidden(&input).unwrap() {
            let phase = client.phase(&ct);
            let nearest = (veil_fhe::decode_logit(phase, bits) as u64) << (64 - bits);
            errors.push(phase.wrapping_sub(nearest) as i64 as f64 / slot);
        }
    }
    let n = errors.len() as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let sd = (errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n).sqrt();
    assert!(
        sd < veil_fhe::argmax::PBS_SIGMA_SLOTS,
        "bootstrap output noise {sd:.3} slots"
    );
    assert!(sd > 0.05, "{sd}: no noise measured");
}

/// The logits answer as bootstrapped digits: each logit decrypted from its digits is exactly
/// the logit of the activations the encrypted hidden stage produced.
#[test]
fn bootstrapped_digits_carry_the_logits_of_the_encrypted_activations() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let (client, server) = fixture();
    let plan = server.plan();
    let d = server.digits_plan().unwrap();
    assert!(d.digits >= 2);
    for s in digits_split().test.samples.iter().skip(7).take(2) {
        let input = client.encrypt(&model.quantize_input(&s.pixels)).unwrap();
        let want = plan.logits_of(&encrypted_activations(&input));
        let out = server.eval_digits(&input).unwrap();
        let bytes = bincode::serde::encode_to_vec(&out, bincode::config::standard()).unwrap();
        let (out, used): (veil_fhe::EncryptedDigits, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(out.digits.len(), 10 * d.digits as usize);
        assert_eq!(client.decrypt_digits(&out).unwrap(), want);
        // A count or width that does not fit is an error, not a panic.
        let mut bad = out.clone();
        bad.digits.pop();
        assert!(client.decrypt_digits(&bad).is_err());
        bad.digit_bits = 0;
        assert!(client.decrypt_digits(&bad).is_err());
    }
}
