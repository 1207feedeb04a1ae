//! `veil serve` and `veil infer` as separate OS processes over loopback, for every protocol:
//! the predictions equal the plaintext integer model's; GMW only for trusted clients; the
//! insecure `clear` baseline only from a server that lists it.

use std::process::Command;

use veil_nn::data::digits_split;

mod common;

use common::start_server;

fn veil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_veil"))
}

fn infer_raw(addr: &str, protocol: &str, range: &str, extra: &[&str]) -> std::process::Output {
    veil()
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
        .unwrap()
}

fn infer(addr: &str, protocol: &str, range: &str, extra: &[&str]) -> serde_json::Value {
    let out = infer_raw(addr, protocol, range, extra);
    assert!(
        out.status.success(),
        "{protocol}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn serve_and_infer_processes_agree_with_the_plaintext_model() {
    let server = start_server("he,yao,gmw,mixed", &["--trust-clients"]);
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    for (protocol, range, extra) in [
        ("yao", "0..4", vec![]),
        ("yao", "4..6", vec!["--logits"]),
        ("gmw", "0..5", vec!["--batch"]),
        ("gmw", "5..7", vec!["--logits"]),
        ("mixed", "0..4", vec![]),
        ("mixed", "4..6", vec!["--logits"]),
        ("he", "0", vec![]),
    ] {
        let mut extra = extra;
        extra.extend(["--server-key", server.key.as_str()]);
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

#[test]
fn identities_pinning_allow_list_and_plaintext_between_processes() {
    let dir = std::env::temp_dir().join(format!("veil-identities-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let new_identity = |name: &str| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        let out = veil()
            .args(["identity", "new", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success());
        let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert_eq!(key.len(), 64);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "identity files are private");
        }
        (path, key)
    };
    let (server_id, server_key) = new_identity("server.id");
    let (client_id, client_key) = new_identity("client.id");
    let shown = veil()
        .args(["identity", "show"])
        .arg(&server_id)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), server_key);

    let server = start_server(
        "he,yao,gmw",
        &[
            "--identity",
            server_id.to_str().unwrap(),
            "--allow-client",
            &client_key,
        ],
    );
    assert_eq!(server.key, server_key);
    let client = client_id.to_str().unwrap();
    // The allowed client, pinning the right key, is served.
    let v = infer(
        &server.addr,
        "yao",
        "0",
        &["--server-key", &server_key, "--identity", client],
    );
    assert_eq!(v["predictions"].as_array().unwrap().len(), 1);
    // Listed clients are trusted with GMW.
    let v = infer(
        &server.addr,
        "gmw",
        "0..2",
        &["--server-key", &server_key, "--identity", client],
    );
    assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
    // Another client key is refused, with a message that says so.
    let out = infer_raw(&server.addr, "yao", "0", &["--server-key", &server_key]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not accept this client"), "{err}");
    // A wrong pin fails.
    let out = infer_raw(
        &server.addr,
        "yao",
        "0",
        &["--server-key", &client_key, "--identity", client],
    );
    assert!(!out.status.success());
    // No pin at all is a usage error naming the flag.
    let out = infer_raw(&server.addr, "yao", "0", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--server-key"));
    // A plaintext client cannot talk to it.
    let out = infer_raw(&server.addr, "yao", "0", &["--insecure-plaintext"]);
    assert!(!out.status.success());
    drop(server);

    // Plaintext only on both sides, explicitly.
    let plain = start_server("he,yao,gmw", &["--insecure-plaintext", "--trust-clients"]);
    assert!(plain.key.starts_with("none"));
    let v = infer(&plain.addr, "gmw", "0..2", &["--insecure-plaintext"]);
    assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn gmw_is_refused_to_untrusted_clients_with_a_message() {
    let server = start_server("yao,gmw", &[]);
    let pin = ["--server-key", server.key.as_str()];
    let out = infer_raw(&server.addr, "gmw", "0", &pin);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for part in ["semi-honest", "trusts", "--trust-clients", "--allow-client"] {
        assert!(err.contains(part), "{err}");
    }
    // Yao is served to the same client.
    let v = infer(&server.addr, "yao", "0", &pin);
    assert_eq!(v["predictions"].as_array().unwrap().len(), 1);
    drop(server);
    // With --trust-clients, GMW is served to any client.
    let server = start_server("yao,gmw", &["--trust-clients"]);
    let v = infer(
        &server.addr,
        "gmw",
        "0..3",
        &["--server-key", server.key.as_str(), "--batch"],
    );
    assert_eq!(v["predictions"].as_array().unwrap().len(), 3);
}

#[test]
fn clear_is_served_between_processes_only_when_the_server_lists_it() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    // The default list leaves the insecure baseline out.
    let server = start_server("he,yao,gmw", &[]);
    let out = infer_raw(&server.addr, "clear", "0", &["--server-key", &server.key]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("clear is not offered"), "{err}");
    drop(server);
    // Listed, it answers as the plaintext integer model, logits included when asked.
    let server = start_server("yao,clear", &[]);
    let v = infer(
        &server.addr,
        "clear",
        "0..5",
        &["--server-key", &server.key, "--logits"],
    );
    for (i, s) in test.samples[0..5].iter().enumerate() {
        let codes = model.quantize_input(&s.pixels);
        assert_eq!(
            v["predictions"][i].as_u64(),
            Some(model.predict(&s.pixels) as u64)
        );
        let got: Vec<i64> = v["logits"][i]
            .as_array()
            .expect("logits revealed")
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(got, model.logits(&codes));
    }
}

/// A returning HE client (the same identity and `--he-keys` file) uploads no evaluation key:
/// its second session sends a small fraction of the first's bytes and gets the same answer;
/// the keys file is private, and asking for it with another protocol is an error.
#[test]
fn a_returning_he_client_with_its_keys_file_uploads_no_key() {
    let dir = std::env::temp_dir().join(format!("veil-he-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (id, keys) = (dir.join("client.id"), dir.join("client.hekeys"));
    let _ = std::fs::remove_file(&keys);
    let out = veil()
        .args(["identity", "new", "--out"])
        .arg(&id)
        .output()
        .unwrap();
    assert!(out.status.success());
    let server = start_server("he,yao", &[]);
    let (id, keys) = (id.to_str().unwrap(), keys.to_str().unwrap());
    let extra = [
        "--server-key",
        server.key.as_str(),
        "--identity",
        id,
        "--he-keys",
        keys,
    ];
    let first = infer(&server.addr, "he", "0", &extra);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the keys file is private");
    }
    let second = infer(&server.addr, "he", "0", &extra);
    assert_eq!(first["predictions"], second["predictions"]);
    let sent = |v: &serde_json::Value| v["bytes_sent"].as_u64().unwrap();
    assert!(sent(&first) > 30_000_000, "{}", sent(&first));
    assert!(sent(&second) < 2_000_000, "{}", sent(&second));
    let wrong = infer_raw(&server.addr, "yao", "0", &extra);
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("--he-keys"));
    let _ = std::fs::remove_dir_all(&dir);
}
