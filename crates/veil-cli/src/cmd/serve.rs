//! `veil serve`: serves a model privately to clients over TCP until killed, by
//! `veil_harness::server::serve`. The first line printed names the address, the second the
//! public key clients pin.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use veil_harness::server::{parse_protocols, serve, ServeOptions, ServeSecurity};
use veil_harness::PublicKey;

use super::load_model;

/// `veil serve` flags.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Model file. Without it: `models/digits.json` if that file exists, else the copy
    /// compiled into this binary.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Protocols offered, comma separated: he, yao, gmw, mixed, and clear, the INSECURE
    /// baseline (the client's input in the clear), offered only when listed here.
    #[arg(long, default_value = "he,yao,gmw,mixed")]
    protocol: String,
    /// Address to listen on (port 0 picks a free port; the first line printed names it).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: String,
    /// Never reveal logits, only classes (Yao, GMW and mixed); HE, whose clients decrypt the
    /// logits, is then refused with a message saying so.
    #[arg(long)]
    no_logits: bool,
    /// Longest a client session may last, in seconds.
    #[arg(long, default_value_t = 600)]
    session_timeout: u64,
    /// The server's identity file (`veil identity new`); without it, a fresh identity for
    /// this run. The second line printed is the public key clients pin.
    #[arg(long)]
    identity: Option<PathBuf>,
    /// Serve only clients with this public key (repeatable); without it, any client. The
    /// listed clients are trusted: they are served GMW and mixed too.
    #[arg(long = "allow-client", value_name = "KEY")]
    allow_client: Vec<PublicKey>,
    /// Serve GMW and mixed to every client. Both are secure only against semi-honest clients
    /// (a client that deviates from them can learn more of the model than its outputs), so
    /// without this flag they are served only to the clients of --allow-client, and any other
    /// client asking for one is refused with a message saying so. Yao and HE are served to
    /// any client.
    #[arg(long)]
    trust_clients: bool,
    /// Most inputs one session may have classified; the client is told at its welcome, and a
    /// client that sends more is cut off.
    #[arg(long, default_value_t = veil_harness::budget::DEFAULT_QUERIES_PER_SESSION)]
    max_queries_per_session: u64,
    /// Most inputs one client may have classified per --query-window: a client is its
    /// identity when --allow-client lists who is served, else its address (identities cost
    /// nothing to make). Bounds what a client can learn of the model from its answers.
    #[arg(long, default_value_t = veil_harness::budget::DEFAULT_QUERIES_PER_WINDOW)]
    max_queries_per_window: u64,
    /// The window of --max-queries-per-window, in seconds.
    #[arg(long, default_value_t = veil_harness::budget::DEFAULT_QUERY_WINDOW.as_secs())]
    query_window: u64,
    /// Serve without encryption or authentication: for measurements on a trusted network.
    #[arg(long, conflicts_with_all = ["identity", "allow_client"])]
    insecure_plaintext: bool,
}

/// Runs `veil serve`.
pub fn run(a: ServeArgs) -> Result<()> {
    super::init_logs();
    let (model, source) = load_model(a.model.as_deref())?;
    tracing::info!(model = %source, "serving");
    let options = ServeOptions {
        protocols: parse_protocols(&a.protocol)?,
        listen: a.listen,
        allow_logits: !a.no_logits,
        session_timeout: Duration::from_secs(a.session_timeout),
        max_queries_per_session: a.max_queries_per_session,
        max_queries_per_window: a.max_queries_per_window,
        query_window: Duration::from_secs(a.query_window),
        security: ServeSecurity {
            identity: a.identity,
            allow: a.allow_client,
            trust_clients: a.trust_clients,
            plaintext: a.insecure_plaintext,
        },
    };
    serve(&model, options, |addr, key| {
        // The first line of standard output names the address and the second the key clients
        // pin, for scripts and `veil demo`.
        let key = match key {
            Some(k) => k.to_string(),
            None => "none (insecure plaintext)".to_string(),
        };
        super::print_banner(&format!("listening on {addr}\nserver key {key}\n"));
        Ok(())
    })
}
