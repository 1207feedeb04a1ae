//! `veil shamir`: threshold custody of a file (split into Feldman-verifiable Shamir shares,
//! combine them back, naming any tampered share) and a three-or-more-process demo of BGW
//! arithmetic computing the bundled model's first layer on a shared digit with shared weights.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use veil_net::ChannelConfig;
use veil_nn::data::digits_split;
use veil_nn::Model;
use veil_shamir::mpc::{
    linear_layer_plain, run_party, LinearInput, LinearLayerSpec, MeshSecurity, PartyConfig,
};
use veil_shamir::{CombinePolicy, ShamirError, ShareFile, SharingParams};

/// `veil shamir ...`.
#[derive(Subcommand, Debug)]
pub enum ShamirCommand {
    /// Split a file into N shares, any T of which recover it (Feldman-verifiable: each share
    /// carries the dealing's commitments, so a tampered share is detected and named).
    Split {
        /// Shares needed to recover the file (at least 1, at most N).
        #[arg(long)]
        threshold: usize,
        /// Shares to write (at most 1000).
        #[arg(long)]
        shares: usize,
        /// Directory for the shares (default: beside FILE). Share i is written to
        /// `<FILE name>.share<i>`, readable by its owner only.
        #[arg(long)]
        out_dir: Option<PathBuf>,
        /// The file to split (at most 1 MiB).
        file: PathBuf,
    },
    /// Recover a file from shares; fails, naming them, if any share is tampered with or the
    /// shares come from different dealings.
    Combine {
        /// Where to write the recovered file (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Recover even if some shares fail verification, as long as enough pass (the bad
        /// ones are still named, on standard error).
        #[arg(long)]
        tolerant: bool,
        /// Share files.
        #[arg(required = true)]
        shares: Vec<PathBuf>,
    },
    /// A shared linear layer computed by N local processes (BGW, honest majority): party 0 holds
    /// a test digit, party 1 the bundled model's first layer, the others help; party 0 learns
    /// the layer's accumulators, which are checked against the plaintext computation.
    ///
    /// BGW is secure against semi-honest parties only: it runs among the configured parties,
    /// each link encrypted and mutually authenticated with pinned keys, which trust each other
    /// to follow the protocol.
    Demo {
        /// Number of processes (at least 3; tolerates (N-1)/2 colluding parties).
        #[arg(long, default_value_t = 3)]
        parties: usize,
        /// Test digit (index into the test split) that party 0 holds.
        #[arg(long, default_value_t = 0)]
        digit: usize,
    },
    /// One party of `veil shamir demo` (started by the demo).
    #[command(hide = true)]
    Party {
        /// This party's index.
        #[arg(long)]
        index: usize,
        /// Every party's address, comma separated, in index order.
        #[arg(long, value_delimiter = ',')]
        addrs: Vec<std::net::SocketAddr>,
        /// Sharing degree t.
        #[arg(long)]
        degree: usize,
        /// Session id, 32 hex digits.
        #[arg(long)]
        session: String,
        /// Test digit held by party 0.
        #[arg(long)]
        digit: usize,
        /// This party's identity file (encrypted, authenticated channels).
        #[arg(long)]
        identity: PathBuf,
        /// Every party's public key, comma separated, in index order.
        #[arg(long, value_delimiter = ',')]
        keys: Vec<veil_net::PublicKey>,
    },
}

/// Runs one `veil shamir` subcommand.
pub fn run(cmd: ShamirCommand, model: impl FnOnce() -> Result<Model>) -> Result<()> {
    match cmd {
        ShamirCommand::Split {
            threshold,
            shares,
            out_dir,
            file,
        } => split(threshold, shares, out_dir.as_deref(), &file),
        ShamirCommand::Combine {
            out,
            tolerant,
            shares,
        } => combine(&shares, out.as_deref(), tolerant),
        ShamirCommand::Demo { parties, digit } => demo(parties, digit),
        ShamirCommand::Party {
            index,
            addrs,
            degree,
            session,
            digit,
            identity,
            keys,
        } => {
            let security = MeshSecurity {
                identity: std::sync::Arc::new(veil_net::Identity::load(&identity)?),
                keys,
            };
            party(index, addrs, degree, &session, digit, security, &model()?)
        }
    }
}

