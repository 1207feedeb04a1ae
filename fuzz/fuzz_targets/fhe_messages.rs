//! HE messages, without key generation in the loop: the server's decoding of an encrypted
//! query, and of a compressed evaluation key through `veil_protocols::he::decode_key` (size
//! cap, fixed-width encoding, conformance to the parameter set), and the
//! client's whole receive path for an answer (`he::query_one`: decode, then decrypt, of a
//! class or of logits), against a peer that sends the fuzzer's frame.
//!
//! Input: a mode byte, then the message (modes 0 and 1) or the server's frames (mode 2).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tfhe::core_crypto::prelude::{LweCiphertextOwned, LweSize};
use veil_fhe::{EncryptedInput, EncryptedOutput, FheClient, PublicShape};
use veil_fuzz::{against, encode_frames, frames, runtime, write_seed};

/// The client: two inputs, ten logits of 12 bits (the key is made once per process).
fn client() -> &'static FheClient {
    static CLIENT: OnceLock<FheClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        FheClient::new(PublicShape {
            inputs: 2,
            input_max: 15,
            outputs: 10,
            output_bits: 12,
        })
    })
}

/// Decodes as `veil_protocols::he` does: bincode standard, a 1 GiB limit, no trailing bytes.
fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let cfg = bincode::config::standard().with_limit::<{ 1 << 30 }>();
    match bincode::serde::decode_from_slice(bytes, cfg) {
        Ok((v, used)) if used == bytes.len() => Some(v),
        _ => None,
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).expect("encode")
}

fn write_seeds() {
    let c = client();
    let input = c.encrypt(&[1, 2]).expect("encrypt");
    // Real ciphertexts are 16 KiB each; shrunken copies keep the seeds small.
    let small = |n: usize| -> EncryptedOutput {
        let mut ct = input.cts[0].clone();
        ct.ct = LweCiphertextOwned::new(0u64, LweSize(n), ct.ct.ciphertext_modulus());
        EncryptedOutput {
            logits: vec![ct; 10],
        }
    };
    let one = EncryptedInput {
        cts: vec![small(3).logits[0].clone()],
    };
    write_seed("input", &[&[0u8][..], &encode(&one)].concat());
    write_seed(
        "output-small",
        &[&[2u8][..], &encode_frames(&[encode(&small(2))])].concat(),
    );
    write_seed(
        "output-4",
        &[&[2u8][..], &encode_frames(&[encode(&small(4))])].concat(),
    );
    let mut real = small(2);
    real.logits = vec![input.cts[0].clone(); 10];
    write_seed(
        "output-real",
        &[&[2u8][..], &encode_frames(&[encode(&real)])].concat(),
    );
}

fuzz_target!(
    init: {
        if veil_fuzz::seed_dir().is_some() {
            write_seeds();
        }
    },
    |data: &[u8]| {
        let Some((&mode, rest)) = data.split_first() else {
            return;
        };
        match mode % 3 {
            0 => {
                if let Some(input) = decode::<EncryptedInput>(rest) {
                    let _ = input.cts.iter().map(|c| c.ct.lwe_size().0).sum::<usize>();
                }
            }
            1 => {
                // The server's own path: size cap, fixed-width decoding, conformance check.
                if rest.len() as u64 <= veil_protocols::he::key_limit() {
                    let _ = veil_protocols::he::decode_key(rest);
                }
            }
            _ => {
                let c = client();
                runtime().block_on(against(frames(rest), |mut ch| async move {
                    // The first frame byte's parity picks the answer: the class or the logits.
                    let answer = if rest.first().is_some_and(|b| b % 2 == 0) {
                        veil_protocols::he::Answer::Class
                    } else {
                        veil_protocols::he::Answer::Logits
                    };
                    let _ = veil_protocols::he::query_one(&mut ch, c, &[3, 4], std::time::Duration::from_secs(1), answer).await;
                }));
            }
        }
    }
);
