//! Secure channels end to end: the Noise IK handshake over real sockets and in memory, sealed
//! frames of every size, pinning, allow-lists, plaintext peers and bytes changed in transit.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use veil_net::{tcp_pair, Channel, ChannelConfig, Identity, NetError, PublicKey};

fn config() -> ChannelConfig {
    ChannelConfig::default().with_timeouts(Duration::from_millis(1500))
}

async fn secure_pair(
    server_id: &Identity,
    client_id: &Identity,
    allow: Option<Vec<PublicKey>>,
) -> (
    Result<Channel, NetError>,
    Result<(Channel, PublicKey), NetError>,
) {
    let (mut c, mut s) = tcp_pair(config()).await.unwrap();
    let pin = server_id.public();
    let client = async {
        c.secure_client(client_id, &pin).await?;
        Ok(c)
    };
    let server = async {
        let key = s.secure_server(server_id, allow.as_deref()).await?;
        Ok((s, key))
    };
    tokio::join!(client, server)
}

#[tokio::test]
async fn sealed_messages_and_bulk_frames_round_trip() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let (c, s) = secure_pair(&sid, &cid, None).await;
    let (mut c, (mut s, key)) = (c.unwrap(), s.unwrap());
    assert_eq!(key, cid.public());
    assert!(c.is_secure() && s.is_secure());
    assert_eq!(c.peer_key(), Some(sid.public()));
    let big: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
    let sent = big.clone();
    let client = tokio::spawn(async move {
        c.send(&(7u64, "hello".to_string())).await.unwrap();
        c.send_bytes(&sent).await.unwrap();
        c.send_bytes(&[]).await.unwrap();
        let back: Vec<u8> = c.recv_bytes().await.unwrap();
        c.close().await.unwrap();
        back
    });
    let msg: (u64, String) = s.recv().await.unwrap();
    assert_eq!(msg, (7, "hello".to_string()));
    let got = s.recv_bytes().await.unwrap();
    assert_eq!(got, big);
    assert!(s.recv_bytes().await.unwrap().is_empty());
    s.send_bytes(b"reply").await.unwrap();
    s.flush().await.unwrap();
    assert_eq!(client.await.unwrap(), b"reply");
    assert!(s.recv_bytes().await.unwrap_err().is_peer_closed());
}

#[tokio::test]
async fn memory_channels_seal_too() {
    let (sid, cid) = (Identity::generate(), Identity::generate());
    let (mut c, mut s) = Channel::memory_pair(config());
    let pin = sid.public();
    let (a, b) = tokio::join!(c.secure_client(&cid, &pin), s.secure_server(&sid, None));
    a.unwrap();
    b.unwrap();
    c.send(&vec![1u32, 2, 3]).await.unwrap();
    assert_eq!(s.recv::<Vec<u32>>().await.unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn a_wrong_pin_fails_on_both_sides() {
    let (sid, cid, other) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let (mut c, mut s) = tcp_pair(config()).await.unwrap();
    let wrong = other.public();
    let (a, b) = tokio::join!(c.secure_client(&cid, &wrong), s.secure_server(&sid, None));
    assert!(matches!(b, Err(NetError::Handshake(_))), "{b:?}");
    // The server gives up without answering; the client sees the connection end.
    drop(s);
    assert!(a.is_err(), "{a:?}");
}

#[tokio::test]
async fn the_allow_list_refuses_unknown_clients_before_any_message() {
    let (sid, known, stranger) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let (c, s) = secure_pair(&sid, &stranger, Some(vec![known.public()])).await;
    let err = c.unwrap_err();
    assert!(matches!(err, NetError::Refused(_)), "{err:?}");
    assert!(err.to_string().contains("does not accept"), "{err}");
    let err = s.unwrap_err();
    assert!(matches!(err, NetError::Refused(_)), "{err:?}");
    let (c, s) = secure_pair(&sid, &known, Some(vec![stranger.public(), known.public()])).await;
    assert!(c.is_ok() && s.is_ok());
}

#[tokio::test]
async fn a_plaintext_client_fails_the_handshake() {
    let sid = Identity::generate();
    let (mut c, mut s) = tcp_pair(config()).await.unwrap();
    c.send(&"Hello, I speak plaintext".to_string())
        .await
        .unwrap();
    c.flush().await.unwrap();
    let err = s.secure_server(&sid, None).await.unwrap_err();
    assert!(matches!(err, NetError::Handshake(_)), "{err:?}");
    // And a secure client against a plaintext server that answers something else.
    let (mut c, mut s) = tcp_pair(config()).await.unwrap();
    let pin = sid.public();
    let cid = Identity::generate();
    let plain_server = async {
        let _ = s.recv_bytes().await;
        s.send(&"Welcome".to_string()).await.unwrap();
        s.flush().await.unwrap();
        s
    };
    let (a, _s) = tokio::join!(c.secure_client(&cid, &pin), plain_server);
    assert!(matches!(a, Err(NetError::Handshake(_))), "{a:?}");
}

/// Relays client to server, flipping one bit of the byte at `flip` (counted over the whole
/// client-to-server stream).
async fn flipping_proxy(target: std::net::SocketAddr, flip: usize) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (inbound, _) = listener.accept().await.unwrap();
        let outbound = TcpStream::connect(target).await.unwrap();
        let (mut ir, mut iw) = inbound.into_split();
        let (mut or, mut ow) = outbound.into_split();
        let up = async move {
            let mut buf = vec![0u8; 4096];
            let mut seen = 0usize;
            loop {
                let n = match ir.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if (seen..seen + n).contains(&flip) {
                    buf[flip - seen] ^= 0x10;
                }
                seen += n;
                if ow.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
            let _ = ow.shutdown().await;
        };
        let down = async move {
            let _ = tokio::io::copy(&mut or, &mut iw).await;
        };
        tokio::join!(up, down);
    });
    addr
}

#[tokio::test]
async fn a_bit_flipped_in_transit_is_detected_not_delivered() {
    // The client's stream: the handshake frame (4 + 96 bytes), then sealed frames. Flip a bit
    // of the first sealed frame's length header, its body and its tag.
    for flip in [100, 101, 104, 110, 130] {
        let (sid, cid) = (Identity::generate(), Identity::generate());
        let pin = sid.public();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let proxy = flipping_proxy(target, flip).await;
        let server = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            let mut s = Channel::from_tcp(sock, config());
            s.secure_server(&sid, None).await.unwrap();
            let first = s.recv_bytes().await;
            let second = s.recv_bytes().await;
            (first, second)
        });
        let mut c = Channel::connect(proxy, config()).await.unwrap();
        c.secure_client(&cid, &pin).await.unwrap();
        c.send_bytes(&[0x5a; 40]).await.unwrap();
        c.send_bytes(b"after").await.unwrap();
        c.flush().await.unwrap();
        let (first, second) = server.await.unwrap();
        assert!(first.is_err(), "flip at {flip}: {first:?}");
        // Nothing after a failed frame is delivered either.
        assert!(second.is_err(), "flip at {flip}: {second:?}");
        drop(c);
    }
}