fn split(threshold: usize, shares: usize, out_dir: Option<&Path>, file: &Path) -> Result<()> {
    let params = SharingParams::threshold(threshold, shares)
        .with_context(|| format!("--threshold {threshold} --shares {shares}"))?;
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading {}", file.display()))?
        .len();
    if size > veil_shamir::secret::MAX_SECRET_LEN {
        bail!(
            "{} is {size} bytes; at most {} can be shared",
            file.display(),
            veil_shamir::secret::MAX_SECRET_LEN
        );
    }
    let secret = zeroize::Zeroizing::new(
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
    );
    let files = veil_shamir::split_secret(&secret, params, &mut veil_shamir::secure_rng())?;
    let dir = match out_dir {
        Some(d) => d.to_path_buf(),
        None => file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "secret".to_string());
    for f in &files {
        let path = dir.join(format!("{name}.share{}", f.index()));
        write_private(&path, f.to_text().as_bytes())?;
        println!("{}", path.display());
    }
    eprintln!(
        "split {} ({size} bytes) into {shares} shares, any {threshold} of which recover it; \
         dealing {}",
        file.display(),
        files[0].dealing_id().short_hex()
    );
    Ok(())
}

/// Writes `data` to a new file readable and writable by its owner only.
fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", path.display()))
}

fn combine(paths: &[PathBuf], out: Option<&Path>, tolerant: bool) -> Result<()> {
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let text = read_bounded(p)?;
        let f = ShareFile::from_text(&text).with_context(|| format!("{}", p.display()))?;
        files.push(f);
    }
    let policy = if tolerant {
        CombinePolicy::Tolerant
    } else {
        CombinePolicy::Strict
    };
    let path_of = |index: u32| {
        files
            .iter()
            .zip(paths)
            .find(|(f, _)| f.index() == index)
            .map(|(_, p)| p.display().to_string())
            .unwrap_or_default()
    };
    let combined = match veil_shamir::combine_secret(&files, policy) {
        Ok(c) => c,
        Err(ShamirError::VerificationFailed { indices }) => {
            let named: Vec<String> = indices
                .iter()
                .map(|&i| format!("share {i} ({})", path_of(i)))
                .collect();
            bail!(
                "tampered or corrupted: {} fail(s) verification against the dealing's commitments",
                named.join(", ")
            );
        }
        Err(e) => return Err(e.into()),
    };
    for &i in &combined.rejected {
        eprintln!(
            "warning: share {i} ({}) fails verification and was set aside",
            path_of(i)
        );
    }
    match out {
        Some(path) => {
            write_private(path, &combined.secret)?;
            eprintln!(
                "recovered {} bytes into {}",
                combined.secret.len(),
                path.display()
            );
        }
        None => std::io::stdout().write_all(&combined.secret)?,
    }
    Ok(())
}

