//! `veil serve`, `veil infer` and `veil demo`: private inference between processes.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use veil_net::{Identity, PublicKey};
use veil_nn::Model;
use veil_protocols::{
    Client, ClientOptions, ClientSecurity, Protocol, Served, ServerConfig, ServerSecurity,
};

use crate::bench::median;
use crate::inputs::{fit, from_set, parse_range, read_input, DatasetName, RawImage};

/// Parses `he,yao,gmw`.
pub fn parse_protocols(list: &str) -> Result<Vec<Protocol>> {
    list.split(',')
        .map(|p| p.trim().parse::<Protocol>().map_err(anyhow::Error::msg))
        .collect()
}

/// How `veil serve` protects its sessions, from its flags.
pub struct ServeSecurity {
    /// `--identity FILE`: the server's identity (a fresh one when absent).
    pub identity: Option<std::path::PathBuf>,
    /// `--allow-client KEY`: client keys served (any client when empty); they are trusted with
    /// GMW.
    pub allow: Vec<PublicKey>,
    /// `--trust-clients`: serve GMW, which is semi-honest, to every client.
    pub trust_clients: bool,
    /// `--insecure-plaintext`.
    pub plaintext: bool,
}

impl ServeSecurity {
    fn resolve(self) -> Result<ServerSecurity> {
        if self.plaintext {
            return Ok(ServerSecurity::InsecurePlaintext);
        }
        let identity = match &self.identity {
            Some(path) => Identity::load(path)?,
            None => Identity::generate(),
        };
        Ok(ServerSecurity::Noise {
            identity: Arc::new(identity),
            allowed_clients: (!self.allow.is_empty()).then(|| self.allow.into()),
        })
    }
}

/// How `veil infer` protects its session, from its flags.
pub fn client_security(
    server_key: Option<PublicKey>,
    identity: Option<&Path>,
    plaintext: bool,
) -> Result<ClientSecurity> {
    if plaintext {
        return Ok(ClientSecurity::InsecurePlaintext);
    }
    let Some(server_key) = server_key else {
        bail!(
            "--server-key is required: pin the public key that `veil serve` prints (or pass \
             --insecure-plaintext to a plaintext server)"
        );
    };
    let identity = identity.map(Identity::load).transpose()?.map(Arc::new);
    Ok(ClientSecurity::Noise {
        server_key,
        identity,
    })
}

/// `veil identity new`: writes a fresh identity file and prints its public key.
pub fn identity_new(out: &Path) -> Result<()> {
    let id = Identity::generate();
    id.save(out)?;
    println!("{}", id.public());
    eprintln!(
        "wrote {} (private, mode 0600); its public key is above",
        out.display()
    );
    Ok(())
}

/// `veil identity show`: prints an identity file's public key.
pub fn identity_show(path: &Path) -> Result<()> {
    println!("{}", Identity::load(path)?.public());
    Ok(())
}

/// `veil serve`: serves until killed.
pub fn serve(
    model: &Model,
    protocols: Vec<Protocol>,
    listen: &str,
    allow_logits: bool,
    session_timeout: u64,
    security: ServeSecurity,
) -> Result<()> {
    let mut config = ServerConfig::new(model.quantized.clone());
    config.protocols = protocols;
    config.allow_logits = allow_logits;
    config.session_timeout = Duration::from_secs(session_timeout.max(1));
    config.trust_clients = security.trust_clients;
    let allow_list = !security.allow.is_empty();
    config.security = security.resolve()?;
    let semi_honest: Vec<String> = config
        .protocols
        .iter()
        .filter(|p| p.requires_trust())
        .map(|p| p.to_string())
        .collect();
    if !semi_honest.is_empty() {
        let names = semi_honest.join(", ");
        if config.trust_clients {
            tracing::warn!(
                "serving {names} to every client (--trust-clients): it is secure only against \
                 semi-honest clients"
            );
        } else if allow_list {
            tracing::info!("serving {names} (semi-honest) only to the --allow-client keys");
        } else {
            tracing::info!(
                "{names} is semi-honest and served only to trusted clients; no client is \
                 trusted (pass --trust-clients or --allow-client KEY), so {names} clients are \
                 refused"
            );
        }
    }
    for p in config.protocols.iter().filter(|p| p.insecure()) {
        tracing::warn!(
            "offering {p}, which is INSECURE: its clients send their inputs in the clear (a \
             baseline for measurements)"
        );
    }
    let key = config.public_key();
    let served = Arc::new(Served::new(config)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        // The first line of standard output names the address and the second the key clients
        // pin, for scripts and `veil demo`.
        println!("listening on {addr}");
        match key {
            Some(k) => println!("server key {k}"),
            None => {
                println!("server key none (insecure plaintext)");
                tracing::warn!(
                    "serving WITHOUT encryption or authentication (--insecure-plaintext)"
                );
            }
        }
        std::io::stdout().flush()?;
        veil_protocols::serve(listener, served).await?;
        Ok(())
    })
}

