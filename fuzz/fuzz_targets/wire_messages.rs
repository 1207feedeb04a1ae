//! The session messages of `veil_protocols::wire` (and the HE key offer and header), received
//! through an in-memory channel as the server and the client receive them; a decoded `Welcome`
//! is then checked and, when small, compiled as the client does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_net::Channel;
use veil_nn::compile::{compile_architecture, Layout, Outputs};
use veil_protocols::he::{KeyHeader, KeyOffer};
use veil_protocols::wire::{Hello, Request, Welcome};

/// Largest architecture (in weights) compiled per input, to keep an iteration cheap.
const MAX_COMPILED_WEIGHTS: usize = 2_000;

fuzz_target!(|data: &[u8]| {
    let Some((&which, frame)) = data.split_first() else {
        return;
    };
    veil_fuzz::runtime().block_on(async {
        let (mut tx, mut rx) = Channel::memory_pair(veil_fuzz::config());
        tx.send_bytes(frame).await.expect("send");
        match which % 5 {
            0 => {
                let _ = rx.recv::<Hello>().await;
            }
            1 => {
                if let Ok(Welcome::Accepted { architecture, .. }) = rx.recv::<Welcome>().await {
                    if architecture.validate().is_ok() {
                        let _ = architecture.input_count();
                        let _ = architecture.classes();
                        let _ = architecture.class_bits();
                        let _ = architecture.logit_bits();
                        for outputs in [Outputs::Class, Outputs::ClassAndLogits] {
                            let layout = Layout::new(architecture.clone(), outputs);
                            let _ = layout.input_widths();
                            let _ = layout.output_widths();
                        }
                        // The circuit grows with the weights and with the tensors they
                        // slide over: compile only small architectures.
                        let shapes = architecture.shapes().unwrap_or_default();
                        let weights: usize = architecture
                            .geometries()
                            .iter()
                            .zip(&shapes)
                            .map(|(g, s)| g.param_counts(*s).0)
                            .fold(0, usize::saturating_add);
                        let values: usize = shapes
                            .iter()
                            .map(|s| s.len())
                            .fold(0, usize::saturating_add);
                        if weights <= MAX_COMPILED_WEIGHTS && values <= MAX_COMPILED_WEIGHTS {
                            let _ = compile_architecture(&architecture, Outputs::ClassAndLogits);
                        }
                    }
                }
            }
            2 => {
                let _ = rx.recv::<Request>().await;
            }
            3 => {
                let _ = rx.recv::<KeyOffer>().await;
            }
            _ => {
                let _ = rx.recv::<KeyHeader>().await;
            }
        }
    });
});
