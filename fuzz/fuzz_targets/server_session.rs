//! The server as a whole: arbitrary frames from a client to `veil_protocols::server::session`
//! (handshake, then the HE, Yao or GMW session with its queries), over an in-memory channel,
//! serving a tiny model so that an iteration stays cheap.
//!
//! Input: the client's frames (4-byte LE length, payload). The seeds are recordings of honest
//! Yao and GMW clients and of handshakes.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_fuzz::{against, config, encode_frames, frames, record, runtime, write_seed};
use veil_nn::quant::{QLayer, QuantModel, Requant};
use veil_protocols::wire::{Hello, Request, WIRE_VERSION};
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig};

/// Three 2-bit inputs, two hidden neurons, two classes.
fn model() -> QuantModel {
    QuantModel {
        input_bits: 2,
        layers: vec![
            QLayer {
                inputs: 3,
                outputs: 2,
                weight_bits: 3,
                weights: vec![1, -2, 3, 0, 1, -1],
                bias: vec![1, -1],
                requant: Some(Requant {
                    shift: 1,
                    out_bits: 2,
                }),
            },
            QLayer {
                inputs: 2,
                outputs: 2,
                weight_bits: 3,
                weights: vec![1, 2, -1, 3],
                bias: vec![0, 1],
                requant: None,
            },
        ],
    }
}

fn served() -> &'static Served {
    static SERVED: OnceLock<Served> = OnceLock::new();
    SERVED.get_or_init(|| {
        let mut cfg = ServerConfig::new(model());
        cfg.channel = config();
        cfg.max_key_bytes = 1 << 20;
        // Reach the GMW session too (the trust check itself is a comparison before it).
        cfg.trust_clients = true;
        // And the insecure baseline, which a server offers only when listed.
        cfg.protocols = Protocol::ALL.to_vec();
        Served::new(cfg).expect("the tiny model compiles")
    })
}

fn encode<T: serde::Serialize>(v: &T) -> Vec<u8> {
    bincode::serde::encode_to_vec(v, bincode::config::standard()).expect("encode")
}

fn write_seeds() {
    let rt = runtime();
    for protocol in [Protocol::Yao, Protocol::Gmw, Protocol::Clear] {
        for want_logits in [false, true] {
            let f = rt.block_on(record(
                |mut ch| async move {
                    let _ = veil_protocols::server::session(&mut ch, served()).await;
                },
                |ch| async move {
                    let mut opts = ClientOptions::insecure_plaintext(protocol);
                    opts.want_logits = want_logits;
                    opts.channel = config();
                    let Ok(mut c) = Client::start(ch, opts).await else {
                        return;
                    };
                    let _ = c.classify(&[vec![1, 2, 3], vec![0, 3, 1]]).await;
                    let _ = c.close().await;
                },
            ));
            write_seed(&format!("{protocol}-{want_logits}"), &encode_frames(&f));
        }
    }
    for protocol in Protocol::ALL {
        let hello = encode(&Hello {
            version: WIRE_VERSION,
            protocol,
            want_logits: true,
        });
        let seed = encode_frames(&[hello, encode(&Request::Query { count: 1 })]);
        write_seed(&format!("hello-{protocol}"), &seed);
    }
}

fuzz_target!(
    init: {
        served();
        if veil_fuzz::seed_dir().is_some() {
            write_seeds();
        }
    },
    |data: &[u8]| {
        let served = served();
        runtime().block_on(against(frames(data), |mut ch| async move {
            let _ = veil_protocols::server::session(&mut ch, served).await;
        }));
    }
);
