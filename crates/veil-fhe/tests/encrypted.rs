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
