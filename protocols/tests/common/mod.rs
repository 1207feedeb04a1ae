//! What the hostile-client tests share: small models, a frame reader and a log sink.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use veil_nn::quant::{QLayer, QuantModel, Requant};

/// A small 64-3-10 network, so that a session moves little data; the frame structure of each
/// protocol is the same as for the bundled model.
pub fn small_model() -> QuantModel {
    let hidden = 3;
    let (w1, w2) = sparse_weights(hidden);
    QuantModel {
        input_bits: 4,
        layers: vec![
            QLayer {
                inputs: 64,
                outputs: hidden,
                weight_bits: 4,
                weights: w1,
                bias: vec![5, -9, 13],
                requant: Some(Requant {
                    shift: 6,
                    out_bits: 3,
                }),
            },
            QLayer {
                inputs: hidden,
                outputs: 10,
                weight_bits: 4,
                weights: w2,
                bias: (0..10).map(|i| i - 5).collect(),
                requant: None,
            },
        ],
    }
}

/// The weights of a 64-`hidden`-10 network: a sparse first layer (one input in eight), so
/// that each hidden accumulator's range fits one bootstrap, and a dense second layer.
pub fn sparse_weights(hidden: usize) -> (Vec<i8>, Vec<i8>) {
    let w1: Vec<i8> = (0..64 * hidden)
        .map(|i| {
            if i % 8 == 0 {
                ((i / 8 % 7) as i8) - 3
            } else {
                0
            }
        })
        .collect();
    let w2: Vec<i8> = (0..hidden * 10).map(|i| ((i * 3 % 15) as i8) - 7).collect();
    (w1, w2)
}

/// The two legs of a one-connection proxy: accepts one client on `listener`, connects to
/// `server`, and returns (client read, client write, server read, server write).
pub async fn proxy_legs(
    listener: TcpListener,
    server: std::net::SocketAddr,
) -> Option<(OwnedReadHalf, OwnedWriteHalf, OwnedReadHalf, OwnedWriteHalf)> {
    let (inbound, _) = listener.accept().await.ok()?;
    let outbound = TcpStream::connect(server).await.ok()?;
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    Some((ir, iw, or, ow))
}

/// Reads one frame (4-byte LE length, payload) as it travels; `None` when the stream ends.
pub async fn read_frame(from: &mut OwnedReadHalf) -> Option<([u8; 4], Vec<u8>)> {
    let mut header = [0u8; 4];
    from.read_exact(&mut header).await.ok()?;
    let mut payload = vec![0u8; u32::from_le_bytes(header) as usize];
    from.read_exact(&mut payload).await.ok()?;
    Some((header, payload))
}

/// Captures the server's logs.
/// Captures the server's logs.
#[derive(Clone, Default)]
pub struct Logs(pub Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serves `config` on a loopback port in this runtime; returns the address and the server's
/// public key.
pub async fn start_with(config: veil_protocols::ServerConfig) -> (String, veil_net::PublicKey) {
    let key = config.public_key().expect("an encrypted server");
    let served = Arc::new(veil_protocols::Served::new(config).expect("the model compiles"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    tokio::spawn(veil_protocols::serve(listener, served));
    (addr, key)
}

/// A client written by hand: connected, sealed against `server_key` with a fresh identity
/// (plaintext without one), its hello for `protocol` sent and the welcome read, so that a test
/// can send what a `Client` would not. Panics unless the server accepts.
pub async fn raw_session(
    addr: &str,
    server_key: Option<veil_net::PublicKey>,
    protocol: veil_protocols::Protocol,
) -> veil_net::Channel {
    use veil_protocols::wire::{Hello, Welcome, WIRE_VERSION};
    let mut ch = veil_net::Channel::connect(addr, veil_net::ChannelConfig::default())
        .await
        .unwrap();
    if let Some(key) = server_key {
        ch.secure_client(&veil_net::Identity::generate(), &key)
            .await
            .unwrap();
    }
    ch.send(&Hello {
        version: WIRE_VERSION,
        protocol,
        want_logits: false,
    })
    .await
    .unwrap();
    ch.flush().await.unwrap();
    match ch.recv::<Welcome>().await.unwrap() {
        Welcome::Accepted { .. } => ch,
        Welcome::Refused(why) => panic!("refused: {why}"),
    }
}
