//! What the hostile-client tests share: a small model and a log sink.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use veil_nn::quant::{QLayer, QuantModel, Requant};

/// A small 64-3-10 network, so that a session moves little data; the frame structure of each
/// protocol is the same as for the bundled model.
pub fn small_model() -> QuantModel {
    let hidden = 3;
    // Sparse first-layer weights keep each hidden accumulator's range within one bootstrap.
    let w1: Vec<i8> = (0..64 * hidden)
        .map(|i| {
            if i % 8 == 0 {
                ((i / 8 % 7) as i8) - 3
            } else {
                0
            }
        })
        .collect();
    let w2: Vec<i8> = (0..hidden * 10).map(|i| ((i * 3 % 15) as i8) - 7).collect();
    QuantModel {
        input_bits: 4,
        layers: vec![
            QLayer {
                inputs: 64,
                outputs: hidden,
                weight_bits: 4,
                weights: w1,
                bias: vec![5, -9, 13],
                requant: Some(Requant {
                    shift: 6,
                    out_bits: 3,
                }),
            },
            QLayer {
                inputs: hidden,
                outputs: 10,
                weight_bits: 4,
                weights: w2,
                bias: (0..10).map(|i| i - 5).collect(),
                requant: None,
            },
        ],
    }
}

/// Captures the server's logs.
/// Captures the server's logs.
#[derive(Clone, Default)]
pub struct Logs(pub Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