/// One protocol's results on a set of images.
#[derive(Debug, Serialize)]
pub struct InferReport {
    /// The protocol.
    pub protocol: String,
    /// Predicted classes.
    pub predictions: Vec<usize>,
    /// Logits, when revealed.
    pub logits: Option<Vec<Vec<i64>>>,
    /// Labels, when known.
    pub labels: Option<Vec<u8>>,
    /// Fraction of labelled images classified correctly.
    pub accuracy: Option<f64>,
    /// Fraction equal to the plaintext integer model's prediction (when the model is known
    /// locally, as in `veil demo` and `veil bench`).
    pub agreement: Option<f64>,
    /// Positions (among the images sent) whose prediction differs from the plaintext integer
    /// model's, when it is known locally.
    pub disagreements: Option<Vec<usize>>,
    /// Session setup: handshake, keys or OT setup, first triples.
    pub setup_ms: f64,
    /// Online time for all images.
    pub online_ms: f64,
    /// Online time per image.
    pub online_ms_per_input: f64,
    /// Median online time of one query, when images were sent one per query.
    pub online_ms_median: Option<f64>,
    /// 95th percentile of the same.
    pub online_ms_p95: Option<f64>,
    /// Bytes the client sent, setup included.
    pub bytes_sent: u64,
    /// Bytes the client received, setup included.
    pub bytes_received: u64,
    /// Bytes of the setup alone, both directions.
    pub setup_bytes: u64,
    /// Bytes per image after setup, both directions.
    pub bytes_per_input: f64,
    /// Bytes the client sent after setup.
    pub online_bytes_sent: u64,
    /// Bytes the client received after setup.
    pub online_bytes_received: u64,
    /// Flights the client sent, setup included.
    pub rounds: u64,
    /// Flights per query after setup.
    pub rounds_per_query: f64,
}

