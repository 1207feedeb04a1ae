//! Shamir secret sharing for people and processes: threshold custody of a file (split into
//! Feldman-verifiable share files, combined back, naming any tampered share), and the parts of
//! an n-process demo of BGW arithmetic computing the bundled model's first layer on a shared
//! digit with shared weights.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use veil_net::{ChannelConfig, Identity, PublicKey};
use veil_nn::data::digits_split;
use veil_nn::Model;
use veil_shamir::mpc::{
    linear_layer_plain, run_party as run_mesh_party, LinearInput, LinearLayerSpec, MeshSecurity,
    PartyConfig,
};
use veil_shamir::{CombinePolicy, ShamirError, ShareFile, SharingParams};
use zeroize::Zeroizing;

use crate::runtime::two_threads;

/// What [`split_file`] wrote.
#[derive(Debug, Clone)]
pub struct SplitOutcome {
    /// The share files, in share order.
    pub paths: Vec<PathBuf>,
    /// The size of the file split, in bytes.
    pub size: u64,
    /// The short hex id of the dealing (shared by every share).
    pub dealing: String,
}

/// Splits `file` (at most [`veil_shamir::secret::MAX_SECRET_LEN`] bytes) into `shares` share
/// files, any `threshold` of which recover it. Share `i` is written to `<file name>.share<i>`
/// in `out_dir` (default: beside the file), readable by its owner only.
pub fn split_file(
    threshold: usize,
    shares: usize,
    out_dir: Option<&Path>,
    file: &Path,
) -> Result<SplitOutcome> {
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
    let secret =
        Zeroizing::new(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?);
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
    let mut paths = Vec::with_capacity(files.len());
    for f in &files {
        let path = dir.join(format!("{name}.share{}", f.index()));
        write_private(&path, f.to_text().as_bytes())?;
        paths.push(path);
    }
    let dealing = files
        .first()
        .map(|f| f.dealing_id().short_hex())
        .context("the dealing made no shares")?;
    Ok(SplitOutcome {
        paths,
        size,
        dealing,
    })
}

/// Writes `data` to a file readable and writable by its owner only.
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
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

/// A file recovered by [`combine_files`].
pub struct CombinedFile {
    /// The file's bytes (wiped from memory when dropped).
    pub secret: Zeroizing<Vec<u8>>,
    /// Shares set aside because they fail verification: their index and path.
    pub rejected: Vec<(u32, String)>,
}

/// Recovers a file from share files. Strictly, any share that fails verification (or comes
/// from another dealing) fails the whole recovery, naming the shares; with `tolerant`, such
/// shares are set aside (and named in [`CombinedFile::rejected`]) as long as enough pass.
pub fn combine_files(paths: &[PathBuf], tolerant: bool) -> Result<CombinedFile> {
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
    let rejected = combined.rejected.iter().map(|&i| (i, path_of(i))).collect();
    Ok(CombinedFile {
        secret: combined.secret,
        rejected,
    })
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

/// What one party of the BGW demo reports.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct PartyReport {
    /// The party's index.
    pub index: usize,
    /// The layer's accumulators, for the party that learns them (party 0).
    pub output: Option<Vec<i64>>,
    /// Bytes the party sent.
    pub bytes_sent: u64,
    /// Bytes the party received.
    pub bytes_received: u64,
    /// Flights the party sent.
    pub rounds: u64,
    /// Wall time of the party's run, in milliseconds.
    pub millis: f64,
}

/// The first layer with weights of `model`: its weights and biases.
pub fn demo_layer(model: &Model) -> Result<(Vec<i64>, Vec<i64>)> {
    let layer = model
        .quantized
        .params
        .first()
        .context("the model has no layer with weights")?;
    let weights = layer.weights.iter().map(|&w| i64::from(w)).collect();
    let bias = layer.bias.iter().map(|&b| i64::from(b)).collect();
    Ok((weights, bias))
}

