//! The model loader: arbitrary text as a model file (`Model::from_json`); a model it accepts
//! must have a valid architecture, run the plaintext inference on zero inputs, give its
//! accumulator ranges, and survive a save and reload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_nn::format::Model;

/// Largest model (in weights) run per input, to keep an iteration cheap.
const MAX_WEIGHTS: usize = 200_000;
/// Largest input (in codes) run per input, for the same reason.
const MAX_INPUTS: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = Model::from_json(text) else {
        return;
    };
    let q = &model.quantized;
    let weights: usize = q.params.iter().map(|l| l.weights.len()).sum();
    if weights > MAX_WEIGHTS || q.architecture.input_count() > MAX_INPUTS {
        return;
    }
    // A loaded model has passed validation: its architecture chains.
    q.architecture
        .validate()
        .expect("a loaded model's architecture validates");
    let x = vec![0u8; q.architecture.input_count()];
    let _ = q.logits(&x);
    let _ = q.ranges();
    let again = Model::from_json(&model.to_json()).expect("a saved model reloads");
    assert_eq!(again.to_json(), model.to_json());
});