/// Runs `images` through a session with the server at `addr`, one query per image (or one
/// batched query for GMW when `batch` is set). The images are fitted to the model's input
/// shape once the session tells the architecture ([`fit`]).
pub async fn infer_session(
    addr: &str,
    opts: ClientOptions,
    images: &[RawImage],
    batch: bool,
    reference: Option<&veil_nn::graph::QuantGraph>,
) -> Result<InferReport> {
    let t0 = Instant::now();
    let protocol = opts.protocol;
    let mut client = Client::connect(addr, opts).await?;
    let setup_ms = t0.elapsed().as_secs_f64() * 1e3;
    let setup = client.stats();
    let arch = client.architecture().clone();
    let mut codes: Vec<Vec<u8>> = Vec::with_capacity(images.len());
    let mut labels: Vec<Option<u8>> = Vec::with_capacity(images.len());
    for (i, img) in images.iter().enumerate() {
        let (pixels, label) = fit(img, &arch).with_context(|| format!("image {i}"))?;
        codes.push(veil_nn::graph::quantize_pixels(
            &pixels,
            arch.input_bits,
            arch.pixel_max,
        ));
        labels.push(label);
    }
    let labels: Option<Vec<u8>> = labels.into_iter().collect();
    let mut preds = Vec::new();
    let mut per_query = Vec::new();
    let t1 = Instant::now();
    let queries: Vec<&[Vec<u8>]> = if batch {
        vec![&codes[..]]
    } else {
        codes.chunks(1).collect()
    };
    let nq = queries.len();
    for q in queries {
        let t = Instant::now();
        preds.extend(client.classify(q).await?);
        per_query.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let online_ms = t1.elapsed().as_secs_f64() * 1e3;
    let stats = client.stats();
    client.close().await?;
    let classes: Vec<usize> = preds
        .iter()
        .map(|p| p.class.unwrap_or(usize::MAX))
        .collect();
    let logits: Option<Vec<Vec<i64>>> = preds.iter().map(|p| p.logits.clone()).collect();
    let n = images.len().max(1) as f64;
    let accuracy = labels.as_ref().map(|l| {
        classes
            .iter()
            .zip(l)
            .filter(|(c, s)| **c == usize::from(**s))
            .count() as f64
            / n
    });
    let disagreements: Option<Vec<usize>> = reference.map(|m| {
        classes
            .iter()
            .zip(&codes)
            .enumerate()
            .filter(|(_, (c, x))| **c != m.predict_codes(x))
            .map(|(i, _)| i)
            .collect()
    });
    let agreement = disagreements
        .as_ref()
        .map(|d| (classes.len() - d.len()) as f64 / n);
    let after = stats.since(&setup);
    let (med, p95) = if batch {
        (None, None)
    } else {
        let mut v = per_query.clone();
        v.sort_by(f64::total_cmp);
        let p95 = v
            .get(((v.len() as f64) * 0.95) as usize)
            .or(v.last())
            .copied();
        (Some(median(per_query)), p95)
    };
    Ok(InferReport {
        protocol: protocol.to_string(),
        predictions: classes,
        logits,
        labels,
        accuracy,
        agreement,
        disagreements,
        setup_ms,
        online_ms,
        online_ms_per_input: online_ms / n,
        online_ms_median: med,
        online_ms_p95: p95,
        bytes_sent: stats.bytes_sent,
        bytes_received: stats.bytes_received,
        setup_bytes: setup.total_bytes(),
        bytes_per_input: after.total_bytes() as f64 / n,
        online_bytes_sent: after.bytes_sent,
        online_bytes_received: after.bytes_received,
        rounds: stats.rounds,
        rounds_per_query: after.rounds as f64 / nq.max(1) as f64,
    })
}

/// The images of `veil infer`: `--input` (a CSV file, a PNG or a PGM image) or rows of a test
/// split.
pub fn select_images(
    input: Option<&Path>,
    rows: Option<&str>,
    dataset: DatasetName,
) -> Result<Vec<RawImage>> {
    Ok(match (input, rows) {
        (Some(path), None) => read_input(path)?,
        (None, Some(r)) => {
            let test = dataset.test_set()?;
            let range = parse_range(r, test.len())?;
            from_set(&test, range)
        }
        _ => bail!("give exactly one of --input FILE and --test-rows RANGE (or --digits-test)"),
    })
}

/// `veil infer`: classifies `images` with the server at `connect`; with `reference`, a local
/// copy of the served model, also reports the agreement with its integer predictions.
pub fn infer(
    opts: ClientOptions,
    connect: &str,
    images: &[RawImage],
    batch: bool,
    reference: Option<&veil_nn::Model>,
    json: bool,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(infer_session(
        connect,
        opts,
        images,
        batch,
        reference.map(|m| &m.quantized),
    ))?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "protocol {} via {connect}: {} images",
            report.protocol,
            images.len()
        );
        for (i, p) in report.predictions.iter().enumerate() {
            let label = report
                .labels
                .as_ref()
                .map(|l| format!("  label {}", l[i]))
                .unwrap_or_default();
            let lg = report
                .logits
                .as_ref()
                .map(|l| format!("  logits {:?}", l[i]))
                .unwrap_or_default();
            println!("  image {i:>3}: class {p}{label}{lg}");
        }
        if let Some(a) = report.accuracy {
            println!("accuracy    {:.2}%", 100.0 * a);
        }
        if let (Some(a), Some(d)) = (report.agreement, &report.disagreements) {
            println!(
                "agreement   {:.2}% with the local integer reference (differs at {d:?})",
                100.0 * a
            );
        }
        println!(
            "setup       {:.1} ms, {} bytes",
            report.setup_ms, report.setup_bytes
        );
        println!(
            "online      {:.1} ms in all, {:.2} ms per image",
            report.online_ms, report.online_ms_per_input
        );
        println!(
            "traffic     {} bytes sent, {} received ({:.0} bytes per image after setup)",
            report.bytes_sent, report.bytes_received, report.bytes_per_input
        );
        println!(
            "rounds      {} flights sent ({:.1} per query after setup)",
            report.rounds, report.rounds_per_query
        );
    }
    Ok(())
}

