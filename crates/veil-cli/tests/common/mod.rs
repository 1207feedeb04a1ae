//! A `veil serve` child process for the integration tests.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `veil serve`, killed on drop.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its address (the first line it prints).
    pub addr: String,
    /// The second line it prints after "server key ": the public key to pin, or "none ...".
    pub key: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `veil serve` on a free loopback port with `protocols` and the `extra` flags.
pub fn start_server(protocols: &str, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(["serve", "--listen", "127.0.0.1:0", "--protocol", protocols])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    line.clear();
    out.read_line(&mut line).unwrap();
    let key = line.trim().strip_prefix("server key ").unwrap().to_string();
    Server { child, addr, key }
}