/// The input codes of test digit `digit` for `model`.
pub fn demo_input(model: &Model, digit: usize) -> Result<Vec<i64>> {
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

/// How one party of the demo runs.
#[derive(Debug, Clone)]
pub struct PartyArgs {
    /// This party's index.
    pub index: usize,
    /// Every party's address, in index order.
    pub addrs: Vec<SocketAddr>,
    /// The sharing degree t.
    pub degree: usize,
    /// The session id, 32 hex digits.
    pub session: String,
    /// The test digit party 0 holds.
    pub digit: usize,
    /// This party's identity file.
    pub identity: PathBuf,
    /// Every party's public key, in index order.
    pub keys: Vec<PublicKey>,
}

/// Runs one party of the demo: party 0 holds test digit `digit`, party 1 the first layer of
/// `model`, the others help; party 0 learns the layer's accumulators.
pub fn run_party(args: PartyArgs, model: &Model) -> Result<PartyReport> {
    let security = MeshSecurity {
        identity: Arc::new(Identity::load(&args.identity)?),
        keys: args.keys,
    };
    let session = parse_session(&args.session)?;
    let input = match args.index {
        0 => LinearInput::Client {
            x: demo_input(model, args.digit)?,
        },
        1 => {
            let (weights, bias) = demo_layer(model)?;
            LinearInput::Owner { weights, bias }
        }
        _ => LinearInput::Helper,
    };
    let config = PartyConfig::new(args.index, args.addrs, args.degree)
        .with_security(security)
        .with_session_id(session)
        .with_channel(ChannelConfig {
            connect_timeout: Duration::from_secs(20),
            ..ChannelConfig::default()
        });
    let rt = two_threads()?;
    let t0 = Instant::now();
    let out = rt.block_on(run_mesh_party(
        config,
        LinearLayerSpec {
            client: 0,
            owner: 1,
        },
        input,
    ))?;
    Ok(PartyReport {
        index: args.index,
        output: out.output,
        bytes_sent: out.stats.bytes_sent,
        bytes_received: out.stats.bytes_received,
        rounds: out.stats.rounds,
        millis: t0.elapsed().as_secs_f64() * 1e3,
    })
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
fn free_addrs(n: usize) -> Result<Vec<SocketAddr>> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr())
        .collect::<std::io::Result<_>>()?)
}

/// Everything the parties of one demo share: addresses, a session id, an identity file each
/// (removed when this is dropped) and every party's public key, with the plaintext result
/// they must reproduce.
#[derive(Debug)]
pub struct DemoSetup {
    /// Number of parties.
    pub parties: usize,
    /// The sharing degree: any `degree` colluding parties learn nothing.
    pub degree: usize,
    /// Every party's address, in index order.
    pub addrs: Vec<SocketAddr>,
    /// The session id, 32 hex digits.
    pub session: String,
    /// Every party's identity file, in index order.
    pub identity_files: Vec<PathBuf>,
    /// Every party's public key, in index order.
    pub keys: Vec<PublicKey>,
    /// Values in party 0's input.
    pub inputs: usize,
    /// Outputs of the layer (its biases).
    pub outputs: usize,
    /// The layer's accumulators computed in the clear.
    pub expected: Vec<i64>,
    dir: PathBuf,
}

impl Drop for DemoSetup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Prepares a demo of `parties` processes (3 to 16) on the bundled model's first layer and
/// test digit `digit`, checking the plaintext computation against the model's own.
pub fn prepare_demo(parties: usize, digit: usize) -> Result<DemoSetup> {
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
    veil_shamir::secure_rng().fill_bytes(&mut session);
    let session: String = session.iter().map(|b| format!("{b:02x}")).collect();
    // Each party gets its own identity file; every party pins every other's public key.
    let dir = std::env::temp_dir().join(format!("veil-shamir-demo-{session}"));
    std::fs::create_dir_all(&dir)?;
    let mut setup = DemoSetup {
        parties,
        degree,
        addrs,
        session,
        identity_files: Vec::with_capacity(parties),
        keys: Vec::with_capacity(parties),
        inputs: x.len(),
        outputs: bias.len(),
        expected,
        dir,
    };
    for i in 0..parties {
        let id = Identity::generate();
        let path = setup.dir.join(format!("party{i}.id"));
        id.save(&path)?;
        setup.identity_files.push(path);
        setup.keys.push(id.public());
    }
    Ok(setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_split_file_combines_back_and_a_tampered_share_is_named() {
        let dir = std::env::temp_dir().join(format!("veil-harness-shamir-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret.txt");
        std::fs::write(&file, b"correct horse battery staple").unwrap();
        let done = split_file(2, 3, None, &file).unwrap();
        assert_eq!(done.paths.len(), 3);
        assert_eq!(done.size, 28);
        let back = combine_files(&done.paths[1..], false).unwrap();
        assert_eq!(&back.secret[..], b"correct horse battery staple");
        assert!(back.rejected.is_empty());
        // Change the first digit of the last data line of share 1.
        let text = std::fs::read_to_string(&done.paths[0]).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let k = lines.iter().rposition(|l| !l.starts_with("-----")).unwrap();
        let flipped = if lines[k].starts_with('0') { "1" } else { "0" };
        lines[k].replace_range(0..1, flipped);
        std::fs::write(&done.paths[0], lines.join("\n") + "\n").unwrap();
        assert!(combine_files(&done.paths, false).is_err());
        let tolerant = combine_files(&done.paths, true).unwrap();
        assert_eq!(&tolerant.secret[..], b"correct horse battery staple");
        assert_eq!(tolerant.rejected.len(), 1);
        assert!(split_file(4, 3, None, &file).is_err());
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn sessions_must_be_32_hex_digits() {
        assert_eq!(parse_session(&"0f".repeat(16)).unwrap(), [0x0f; 16]);
        assert!(parse_session("0f").is_err());
        assert!(parse_session(&"zz".repeat(16)).is_err());
        assert!(parse_session(&"é".repeat(16)).is_err());
        assert!(prepare_demo(2, 0).is_err());
    }
}
