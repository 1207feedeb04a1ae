//! The Bristol Fashion reader: arbitrary text parsed as a circuit; a circuit it accepts must
//! validate, evaluate on zero inputs, layer, and survive a write and re-read unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_circuit::{parse_bristol, write_bristol};

/// Largest accepted circuit (in gates) that is evaluated, to keep an iteration cheap.
const MAX_EVAL_GATES: usize = 100_000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(circuit) = parse_bristol(text) else {
        return;
    };
    circuit.validate().expect("a parsed circuit validates");
    if circuit.gates.len() <= MAX_EVAL_GATES {
        let zeros: Vec<Vec<bool>> = circuit
            .inputs
            .iter()
            .map(|w| vec![false; w.len()])
            .collect();
        let out = circuit.eval(&zeros).expect("a parsed circuit evaluates");
        assert_eq!(out.len(), circuit.outputs.len());
        let _ = circuit.layers();
        let _ = circuit.and_layers();
        if let Ok(written) = write_bristol(&circuit) {
            let again = parse_bristol(&written).expect("written circuits parse");
            assert_eq!(again.eval(&zeros).expect("evaluates"), out);
        }
    }
});