/// A `veil serve` child process on a free loopback port.
pub struct ChildServer {
    child: std::process::Child,
    /// Its address.
    pub addr: String,
    /// Its public key, which clients pin.
    pub key: PublicKey,
}

impl ChildServer {
    /// Starts `veil serve` (this executable) with the given model file, or the bundled model.
    pub fn start(model: Option<&Path>) -> Result<ChildServer> {
        let exe = std::env::current_exe()?;
        let mut cmd = std::process::Command::new(exe);
        // The demo's clients are its own: trusted with GMW.
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--protocol",
            "he,yao,gmw",
            "--trust-clients",
        ]);
        if let Some(m) = model {
            cmd.arg("--model").arg(m);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting `veil serve`")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string)
            .with_context(|| format!("unexpected first line from the server: {line:?}"))?;
        line.clear();
        reader.read_line(&mut line)?;
        let key = line
            .trim()
            .strip_prefix("server key ")
            .and_then(|k| k.parse::<PublicKey>().ok())
            .with_context(|| format!("unexpected second line from the server: {line:?}"))?;
        Ok(ChildServer { child, addr, key })
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `veil demo`: a server in a child process, a client per protocol, a table side by side.
pub fn demo(model: &Model, model_path: Option<&Path>, digits: usize) -> Result<()> {
    let test = DatasetName::choose(None, Some(model)).test_set()?;
    let images = from_set(&test, 0..digits.clamp(1, test.len()));
    println!(
        "Veil demo: one server process, one client per protocol, {} test digits",
        images.len()
    );
    let server = ChildServer::start(model_path)?;
    println!(
        "server: `veil serve` in child process, listening on {}, key {} (pinned by each \
         client; every session is encrypted)",
        server.addr, server.key
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let q = &model.quantized;
    let plain: Vec<usize> = images.iter().map(|s| q.predict(&s.pixels)).collect();
    let mut rows = Vec::new();
    for p in Protocol::secure() {
        eprintln!("running {p} ...");
        let r = rt.block_on(infer_session(
            &server.addr,
            ClientOptions::new(p, server.key),
            &images,
            veil_protocols::registry::get(p).lanes() > 1,
            Some(q),
        ))?;
        rows.push(r);
    }
    println!();
    println!(
        "labels      {:?}",
        images.iter().map(|s| s.label).collect::<Vec<_>>()
    );
    println!("plaintext   {plain:?}");
    for r in &rows {
        println!("{:<11} {:?}", r.protocol, r.predictions);
    }
    println!();
    println!(
        "{:<9} {:>10} {:>12} {:>14} {:>14} {:>10}",
        "protocol", "agreement", "setup ms", "online ms/img", "bytes/img", "flights/q"
    );
    for r in &rows {
        println!(
            "{:<9} {:>9.0}% {:>12.1} {:>14.2} {:>14.0} {:>10.1}",
            r.protocol,
            100.0 * r.agreement.unwrap_or(0.0),
            r.setup_ms,
            r.online_ms_per_input,
            r.bytes_per_input,
            r.rounds_per_query
        );
    }
    println!("\n(setup: HE key generation and upload; Yao base OTs; GMW OT setup and triples for 64 digits. GMW classifies all digits in one batch.)");
    Ok(())
}
