//! Embedding Veil's model layer: load the bundled model and classify a few test digits with
//! the exact integer arithmetic that the private protocols reproduce.
//!
//! Run with `cargo run --example classify`.

use veil::nn::data::digits_split;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = veil::nn::bundled_model()?;
    let q = &model.quantized;
    let test = digits_split().test;
    println!("model {} ({})", model.name, q.architecture.describe());
    for s in test.samples.iter().take(8) {
        let codes = q.quantize_input(&s.pixels);
        let logits = q.logits(&codes);
        println!(
            "label {}  predicted {}  logits {:?}",
            s.label,
            q.predict_codes(&codes),
            logits
        );
    }
    Ok(())
}
