//! The HE session: the client's evaluation key once, then encrypted inputs and encrypted
//! logits. See `he/SPEC.md`.

use serde::{Deserialize, Serialize};
use tfhe::shortint::{CompressedServerKey, ServerKey};
use veil_fhe::{EncryptedInput, EncryptedOutput, FheClient, FheServer};
use veil_net::Channel;
use veil_nn::compile::Prediction;
use veil_nn::quant::{argmax_i64, QuantModel};

use crate::SessionError;

/// Bytes of key per frame.
pub const KEY_CHUNK: usize = 16 << 20;
/// Largest serialized ciphertext message accepted (a query is about 1 MiB).
pub const MAX_CIPHERTEXT_BYTES: usize = 64 << 20;

/// Announces the key upload.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct KeyHeader {
    /// Total bytes of the serialized compressed evaluation key.
    pub bytes: u64,
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &'static str,
) -> Result<T, SessionError> {
    let cfg = bincode::config::standard().with_limit::<{ 1 << 30 }>();
    match bincode::serde::decode_from_slice(bytes, cfg) {
        Ok((v, used)) if used == bytes.len() => Ok(v),
        Ok(_) => Err(SessionError::Protocol(format!("{what}: trailing bytes"))),
        Err(e) => Err(SessionError::Protocol(format!("{what}: {e}"))),
    }
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, SessionError> {
    bincode::serde::encode_to_vec(v, bincode::config::standard())
        .map_err(|e| SessionError::Invalid(format!("encoding: {e}")))
}

/// Runs blocking, CPU-heavy work off the async threads; a panic inside (for instance tfhe
/// rejecting a malformed key) becomes an error of this session only.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, SessionError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| SessionError::Protocol(format!("evaluation aborted: {e}")))
}

/// Client: sends the compressed evaluation key of `client`.
pub async fn send_key(ch: &mut Channel, client: &FheClient) -> Result<u64, SessionError> {
    let bytes = encode(&client.compressed_evaluation_key())?;
    ch.send(&KeyHeader {
        bytes: bytes.len() as u64,
    })
    .await?;
    for chunk in bytes.chunks(KEY_CHUNK) {
        ch.send_bytes(chunk).await?;
    }
    ch.flush().await?;
    Ok(bytes.len() as u64)
}

/// Server: receives a client's key (at most `max_bytes`) and prepares `model` under it.
pub async fn receive_key(
    ch: &mut Channel,
    model: &QuantModel,
    max_bytes: u64,
) -> Result<FheServer, SessionError> {
    let header: KeyHeader = ch.recv().await?;
    if header.bytes == 0 || header.bytes > max_bytes {
        return Err(SessionError::Protocol(format!(
            "evaluation key of {} bytes (limit {max_bytes})",
            header.bytes
        )));
    }
    let mut bytes = Vec::with_capacity(header.bytes.min(KEY_CHUNK as u64) as usize);
    while (bytes.len() as u64) < header.bytes {
        let chunk = ch.recv_bytes().await?;
        if chunk.is_empty() || bytes.len() as u64 + chunk.len() as u64 > header.bytes {
            return Err(SessionError::Protocol(
                "evaluation key chunks exceed the announced size".into(),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    let model = model.clone();
    blocking(move || -> Result<FheServer, SessionError> {
        let compressed: CompressedServerKey = decode(&bytes, "evaluation key")?;
        let key: ServerKey = compressed.decompress();
        Ok(FheServer::new(&model, key)?)
    })
    .await?
}

/// Server: answers one encrypted query.
pub async fn serve_one(
    ch: &mut Channel,
    server: &std::sync::Arc<FheServer>,
) -> Result<(), SessionError> {
    let bytes = ch.recv_bytes().await?;
    if bytes.len() > MAX_CIPHERTEXT_BYTES {
        return Err(SessionError::Protocol("query too large".into()));
    }
    let server = server.clone();
    let answer = blocking(move || -> Result<Vec<u8>, SessionError> {
        let input: EncryptedInput = decode(&bytes, "encrypted input")?;
        let out = server.eval(&input)?;
        encode(&out)
    })
    .await??;
    ch.send_bytes(&answer).await?;
    ch.flush().await?;
    Ok(())
}

/// Client: one encrypted query.
pub async fn query_one(
    ch: &mut Channel,
    client: &FheClient,
    codes: &[u8],
) -> Result<Prediction, SessionError> {
    let input = client.encrypt(codes)?;
    ch.send_bytes(&encode(&input)?).await?;
    ch.flush().await?;
    let bytes = ch.recv_bytes().await?;
    let out: EncryptedOutput = decode(&bytes, "encrypted output")?;
    let logits = client.decrypt(&out)?;
    Ok(Prediction {
        class: Some(argmax_i64(&logits)),
        logits: Some(logits),
    })
}
