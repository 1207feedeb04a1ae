//! The client evaluation harness: a private-inference client run over a set of images against
//! a server, with its predictions, accuracy, agreement with the plaintext integer model,
//! latency (median and 95th percentile per query) and traffic.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use veil_net::{Identity, PublicKey, Stats};
use veil_nn::graph::QuantGraph;
use veil_protocols::{Client, Protocol};

pub use veil_protocols::he::HeKeys;
pub use veil_protocols::{ClientOptions, ClientSecurity};

use crate::data::{fit, RawImage};
use crate::progress::Progress;
use crate::runtime::multi_thread;
use crate::stats::{accuracy, fraction, median, p95};

/// The security of a session that pins `server_key`, authenticating as the identity in the
/// file `identity` (a fresh key when `None`).
pub fn pinned_security(server_key: PublicKey, identity: Option<&Path>) -> Result<ClientSecurity> {
    let identity = identity.map(Identity::load).transpose()?.map(Arc::new);
    Ok(ClientSecurity::Noise {
        server_key,
        identity,
    })
}

/// One protocol's results on a set of images.
#[derive(Debug, Clone, Serialize)]
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
    /// The offline phase run before each query, all queries together ([`Client::prepare`]:
    /// Yao's evaluations garbled ahead, GMW's triples; nothing for HE and `clear`).
    pub prepare_ms: f64,
    /// Bytes of those offline phases, both directions.
    pub prepare_bytes: u64,
    /// Online time for all images (the queries alone).
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
    /// Bytes per image online (after setup, the offline phases before each query left out),
    /// both directions.
    pub bytes_per_input: f64,
    /// Bytes the client sent online.
    pub online_bytes_sent: u64,
    /// Bytes the client received online.
    pub online_bytes_received: u64,
    /// Flights the client sent, setup included.
    pub rounds: u64,
    /// Flights per query online.
    pub rounds_per_query: f64,
}

/// Runs `images` through a session with the server at `addr`, one query per image (or one
/// batched query when `batch` is set), each query's offline phase run just before it
/// ([`Client::prepare`]) and timed apart from it when `prepare`, or inside the query, on the
/// spot, when not. The images are fitted to the model's input shape once
/// the session tells the architecture ([`fit`]). With `reference`, a local copy of the served
/// model, the report gives the agreement with its integer predictions.
pub async fn infer_session(
    addr: &str,
    opts: ClientOptions,
    images: &[RawImage],
    batch: bool,
    prepare: bool,
    reference: Option<&QuantGraph>,
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
    let queries: Vec<&[Vec<u8>]> = if batch {
        vec![&codes[..]]
    } else {
        codes.chunks(1).collect()
    };
    let nq = queries.len();
    let (mut online, mut prepared) = (Stats::default(), Stats::default());
    let mut prepare_ms = 0.0;
    for q in queries {
        let (t, before) = (Instant::now(), client.stats());
        if prepare {
            client.prepare(q.len()).await?;
        }
        prepare_ms += t.elapsed().as_secs_f64() * 1e3;
        prepared = prepared + client.stats().since(&before);
        let (t, before) = (Instant::now(), client.stats());
        preds.extend(client.classify(q).await?);
        per_query.push(t.elapsed().as_secs_f64() * 1e3);
        online = online + client.stats().since(&before);
    }
    let online_ms: f64 = per_query.iter().sum();
    let stats = client.stats();
    client.close().await?;
    let classes: Vec<usize> = preds
        .iter()
        .map(|p| p.class.unwrap_or(usize::MAX))
        .collect();
    let logits: Option<Vec<Vec<i64>>> = preds.iter().map(|p| p.logits.clone()).collect();
    let n = images.len().max(1) as f64;
    let accuracy = labels.as_ref().map(|l| accuracy(&classes, l));
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
        .map(|d| fraction(classes.len().saturating_sub(d.len()), images.len()));
    let (med, p95) = if batch {
        (None, None)
    } else {
        (Some(median(per_query.clone())), p95(&per_query))
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
        prepare_ms,
        prepare_bytes: prepared.total_bytes(),
        online_ms,
        online_ms_per_input: online_ms / n,
        online_ms_median: med,
        online_ms_p95: p95,
        bytes_sent: stats.bytes_sent,
        bytes_received: stats.bytes_received,
        setup_bytes: setup.total_bytes(),
        bytes_per_input: online.total_bytes() as f64 / n,
        online_bytes_sent: online.bytes_sent,
        online_bytes_received: online.bytes_received,
        rounds: stats.rounds,
        rounds_per_query: online.rounds as f64 / nq.max(1) as f64,
    })
}

/// [`infer_session`] on a runtime of its own, for callers without one.
pub fn infer(
    addr: &str,
    opts: ClientOptions,
    images: &[RawImage],
    batch: bool,
    reference: Option<&QuantGraph>,
) -> Result<InferReport> {
    multi_thread()?.block_on(infer_session(addr, opts, images, batch, true, reference))
}

/// Classifies `images` with every secure protocol against the server at `addr`, which must
/// hold `key` and serve them all (GMW to this client too): one session per protocol, a batch
/// for protocols with lanes, each compared with `reference`. One progress phase per protocol.
pub fn compare_protocols(
    addr: &str,
    key: PublicKey,
    images: &[RawImage],
    reference: &QuantGraph,
    progress: &mut dyn Progress,
) -> Result<Vec<InferReport>> {
    let rt = multi_thread()?;
    let mut rows = Vec::new();
    for p in Protocol::secure() {
        progress.phase(&format!("running {p}"), None);
        let r = rt.block_on(infer_session(
            addr,
            ClientOptions::new(p, key),
            images,
            veil_protocols::registry::get(p).lanes() > 1,
            true,
            Some(reference),
        ))?;
        progress.finish();
        rows.push(r);
    }
    Ok(rows)
}
