//! Embedding Veil in a service: an HTTP endpoint (axum) that classifies digits privately.
//!
//! Two services in one process, as they would run on two machines:
//!
//! - the **model owner** serves the bundled model with `veil_protocols::serve` on a loopback
//!   port (HE, Yao and GMW);
//! - the **data owner's gateway** exposes `POST /classify` (JSON `{"pixels": [64 integers
//!   0..=16], "protocol": "yao" | "gmw" | "he"}`) and answers each request by running a private
//!   inference session against the model owner with `veil_protocols::Client`: the image never
//!   leaves the gateway in the clear, and the gateway never sees the model. The gateway pins
//!   the model owner's public key; the model owner serves only the gateway's key (its
//!   allow-list), so every session is encrypted and mutually authenticated.
//!
//! Run with `cargo run --example private_http`, then for instance
//! `curl -s localhost:8080/classify -H 'content-type: application/json' -d
//! '{"pixels":[0,0,5,13,9,1,0,0,0,0,13,15,10,15,5,0,0,3,15,2,0,11,8,0,0,4,12,0,0,8,8,0,0,5,8,0,0,9,8,0,0,4,11,0,1,12,7,0,0,2,14,5,10,12,0,0,0,0,6,13,10,0,0,0],"protocol":"yao"}'`.
//! With `--once` it serves one request to itself and exits (used as a smoke test).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig};

#[derive(Deserialize)]
struct ClassifyRequest {
    pixels: Vec<u8>,
    #[serde(default = "default_protocol")]
    protocol: String,
}

fn default_protocol() -> String {
    "yao".into()
}

#[derive(Serialize)]
struct ClassifyResponse {
    class: usize,
    protocol: String,
    bytes_exchanged: u64,
}

struct Gateway {
    model_server: String,
    /// The model owner's public key, pinned.
    server_key: veil_net::PublicKey,
    /// The gateway's own identity, on the model owner's allow-list.
    identity: Arc<veil_net::Identity>,
}

async fn classify(
    State(gw): State<Arc<Gateway>>,
    Json(req): Json<ClassifyRequest>,
) -> Result<Json<ClassifyResponse>, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let protocol: Protocol = req.protocol.parse().map_err(bad)?;
    if req.pixels.len() != 64 || req.pixels.iter().any(|&p| p > 16) {
        return Err(bad("pixels: 64 integers from 0 to 16".into()));
    }
    let failed = |e: veil_protocols::SessionError| (StatusCode::BAD_GATEWAY, e.to_string());
    let options = ClientOptions::new(protocol, gw.server_key).with_identity(gw.identity.clone());
    let mut client = Client::connect(&gw.model_server, options)
        .await
        .map_err(failed)?;
    let mut pixels = [0u8; 64];
    pixels.copy_from_slice(&req.pixels);
    let codes = veil_nn::quant::quantize_pixels(&pixels, client.architecture().input_bits);
    let prediction = client.classify(&[codes]).await.map_err(failed)?;
    let stats = client.close().await.map_err(failed)?;
    Ok(Json(ClassifyResponse {
        class: prediction[0].class.unwrap_or(usize::MAX),
        protocol: protocol.to_string(),
        bytes_exchanged: stats.total_bytes(),
    }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The gateway's identity, which the model owner allows (in production both keys live in
    // identity files: `veil identity new`).
    let identity = Arc::new(veil_net::Identity::generate());

    // The model owner's side.
    let model = veil_nn::bundled_model()?.quantized;
    let server_identity = Arc::new(veil_net::Identity::generate());
    let server_key = server_identity.public();
    let mut config = ServerConfig::new(model);
    config.security = veil_protocols::ServerSecurity::Noise {
        identity: server_identity,
        allowed_clients: Some(vec![identity.public()].into()),
    };
    let served = Arc::new(Served::new(config)?);
    let model_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let model_server = model_listener.local_addr()?.to_string();
    tokio::spawn(veil_protocols::serve(model_listener, served));

    // The data owner's gateway.
    let app = Router::new()
        .route("/classify", post(classify))
        .with_state(Arc::new(Gateway {
            model_server,
            server_key,
            identity,
        }));
    let once = std::env::args().any(|a| a == "--once");
    let http = tokio::net::TcpListener::bind(if once {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:8080"
    })
    .await?;
    let http_addr = http.local_addr()?;
    println!("gateway on http://{http_addr}/classify");
    if !once {
        axum::serve(http, app).await?;
        return Ok(());
    }
    tokio::spawn(async move { axum::serve(http, app).await });
    // Smoke test: one request to ourselves over HTTP, a raw HTTP/1.1 exchange.
    let digit = &veil_nn::data::digits_split().test.samples[0];
    let body =
        serde_json::json!({ "pixels": digit.pixels.to_vec(), "protocol": "yao" }).to_string();
    let mut sock = tokio::net::TcpStream::connect(http_addr).await?;
    let request = format!(
        "POST /classify HTTP/1.1\r\nhost: {http_addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tokio::io::AsyncWriteExt::write_all(&mut sock, request.as_bytes()).await?;
    let mut response = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut sock, &mut response).await?;
    let json = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    println!("{json}");
    let v: serde_json::Value = serde_json::from_str(json)?;
    let expected = veil_nn::bundled_model()?.quantized.predict(&digit.pixels);
    if v["class"].as_u64() != Some(expected as u64) {
        return Err(format!("expected class {expected}, got {json}").into());
    }
    Ok(())
}
