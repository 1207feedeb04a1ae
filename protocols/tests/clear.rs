//! The `clear` baseline through the registry: it answers exactly as the plaintext integer
//! model on random inputs, with and without logits; a server offers it only when its operator
//! lists it; a client that sends codes outside the architecture ends its own session and the
//! server keeps serving.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use veil_protocols::clear::{ClearAnswer, ClearQuery};
use veil_protocols::wire::Request;
use veil_protocols::{Client, ClientOptions, Protocol, Served, ServerConfig, SessionError};

mod common;
use common::start_with;

fn offering_clear() -> ServerConfig {
    let mut config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    config.protocols = Protocol::ALL.to_vec();
    config
}

#[test]
fn clear_is_insecure_and_not_offered_by_default() {
    assert!(Protocol::Clear.insecure());
    assert!(!Protocol::Clear.requires_trust());
    assert_eq!("clear".parse::<Protocol>(), Ok(Protocol::Clear));
    let config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    assert!(!config.protocols.contains(&Protocol::Clear));
    assert_eq!(config.protocols, Protocol::secure());
    for p in Protocol::secure() {
        assert!(!p.insecure(), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_answers_as_the_plaintext_integer_model() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let (addr, key) = start_with(offering_clear()).await;
    let mut rng = ChaCha20Rng::seed_from_u64(17);
    let max = model.architecture.input_max() as u8;
    let inputs: Vec<Vec<u8>> = (0..40)
        .map(|_| {
            (0..model.architecture.input_count())
                .map(|_| rng.random_range(0..=max))
                .collect()
        })
        .collect();
    for logits in [false, true] {
        let mut options = ClientOptions::new(Protocol::Clear, key);
        options.want_logits = logits;
        let mut client = Client::connect(&addr, options).await.unwrap();
        assert_eq!(client.reveals_logits(), logits);
        let preds = client.classify(&inputs).await.unwrap();
        for (x, p) in inputs.iter().zip(&preds) {
            assert_eq!(p.class, Some(model.predict_codes(x)));
            assert_eq!(p.logits, logits.then(|| model.logits(x)));
        }
        client.close().await.unwrap();
    }
}

#[tokio::test]
async fn a_server_that_does_not_list_clear_refuses_it() {
    let config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    let (addr, key) = start_with(config).await;
    let e = Client::connect(&addr, ClientOptions::new(Protocol::Clear, key))
        .await
        .err()
        .unwrap();
    match e {
        SessionError::Refused(why) => assert!(why.contains("clear"), "{why}"),
        e => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_clear_query_ends_only_its_own_session() {
    let mut config = offering_clear();
    config.security = veil_protocols::ServerSecurity::InsecurePlaintext;
    let served = Arc::new(Served::new(config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(veil_protocols::serve(listener, served));
    let model = veil_nn::bundled_model().unwrap().quantized;
    let n = model.architecture.input_count();

    for codes in [
        vec![0u8; n - 1],
        vec![255u8; n],
        vec![0u8; n + 1],
        vec![0u8; 1 << 20],
    ] {
        let mut ch = common::raw_session(&addr, None, Protocol::Clear).await;
        ch.send(&Request::Query { count: 1 }).await.unwrap();
        // An oversized query may meet a closed connection before it is all written.
        if ch.send(&ClearQuery { codes }).await.is_ok() {
            let _ = ch.flush().await;
        }
        // The server ends the session instead of answering.
        assert!(ch.recv::<ClearAnswer>().await.is_err());
    }

    // And still serves an honest client.
    let mut client = Client::connect(&addr, ClientOptions::insecure_plaintext(Protocol::Clear))
        .await
        .unwrap();
    let x = vec![1u8; n];
    let p = client.classify(std::slice::from_ref(&x)).await.unwrap();
    assert_eq!(p[0].class, Some(model.predict_codes(&x)));
    client.close().await.unwrap();
}
