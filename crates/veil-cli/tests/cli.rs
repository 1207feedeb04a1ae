//! The `veil` binary as a user runs it.

use std::process::Command;

/// Runs `cmd` and asserts it succeeded, showing its standard error otherwise.
fn succeed(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

fn tmp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("veil-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn eval_json_reports_accuracies_of_the_bundled_model() {
    // Run from an empty directory so the compiled-in copy is used.
    let dir = tmp_dir("eval");
    let out = succeed(veil().args(["eval", "--json"]).current_dir(&dir));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let float = v["float_accuracy"].as_f64().unwrap();
    let quant = v["quantized_accuracy"].as_f64().unwrap();
    assert!((0.96..=1.0).contains(&float), "{float}");
    assert!((0.95..=1.0).contains(&quant), "{quant}");
    assert_eq!(v["test_samples"], 359);
    assert_eq!(
        v["architecture"],
        "64 -> dense 24 [24] -> relu [24] -> dense 10 [10]"
    );
    assert_eq!(v["hidden_activations"], 24);
    assert_eq!(v["and_gates"], 55089);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_of_a_bad_file_fails_with_a_message() {
    let dir = tmp_dir("bad");
    let path = dir.join("cut.json");
    let text = include_str!("../../../models/digits.json");
    std::fs::write(&path, &text[..text.len() / 3]).unwrap();
    let out = veil()
        .arg("eval")
        .arg("--model")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("truncated"), "{err}");
    let out = veil()
        .args(["eval", "--model", "/nonexistent/m.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/m.json"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_writes_a_model_that_eval_reads() {
    let dir = tmp_dir("train");
    let path = dir.join("small.json");
    let out = succeed(
        veil()
            .args(["train", "--epochs", "3", "--hidden", "8", "--json", "--out"])
            .arg(&path),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["architecture"],
        "64 -> dense 8 [8] -> relu [8] -> dense 10 [10]"
    );
    let out = veil()
        .arg("eval")
        .arg("--model")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("64 -> dense 8 [8] -> relu"));
    let bad = veil()
        .args(["train", "--hidden", "0"])
        .arg("--out")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!bad.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn dp_training_records_its_guarantee_and_eval_prints_it() {
    let dir = tmp_dir("train-dp");
    let path = dir.join("private.json");
    let out = succeed(
        veil()
            .args([
                "train",
                "--dp",
                "--epsilon",
                "8",
                "--delta",
                "1e-5",
                "--json",
                "--out",
            ])
            .arg(&path),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["privacy"];
    let eps = p["epsilon"].as_f64().unwrap();
    assert!((7.99..=8.0).contains(&eps), "{eps}");
    assert_eq!(p["delta"].as_f64(), Some(1e-5));
    assert_eq!(p["accountant"], "rdp-integer-orders");
    assert_eq!(p["mechanism"], "dp-sgd");
    assert_eq!(p["noise"], "discrete-gaussian");
    assert!(p["noise_multiplier"].as_f64().unwrap() > 1.0);
    // The noise comes from the operating system, so the accuracy varies from run to run
    // (93 to 96% float at this budget); the bound leaves room for that.
    let float = v["float_accuracy"].as_f64().unwrap();
    assert!(float >= 0.85, "{float}");

    let out = veil()
        .arg("eval")
        .arg("--model")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("-DP by dp-sgd (rdp-integer-orders accountant; discrete-gaussian noise"),
        "eval does not print the guarantee:\n{text}"
    );
    let out = veil()
        .args(["eval", "--json"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["privacy"].is_null(),
        "the bundled model records no privacy"
    );

    for bad in [
        vec!["--dp", "--epsilon", "8", "--delta", "1.5"],
        vec!["--dp", "--epsilon", "-1"],
        vec!["--epsilon", "8"],
        vec!["--dp"],
    ] {
        let out = veil()
            .arg("train")
            .args(&bad)
            .arg("--out")
            .arg(dir.join("never.json"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?} was accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
    assert!(!dir.join("never.json").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["train", "--help"],
        vec!["eval", "--help"],
    ] {
        let out = veil().args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

/// Runs `veil bench PART --json --runs 1`, checks that it succeeds and that every key holds a
/// positive number, and returns the JSON object.
fn bench_json(part: &str, keys: &[&str]) -> serde_json::Value {
    let out = succeed(veil().args(["bench", part, "--json", "--runs", "1"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in keys {
        assert!(
            v[*key].as_f64().is_some_and(|x| x > 0.0),
            "{key}: {}",
            v[*key]
        );
    }
    v
}

#[test]
fn bench_ot_json_has_the_documented_fields() {
    let v = bench_json(
        "ot",
        &[
            "base_ot_128_ms",
            "softspoken_over_iknp_tcp",
            "softspoken_over_iknp_wan",
            "softspoken_over_iknp_lan",
            "iknp_bytes_over_softspoken",
        ],
    );
    let ext = v["extensions"].as_array().unwrap();
    let names: Vec<&str> = ext
        .iter()
        .map(|e| e["extension"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "IKNP",
            "SoftSpokenOT k=4",
            "SoftSpokenOT k=2",
            "SoftSpokenOT k=8"
        ]
    );
    for e in &ext[..2] {
        for key in [
            "cot_per_s_memory",
            "cot_per_s_memory_2_23",
            "cot_per_s_tcp",
            "cot_per_s_tcp_2_23",
            "cot_per_s_wan",
            "rcot_per_s_tcp",
            "rcot_per_s_wan",
            "rcot_per_s_lan",
            "rot_per_s_memory",
            "rot_per_s_memory_2_23",
            "rot_per_s_tcp",
            "rot_per_s_tcp_2_23",
            "chosen_per_s_memory",
            "chosen_per_s_memory_2_23",
            "chosen_per_s_tcp",
            "chosen_per_s_tcp_2_23",
            "cot_per_s_tcp_checked",
            "bytes_per_cot",
        ] {
            assert!(e[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {e}");
        }
    }
    // 128 columns of one bit per OT (IKNP), 128 / k groups (SoftSpokenOT), plus a 4-byte frame
    // header per 2^14 OTs.
    for (e, want) in ext.iter().zip([16.0, 4.0, 8.0, 2.0]) {
        let b = e["bytes_per_cot"].as_f64().unwrap();
        assert!((want..want + 0.001).contains(&b), "{e}");
    }
    // With random choice bits SoftSpokenOT's first group sends nothing: 31 bits at k = 4.
    for (e, want) in ext.iter().zip([16.0, 3.875, 7.875, 1.875]) {
        let b = e["bytes_per_rcot"].as_f64().unwrap();
        assert!((want..want + 0.001).contains(&b), "{e}");
    }
    // Figures are read with the processor they were measured on.
    assert!(
        v["cpu_model"].as_str().is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(
        v["aes_path"].is_string() && v["cpu_has_vaes"].is_boolean(),
        "{v}"
    );
}

fn circuit_path(name: &str) -> String {
    format!("{}/../../circuits/{name}.txt", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn circuit_eval_aes128_gives_fips197_on_every_backend() {
    for backend in ["plain", "yao", "gmw"] {
        let out = succeed(
            veil()
                .args(["circuit", "eval", "--backend", backend, "--bristol"])
                .arg(circuit_path("aes_128"))
                .args(["--input", "000102030405060708090a0b0c0d0e0f"])
                .args(["--input", "00112233445566778899aabbccddeeff"]),
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "69c4e0d86a7b0430d8cdb78070b4c55a\n",
            "{backend}"
        );
    }
}

#[test]
fn circuit_stats_and_bad_input() {
    let out = veil()
        .args(["circuit", "stats", "--json"])
        .arg(circuit_path("aes_128"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["and_gates"], 6400);
    let out = veil()
        .args(["circuit", "eval", "--bristol"])
        .arg(circuit_path("adder64"))
        .args(["--input", "zz", "--input", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let dir = tmp_dir("badcircuit");
    let bad = dir.join("bad.txt");
    std::fs::write(&bad, "2 4\n1 2\n1 1\n\n2 1 0 1 3 AND\n2 1 0 9 3 XOR\n").unwrap();
    let out = veil()
        .args(["circuit", "stats"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_gc_json_has_the_documented_fields() {
    let v = bench_json(
        "gc",
        &[
            "garble_and_per_s",
            "eval_and_per_s",
            "aes128_ms",
            "bytes_per_and",
        ],
    );
    assert_eq!(v["bytes_per_and"].as_f64(), Some(32.0));
}

#[test]
fn bench_gmw_json_has_the_documented_fields() {
    let v = bench_json(
        "gmw",
        &[
            "triples_per_s",
            "online_and_per_s",
            "aes128_ms",
            "rounds_aes128",
        ],
    );
    assert_eq!(v["rounds_aes128"], 62);
    // SoftSpokenOT: 31 bits per random-choice OT each way, 7.75 bytes per triple (IKNP 32),
    // plus frame headers and the rounding of each chunk to 128 rows.
    let b = v["offline_bytes_per_and"].as_f64().unwrap();
    assert!((7.75..=8.0).contains(&b), "{b}");
    let b = v["iknp_offline_bytes_per_and"].as_f64().unwrap();
    assert_eq!(b.round(), 32.0);
    assert!(v["wan_batch64_s"].as_f64().is_some_and(|s| s > 0.08));
}

#[test]
fn dp_epsilon_reproduces_tf_privacy() {
    // TF Privacy's compute_dp_sgd_privacy: n = 60000, batch 150, sigma 1.3, 15 epochs.
    let out = succeed(
        veil()
            .args(["dp", "epsilon", "--noise", "1.3", "--sample-rate", "0.0025"])
            .args(["--steps", "6000", "--delta", "1e-5", "--json"]),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let eps = v["epsilon"].as_f64().unwrap();
    assert!((eps - 0.7242234026).abs() < 1e-8, "{eps}");
    assert_eq!(v["order"].as_f64(), Some(19.0));
    let out = veil()
        .args([
            "dp",
            "noise",
            "--epsilon",
            "0.7242234026",
            "--delta",
            "1e-5",
        ])
        .args(["--sample-rate", "0.0025", "--steps", "6000", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let noise = v["noise"].as_f64().unwrap();
    assert!((noise - 1.3).abs() < 1e-3, "{noise}");
    let bad = veil()
        .args([
            "dp",
            "epsilon",
            "--noise=-1",
            "--sample-rate",
            "0.1",
            "--steps",
            "10",
        ])
        .args(["--delta", "1e-5"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
}

#[test]
fn shamir_split_combine_names_a_tampered_share() {
    let dir = tmp_dir("shamir");
    let secret: Vec<u8> = (0..777u32).map(|i| (i * 31 % 251) as u8).collect();
    let file = dir.join("model.key");
    std::fs::write(&file, &secret).unwrap();
    succeed(
        veil()
            .args(["shamir", "split", "--threshold", "3", "--shares", "5"])
            .arg(&file),
    );
    let share = |i: usize| dir.join(format!("model.key.share{i}"));
    let combine = |paths: &[std::path::PathBuf], extra: &[&str]| {
        veil()
            .args(["shamir", "combine"])
            .args(extra)
            .args(paths)
            .output()
            .unwrap()
    };
    // Any three shares recover the file.
    for set in [[1, 2, 3], [1, 3, 5], [2, 4, 5], [3, 4, 5]] {
        let paths: Vec<_> = set.iter().map(|&i| share(i)).collect();
        let out = combine(&paths, &[]);
        assert!(out.status.success(), "{set:?}");
        assert_eq!(out.stdout, secret, "{set:?}");
    }
    // Two are not enough.
    assert!(!combine(&[share(1), share(2)], &[]).status.success());
    // A tampered share is named, and the exit status is non-zero.
    let text = std::fs::read_to_string(share(4)).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let last_data = lines.iter().rposition(|l| !l.starts_with("-----")).unwrap();
    let flipped = if lines[last_data].starts_with('0') {
        "1"
    } else {
        "0"
    };
    lines[last_data].replace_range(0..1, flipped);
    std::fs::write(share(4), lines.join("\n")).unwrap();
    let out = combine(&[share(1), share(2), share(4)], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("share 4"), "{err}");
    // With enough honest shares, --tolerant recovers and still names it.
    let out = combine(&[share(1), share(2), share(3), share(4)], &["--tolerant"]);
    assert!(out.status.success());
    assert_eq!(out.stdout, secret);
    assert!(String::from_utf8_lossy(&out.stderr).contains("share 4"));
    // Shares of another dealing of the same file are refused.
    let other = dir.join("other");
    let out = veil()
        .args([
            "shamir",
            "split",
            "--threshold",
            "3",
            "--shares",
            "5",
            "--out-dir",
        ])
        .arg(&other)
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = combine(
        &[share(1), share(2), other.join("model.key.share3")],
        &["--tolerant"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("different dealings"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shamir_demo_three_processes_match_the_plaintext_layer() {
    let out = veil()
        .args(["shamir", "demo", "--parties", "3", "--digit", "5"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .unwrap()
    };
    assert_eq!(line("shared result"), line("plaintext"));
    assert!(text.contains("equal"));
}

#[test]
fn audit_membership_reports_every_attack_and_draws_the_roc() {
    let dir = tmp_dir("audit");
    let svg = dir.join("roc.svg");
    let out = succeed(
        veil()
            .args(["audit", "membership", "--shadows", "2", "--json", "--svg"])
            .arg(&svg),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = v["attacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attack"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["loss", "confidence", "label-only", "lira"]);
    for a in v["attacks"].as_array().unwrap() {
        for key in [
            "auc",
            "tpr_at_0_1_pct_fpr",
            "tpr_at_1_pct_fpr",
            "epsilon_lower_bound",
        ] {
            assert!(a[key].as_f64().is_some(), "{key}: {a}");
        }
    }
    assert_eq!(
        (v["members"].as_u64(), v["non_members"].as_u64()),
        (Some(1438), Some(359))
    );
    assert!(v["accountant_epsilon"].is_null());
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.matches("<polyline").count() == 4);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn audit_extraction_reports_each_budget() {
    let out = succeed(veil().args([
        "audit",
        "extraction",
        "--output",
        "logits",
        "--queries",
        "30,60",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["answer"], "logits");
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["queries"], 60);
    assert!(points
        .iter()
        .all(|p| (0.0..=1.0).contains(&p["agreement"].as_f64().unwrap())));
}
