//! `veil serve` and `veil infer` as separate OS processes over loopback, for every protocol:
//! the predictions equal the plaintext integer model's.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use veil_nn::data::digits_split;

struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            "he,yao,gmw",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    Server { child, addr }
}

fn infer(addr: &str, protocol: &str, range: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "infer",
            "--protocol",
            protocol,
            "--connect",
            addr,
            "--digits-test",
            range,
            "--json",
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{protocol}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn serve_and_infer_processes_agree_with_the_plaintext_model() {
    let server = start_server();
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    for (protocol, range, extra) in [
        ("yao", "0..4", vec![]),
        ("yao", "4..6", vec!["--logits"]),
        ("gmw", "0..5", vec!["--batch"]),
        ("gmw", "5..7", vec!["--logits"]),
        ("he", "0", vec![]),
    ] {
        let v = infer(&server.addr, protocol, range, &extra);
        let (a, b) = match range.split_once("..") {
            Some((a, b)) => (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()),
            None => (range.parse().unwrap(), range.parse::<usize>().unwrap() + 1),
        };
        let preds: Vec<usize> = v["predictions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap() as usize)
            .collect();
        let want: Vec<usize> = test.samples[a..b]
            .iter()
            .map(|s| model.predict(&s.pixels))
            .collect();
        assert_eq!(preds, want, "{protocol} {range}");
        if extra.contains(&"--logits") {
            let logits = v["logits"].as_array().expect("logits revealed");
            for (l, s) in logits.iter().zip(&test.samples[a..b]) {
                let got: Vec<i64> = l
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(
                    got,
                    model.logits(&model.quantize_input(&s.pixels)),
                    "{protocol}"
                );
            }
        }
        assert!(v["bytes_sent"].as_u64().unwrap() > 0);
        assert!(v["rounds"].as_u64().unwrap() > 0);
    }
}
