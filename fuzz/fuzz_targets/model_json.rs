//! The model loader: arbitrary text as a model file (`Model::from_json`); a model it accepts
//! must give its architecture, run the plaintext inference on zero inputs, and survive a save
//! and reload.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_nn::compile::Architecture;
use veil_nn::format::Model;

/// Largest model (in weights) run per input, to keep an iteration cheap.
const MAX_WEIGHTS: usize = 200_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = Model::from_json(text) else {
        return;
    };
    let q = &model.quantized;
    let weights: usize = q.layers.iter().map(|l| l.weights.len()).sum();
    if weights > MAX_WEIGHTS {
        return;
    }
    let _ = Architecture::of(q);
    if let Some(first) = q.layers.first() {
        let x = vec![0u8; first.inputs];
        let _ = q.logits(&x);
        let _ = q.accumulator_ranges();
    }
    let again = Model::from_json(&model.to_json()).expect("a saved model reloads");
    assert_eq!(again.to_json(), model.to_json());
});
