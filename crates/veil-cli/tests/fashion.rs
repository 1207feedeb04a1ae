//! The bundled Fashion-MNIST models (`models/fashion_cnn.json`, a CNN, and
//! `models/fashion_mlp.json`, a 784-128-64-10 MLP) served by `veil serve` and classified by
//! `veil infer` as separate processes, for Yao, GMW, mixed and HE: the predictions equal the plaintext
//! integer reference on a few test images. The 100-image figures are the closing note's
//! (`veil infer --test-rows 0..100`); here a few images keep CI short.

use std::process::Command;

use veil_nn::images::{fashion_mnist, FashionSplit};
use veil_nn::Model;

mod common;

use common::start_server;

fn model_path(name: &str) -> String {
    format!("{}/../../models/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The first `count` test rows whose top two logits differ by at least `margin`, so that one
/// rare bootstrap failure cannot change the class (HE).
fn clear_rows(model: &Model, count: usize, margin: i64) -> Vec<usize> {
    let test = fashion_mnist(FashionSplit::Test).unwrap();
    (0..test.len())
        .filter(|&i| {
            let mut l = model
                .quantized
                .logits(&model.quantized.quantize_input(test.image(i)));
            l.sort_unstable();
            l[l.len() - 1] - l[l.len() - 2] >= margin
        })
        .take(count)
        .collect()
}

fn infer(addr: &str, key: &str, protocol: &str, row: usize, extra: &[&str]) -> Vec<usize> {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["infer", "--protocol", protocol, "--connect", addr])
        .args(["--server-key", key, "--dataset", "fashion-mnist"])
        .args(["--test-rows", &row.to_string(), "--json"])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{protocol}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_u64().unwrap() as usize)
        .collect()
}

fn serve_and_check(file: &str, he_images: usize) {
    let path = model_path(file);
    let model = Model::load(std::path::Path::new(&path)).unwrap();
    let test = fashion_mnist(FashionSplit::Test).unwrap();
    let server = start_server("he,yao,gmw,mixed", &["--trust-clients", "--model", &path]);
    for (protocol, rows, extra) in [
        ("yao", clear_rows(&model, 2, 0), vec![]),
        ("gmw", clear_rows(&model, 2, 0), vec![]),
        ("mixed", clear_rows(&model, 3, 0), vec![]),
        ("he", clear_rows(&model, he_images, 8), vec![]),
    ] {
        for row in rows {
            let got = infer(&server.addr, &server.key, protocol, row, &extra);
            assert_eq!(
                got,
                vec![model.predict(test.image(row))],
                "{file} {protocol} row {row}"
            );
        }
    }
}

#[test]
fn the_fashion_cnn_between_processes_matches_the_integer_reference() {
    serve_and_check("fashion_cnn.json", 1);
}

#[test]
fn the_fashion_mlp_between_processes_matches_the_integer_reference() {
    serve_and_check("fashion_mlp.json", 2);
}