/// Reads a share file, refusing anything larger than a share can be.
fn read_bounded(path: &Path) -> Result<String> {
    let limit = 2 * veil_shamir::secret::MAX_SHARE_FILE_LEN as u64 + 4096;
    let size = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if size > limit {
        bail!(
            "{} is {size} bytes, too large to be a share",
            path.display()
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// What one demo party prints (one JSON line) for the parent.
#[derive(Serialize, Deserialize, Debug)]
struct PartyReport {
    index: usize,
    output: Option<Vec<i64>>,
    bytes_sent: u64,
    bytes_received: u64,
    rounds: u64,
    millis: f64,
}

fn demo_layer(model: &Model) -> Result<(Vec<i64>, Vec<i64>)> {
    let layer = model
        .quantized
        .params
        .first()
        .context("the model has no layer with weights")?;
    let weights = layer.weights.iter().map(|&w| i64::from(w)).collect();
    let bias = layer.bias.iter().map(|&b| i64::from(b)).collect();
    Ok((weights, bias))
}

fn demo_input(model: &Model, digit: usize) -> Result<Vec<i64>> {
    let test = digits_split().test;
    let s = test
        .samples
        .get(digit)
        .with_context(|| format!("--digit {digit}: the test split has {} images", test.len()))?;
    Ok(model
        .quantized
        .quantize_input(&s.pixels)
        .iter()
        .map(|&v| i64::from(v))
        .collect())
}

fn party(
    index: usize,
    addrs: Vec<std::net::SocketAddr>,
    degree: usize,
    session: &str,
    digit: usize,
    security: MeshSecurity,
    model: &Model,
) -> Result<()> {
    let session = parse_session(session)?;
    let input = match index {
        0 => LinearInput::Client {
            x: demo_input(model, digit)?,
        },
        1 => {
            let (weights, bias) = demo_layer(model)?;
            LinearInput::Owner { weights, bias }
        }
        _ => LinearInput::Helper,
    };
    let config = PartyConfig::new(index, addrs, degree)
        .with_security(security)
        .with_session_id(session)
        .with_channel(ChannelConfig {
            connect_timeout: Duration::from_secs(20),
            ..ChannelConfig::default()
        });
    let rt = crate::bench::two_threads()?;
    let t0 = Instant::now();
    let out = rt.block_on(run_party(
        config,
        LinearLayerSpec {
            client: 0,
            owner: 1,
        },
        input,
    ))?;
    let report = PartyReport {
        index,
        output: out.output,
        bytes_sent: out.stats.bytes_sent,
        bytes_received: out.stats.bytes_received,
        rounds: out.stats.rounds,
        millis: t0.elapsed().as_secs_f64() * 1e3,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

fn parse_session(hex: &str) -> Result<[u8; 16]> {
    let mut out = [0u8; 16];
    if hex.len() != 32 || !hex.is_ascii() {
        bail!("--session needs 32 hex digits");
    }
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).context("--session: not hex")?;
    }
    Ok(out)
}

/// Free loopback addresses: listeners on port 0, released just before the parties bind them.
fn free_addrs(n: usize) -> Result<Vec<std::net::SocketAddr>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<_>>()?)
}

/// Removes the demo's identity files when the demo ends.
struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills the demo's children if the demo fails part-way.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn demo(parties: usize, digit: usize) -> Result<()> {
    if !(3..=16).contains(&parties) {
        bail!("--parties must be between 3 and 16 (an honest majority needs at least 3)");
    }
    let model = veil_nn::bundled_model()?;
    let x = demo_input(&model, digit)?;
    let (weights, bias) = demo_layer(&model)?;
    let expected = linear_layer_plain(&weights, &x, &bias)?;
    let codes: Vec<u8> = x.iter().map(|&v| v as u8).collect();
    anyhow::ensure!(
        model.quantized.tensors(&codes).get(1) == Some(&expected),
        "the plaintext twin disagrees with the model's own first layer"
    );
    let degree = (parties - 1) / 2;
    let addrs = free_addrs(parties)?;
    let mut session = [0u8; 16];
    rand::rng().fill_bytes(&mut session);
    let session: String = session.iter().map(|b| format!("{b:02x}")).collect();
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    println!(
        "Veil Shamir demo: {parties} processes, degree {degree} (any {degree} colluding learn \
         nothing), BGW over encrypted, mutually authenticated loopback TCP"
    );
    println!(
        "party 0 holds test digit {digit}; party 1 holds the bundled model's first layer \
         ({} x {} weights, {} biases); the others help",
        bias.len(),
        x.len(),
        bias.len()
    );
    // Each party gets its own identity file; every party pins every other's public key.
    let dir = std::env::temp_dir().join(format!("veil-shamir-demo-{session}"));
    std::fs::create_dir_all(&dir)?;
    let ids: Vec<veil_net::Identity> = (0..parties)
        .map(|_| veil_net::Identity::generate())
        .collect();
    let keys: Vec<String> = ids.iter().map(|id| id.public().to_string()).collect();
    let mut id_files = Vec::with_capacity(parties);
    for (i, id) in ids.iter().enumerate() {
        let path = dir.join(format!("party{i}.id"));
        id.save(&path)?;
        id_files.push(path);
    }
    let _cleanup = RemoveDir(dir);
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::with_capacity(parties));
    for i in 0..parties {
        let child = Command::new(&exe)
            .args(["shamir", "party", "--index", &i.to_string()])
            .args(["--addrs", &list.join(",")])
            .args(["--degree", &degree.to_string()])
            .args(["--session", &session])
            .args(["--digit", &digit.to_string()])
            .arg("--identity")
            .arg(&id_files[i])
            .args(["--keys", &keys.join(",")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a party process")?;
        children.0.push(child);
    }
    let mut reports = Vec::with_capacity(parties);
    for (i, child) in std::mem::take(&mut children.0).into_iter().enumerate() {
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "party {i} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let report: PartyReport = serde_json::from_str(line.trim())
            .with_context(|| format!("party {i} printed {line:?}"))?;
        reports.push(report);
    }
    let got = reports
        .first()
        .and_then(|r| r.output.clone())
        .context("party 0 learned no output")?;
    println!();
    println!(
        "{:<7} {:>12} {:>12} {:>8} {:>10}",
        "party", "bytes sent", "bytes recv", "flights", "ms"
    );
    for r in &reports {
        println!(
            "{:<7} {:>12} {:>12} {:>8} {:>10.1}",
            r.index, r.bytes_sent, r.bytes_received, r.rounds, r.millis
        );
    }
    println!();
    println!("shared result  {got:?}");
    println!("plaintext      {expected:?}");
    if got != expected {
        bail!("the shared computation differs from the plaintext one");
    }
    println!("equal: the {parties} processes computed W·x + b exactly, no party saw x or W");
    Ok(())
}
