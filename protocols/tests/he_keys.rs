//! HE evaluation keys kept across sessions: a second session from the same identity with the
//! same keys uploads no key and still gets the integer model's answers; another identity with
//! the same keys uploads its own; the store holds no more keys than its bound, the least
//! recently used going first; a key that does not match the hash offered for it is refused;
//! and a server that reveals classes only refuses HE, whose client decrypts the logits.

use std::sync::Arc;

use tokio::net::TcpListener;
use veil_net::Identity;
use veil_nn::data::digits_split;
use veil_protocols::he::{self, HeKeys, KeyAnswer, KeyHeader, KeyOffer};
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig};

mod common;

async fn start(store_keys: u64) -> (String, veil_net::PublicKey, Arc<Served>) {
    let mut config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    config.he_key_store_bytes = store_keys * veil_fhe::key_memory_bytes();
    let key = config.public_key().unwrap();
    let served = Arc::new(Served::new(config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(veil_protocols::serve(listener, served.clone()));
    (addr, key, served)
}

/// One HE session classifying the first test digit; returns the bytes the client sent.
async fn session(
    addr: &str,
    server: veil_net::PublicKey,
    identity: &Arc<Identity>,
    keys: &Arc<HeKeys>,
) -> u64 {
    let opts = ClientOptions::new(Protocol::He, server)
        .with_identity(identity.clone())
        .with_he_keys(keys.clone());
    let mut c = Client::connect(addr, opts).await.unwrap();
    let model = veil_nn::bundled_model().unwrap().quantized;
    let digit = &digits_split().test.samples[0];
    let codes = model.quantize_input(&digit.pixels);
    let p = c.classify(&[codes]).await.unwrap();
    assert_eq!(p[0].class, Some(model.predict(&digit.pixels)));
    let sent = c.stats().bytes_sent;
    c.close().await.unwrap();
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_identity_uploads_no_key_and_the_store_stays_bounded() {
    let (addr, server, served) = start(1).await;
    assert_eq!(served.he_keys().capacity(), 1);
    let keys = Arc::new(HeKeys::generate().unwrap());
    let (alice, bob) = (
        Arc::new(Identity::generate()),
        Arc::new(Identity::generate()),
    );

    let first = session(&addr, server, &alice, &keys).await;
    let second = session(&addr, server, &alice, &keys).await;
    assert!(first > keys.upload_bytes(), "{first}");
    assert!(
        second < first - keys.upload_bytes() + 4096,
        "{second} against {first}"
    );
    eprintln!("HE session bytes sent: first {first}, second {second}");
    assert_eq!(served.he_keys().len(), 1);

    // Another identity with the very same key bytes uploads them: keys are bound to the
    // identity that uploaded them. Its key takes the only place.
    let other = session(&addr, server, &bob, &keys).await;
    assert!(other > keys.upload_bytes());
    assert_eq!(served.he_keys().len(), 1);
    // Alice's key was evicted: she uploads again.
    let again = session(&addr, server, &alice, &keys).await;
    assert!(again > keys.upload_bytes());
    assert_eq!(served.he_keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_does_not_match_its_offered_hash_is_refused() {
    let (addr, server, served) = start(2).await;
    let arch = veil_nn::bundled_model().unwrap().quantized.architecture;
    let keys = HeKeys::generate().unwrap();
    let bytes = he::encode_key(
        &veil_fhe::FheClient::new(veil_fhe::PublicShape::of(&arch).unwrap())
            .compressed_evaluation_key(),
    )
    .unwrap();
    let mut ch = common::raw_session(&addr, Some(server), Protocol::He).await;
    // The hash of one key, the bytes of another.
    ch.send(&KeyOffer { hash: keys.hash() }).await.unwrap();
    ch.flush().await.unwrap();
    let answer: KeyAnswer = ch.recv().await.unwrap();
    assert!(!answer.stored);
    ch.send(&KeyHeader {
        bytes: bytes.len() as u64,
    })
    .await
    .unwrap();
    for chunk in bytes.chunks(he::KEY_CHUNK) {
        ch.send_bytes(chunk).await.unwrap();
    }
    ch.flush().await.unwrap();
    assert!(ch.recv_bytes().await.is_err(), "the server went on");
    assert_eq!(served.he_keys().len(), 0);
}

/// A server that reveals classes only refuses an HE client that asks for the logits, with a
/// message saying so, before any key is made or sent; an HE client that asks for the class is
/// answered with the class alone, computed under encryption, and it is the integer model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_only_server_refuses_he_logits_and_answers_the_class() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let mut config = ServerConfig::new(model.clone());
    config.allow_logits = false;
    let key = config.public_key().unwrap();
    let served = Arc::new(Served::new(config).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(veil_protocols::serve(listener, served));
    let mut opts = ClientOptions::new(Protocol::He, key);
    opts.want_logits = true;
    let refused = Client::connect(&addr, opts).await.err().expect("refused");
    assert!(
        matches!(&refused, veil_protocols::SessionError::Refused(m)
            if m.contains("classes only") && m.contains("logits")),
        "{refused}"
    );
    let mut c = Client::connect(&addr, ClientOptions::new(Protocol::He, key))
        .await
        .unwrap();
    assert!(!c.reveals_logits());
    let digit = &veil_nn::data::digits_split().test.samples[3];
    let p = c
        .classify(&[model.quantize_input(&digit.pixels)])
        .await
        .unwrap();
    assert_eq!(p[0].class, Some(model.predict(&digit.pixels)));
    assert!(p[0].logits.is_none());
    c.close().await.unwrap();
}
