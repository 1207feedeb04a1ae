//! One in-process server on loopback: eight concurrent clients of mixed protocols, a client
//! that vanishes mid-protocol and one that sends garbage, and the server keeps serving; GMW
//! only for the clients the server trusts.

use std::sync::Arc;

use veil_net::{Channel, ChannelConfig, Identity, NetError, PublicKey};
use veil_nn::data::digits_split;
use veil_protocols::{Client, ClientOptions, Protocol, ServerConfig, ServerSecurity, SessionError};

mod common;
use common::start_with;

/// A server that trusts every client (GMW included).
async fn start() -> (String, PublicKey) {
    let mut config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    config.trust_clients = true;
    start_with(config).await
}

async fn classify(
    (addr, key): (String, PublicKey),
    protocol: Protocol,
    from: usize,
    n: usize,
    logits: bool,
) -> (Vec<usize>, Vec<Option<Vec<i64>>>) {
    let mut opts = ClientOptions::new(protocol, key);
    opts.want_logits = logits;
    let mut c = Client::connect(&addr, opts).await.unwrap();
    let test = digits_split().test;
    let codes: Vec<Vec<u8>> = test.samples[from..from + n]
        .iter()
        .map(|s| veil_nn::quant::quantize_pixels(&s.pixels, c.architecture().input_bits))
        .collect();
    let preds = c.classify(&codes).await.unwrap();
    c.close().await.unwrap();
    (
        preds.iter().map(|p| p.class.unwrap()).collect(),
        preds.into_iter().map(|p| p.logits).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_mixed_clients_and_a_broken_one() {
    let (addr, key) = start().await;
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;

    // A client that starts a Yao session and disappears in the middle of its first query.
    let broken = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut ch = common::raw_session(&addr, Some(key), Protocol::Yao).await;
            ch.send(&veil_protocols::wire::Request::Query { count: 1 })
                .await
                .unwrap();
            ch.flush().await.unwrap();
            let _ = ch.recv_bytes().await;
            drop(ch);
        })
    };
    // And one that sends garbage instead of a hello.
    let garbage = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut ch = Channel::connect(addr.as_str(), ChannelConfig::default())
                .await
                .unwrap();
            ch.send_bytes(&[0xff; 100]).await.unwrap();
            ch.flush().await.unwrap();
            assert!(ch.recv_bytes().await.is_err());
        })
    };

    let jobs = vec![
        (Protocol::Yao, 0, 3, false),
        (Protocol::Yao, 10, 3, true),
        (Protocol::Yao, 20, 2, false),
        (Protocol::Gmw, 0, 5, false),
        (Protocol::Gmw, 30, 3, true),
        (Protocol::Gmw, 40, 2, false),
        (Protocol::He, 0, 1, false),
        (Protocol::He, 50, 1, false),
    ];
    let handles: Vec<_> = jobs
        .iter()
        .map(|&(p, from, n, logits)| {
            tokio::spawn(classify((addr.clone(), key), p, from, n, logits))
        })
        .collect();
    for ((p, from, n, logits), h) in jobs.into_iter().zip(handles) {
        let (classes, lg) = h.await.unwrap();
        let want: Vec<usize> = test.samples[from..from + n]
            .iter()
            .map(|s| model.predict(&s.pixels))
            .collect();
        assert_eq!(classes, want, "{p} from {from}");
        if logits {
            for (l, s) in lg.iter().zip(&test.samples[from..from + n]) {
                assert_eq!(
                    l.as_ref().unwrap(),
                    &model.logits(&model.quantize_input(&s.pixels))
                );
            }
        }
    }
    broken.await.unwrap();
    garbage.await.unwrap();
    // Still serving.
    let (classes, _) = classify((addr.clone(), key), Protocol::Yao, 60, 1, false).await;
    assert_eq!(classes[0], model.predict(&test.samples[60].pixels));
}

#[tokio::test]
async fn unknown_version_and_unoffered_protocol_are_refused() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let mut config = ServerConfig::new(model);
    config.protocols = vec![Protocol::Yao];
    let (addr, key) = start_with(config).await;
    let e = Client::connect(&addr, ClientOptions::new(Protocol::Gmw, key))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::Refused(_)), "{e}");
}

#[tokio::test]
async fn pinning_and_the_allow_list_are_enforced_before_any_protocol_message() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let known = Arc::new(Identity::generate());
    let server = Arc::new(Identity::generate());
    let mut config = ServerConfig::new(model.clone());
    config.security = ServerSecurity::Noise {
        identity: server.clone(),
        allowed_clients: Some(vec![known.public()].into()),
    };
    let (addr, key) = start_with(config).await;
    assert_eq!(key, server.public());
    // A client with an unknown key is refused by the handshake.
    let e = Client::connect(&addr, ClientOptions::new(Protocol::Yao, key))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::Net(NetError::Refused(_))), "{e}");
    // A client that pins another key never talks to this server.
    let wrong = Identity::generate().public();
    let e = Client::connect(
        &addr,
        ClientOptions::new(Protocol::Yao, wrong).with_identity(known.clone()),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SessionError::Net(_)), "{e}");
    // A plaintext client is refused too.
    let e = Client::connect(&addr, ClientOptions::insecure_plaintext(Protocol::Yao))
        .await
        .err()
        .unwrap();
    assert!(matches!(e, SessionError::Net(_)), "{e}");
    // The allowed client is served.
    let mut c = Client::connect(
        &addr,
        ClientOptions::new(Protocol::Yao, key).with_identity(known),
    )
    .await
    .unwrap();
    let digit = &digits_split().test.samples[3];
    let p = c
        .classify(&[model.quantize_input(&digit.pixels)])
        .await
        .unwrap();
    assert_eq!(p[0].class, Some(model.predict(&digit.pixels)));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gmw_is_served_only_to_trusted_clients() {
    let model = veil_nn::bundled_model().unwrap().quantized;
    let digit = &digits_split().test.samples[7];
    let want = model.predict(&digit.pixels);
    let query = |mut c: Client| {
        let codes = vec![model.quantize_input(&digit.pixels)];
        async move {
            let p = c.classify(&codes).await.unwrap();
            c.close().await.unwrap();
            p[0].class
        }
    };
    // By default nobody is trusted: GMW is refused with the reason, Yao is served.
    let (addr, key) = start_with(ServerConfig::new(model.clone())).await;
    let e = Client::connect(&addr, ClientOptions::new(Protocol::Gmw, key))
        .await
        .err()
        .unwrap();
    let SessionError::Refused(why) = &e else {
        panic!("{e}")
    };
    for part in ["semi-honest", "trust", "--allow-client", "--trust-clients"] {
        assert!(why.contains(part), "{why}");
    }
    let c = Client::connect(&addr, ClientOptions::new(Protocol::Yao, key))
        .await
        .unwrap();
    assert_eq!(query(c).await, Some(want));

    // An allow-listed client is trusted.
    let known = Arc::new(Identity::generate());
    let mut config = ServerConfig::new(model.clone());
    config.security = ServerSecurity::Noise {
        identity: Arc::new(Identity::generate()),
        allowed_clients: Some(vec![known.public()].into()),
    };
    let (addr, key) = start_with(config).await;
    let c = Client::connect(
        &addr,
        ClientOptions::new(Protocol::Gmw, key).with_identity(known),
    )
    .await
    .unwrap();
    assert_eq!(query(c).await, Some(want));

    // `trust_clients` trusts everyone.
    let mut config = ServerConfig::new(model.clone());
    config.trust_clients = true;
    let (addr, key) = start_with(config).await;
    let c = Client::connect(&addr, ClientOptions::new(Protocol::Gmw, key))
        .await
        .unwrap();
    assert_eq!(query(c).await, Some(want));
}

/// Queries prepared ahead (`Client::prepare`) give the model's predictions and logits: Yao
/// spends evaluations garbled ahead (at most 16 held; a query of more runs the rest on the
/// spot) with an online phase of one round trip and 16 bytes per input bit down; GMW makes its
/// triples first; HE has nothing to prepare and sends nothing. A raw client that asks for more
/// than 16 evaluations ahead ends its session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_queries_give_the_models_answers() {
    let (addr, key) = start().await;
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    let codes: Vec<Vec<u8>> = test.samples[..20]
        .iter()
        .map(|s| model.quantize_input(&s.pixels))
        .collect();
    let check = |preds: &[veil_protocols::Prediction], from: usize| {
        for (k, p) in preds.iter().enumerate() {
            let x = &codes[from + k];
            assert_eq!(p.class, Some(model.predict_codes(x)), "input {}", from + k);
            assert_eq!(p.logits.as_ref().unwrap(), &model.logits(x));
        }
    };
    for protocol in [Protocol::Yao, Protocol::Gmw] {
        let mut opts = ClientOptions::new(protocol, key);
        opts.want_logits = true;
        let mut c = Client::connect(&addr, opts).await.unwrap();
        c.prepare(2).await.unwrap();
        for i in 0..3 {
            let before = c.stats();
            let p = c.classify(&codes[i..=i]).await.unwrap();
            check(&p, i);
            let online = c.stats().since(&before);
            if protocol == Protocol::Yao && i < 2 {
                // Spent an evaluation garbled ahead: the labels of the client's input bits
                // and the decoding bits, no tables.
                let bits = codes[i].len() * model.architecture.input_bits as usize;
                assert!(
                    online.bytes_received < 16 * bits as u64 + 2048,
                    "{online:?}"
                );
            }
        }
        // More than the queue holds: 16 ahead, the other four on the spot.
        c.prepare(20).await.unwrap();
        let p = c.classify(&codes).await.unwrap();
        check(&p, 0);
        c.close().await.unwrap();
    }
    // HE: nothing to prepare, nothing sent.
    let mut c = Client::connect(&addr, ClientOptions::new(Protocol::He, key))
        .await
        .unwrap();
    let before = c.stats();
    c.prepare(3).await.unwrap();
    assert_eq!(c.stats(), before);
    assert!(c.prepare(0).await.is_err());
    c.close().await.unwrap();

    // A raw Yao client asking for 17 evaluations ahead: the server ends the session.
    let mut ch = common::raw_session(&addr, Some(key), Protocol::Yao).await;
    ch.send(&veil_protocols::wire::Request::Prepare { count: 17 })
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert!(ch.recv_bytes().await.is_err());
}

/// The mixed protocol (linear layers on shares, activations in garbled circuits) gives the
/// integer model's classes and logits, with and without its offline phase run ahead, and is
/// refused to a client the server does not trust.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_sessions_give_the_models_answers() {
    let (addr, key) = start().await;
    let model = veil_nn::bundled_model().unwrap().quantized;
    let test = digits_split().test;
    let codes: Vec<Vec<u8>> = test.samples[..12]
        .iter()
        .map(|s| model.quantize_input(&s.pixels))
        .collect();
    for logits in [false, true] {
        let mut opts = ClientOptions::new(Protocol::Mixed, key);
        opts.want_logits = logits;
        let mut c = Client::connect(&addr, opts).await.unwrap();
        c.prepare(4).await.unwrap();
        let preds = c.classify(&codes).await.unwrap();
        for (p, x) in preds.iter().zip(&codes) {
            assert_eq!(p.class, Some(model.predict_codes(x)));
            if logits {
                assert_eq!(p.logits.as_ref().unwrap(), &model.logits(x));
            } else {
                assert!(p.logits.is_none());
            }
        }
        c.close().await.unwrap();
    }
    let untrusted = {
        let config = ServerConfig::new(model.clone());
        start_with(config).await
    };
    let e = Client::connect(
        &untrusted.0,
        ClientOptions::new(Protocol::Mixed, untrusted.1),
    )
    .await
    .err()
    .unwrap();
    assert!(matches!(e, SessionError::Refused(_)), "{e}");
}

/// The query budget: the welcome tells the client what its session may send; an honest client
/// refuses itself past it with a clear error; a second session of the same client gets what
/// the window leaves; a client that sends more anyway is cut off, and nothing past the budget
/// is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_budgets_per_session_and_per_client_window_hold() {
    let mut config = ServerConfig::new(veil_nn::bundled_model().unwrap().quantized);
    config.max_queries_per_session = 3;
    config.max_queries_per_window = 5;
    let (addr, key) = start_with(config).await;
    let model = veil_nn::bundled_model().unwrap().quantized;
    let codes: Vec<Vec<u8>> = digits_split().test.samples[..4]
        .iter()
        .map(|s| model.quantize_input(&s.pixels))
        .collect();
    let mut c = Client::connect(&addr, ClientOptions::new(Protocol::Yao, key))
        .await
        .unwrap();
    assert_eq!(c.queries_left(), 3);
    c.classify(&codes[..2]).await.unwrap();
    let refused = c.classify(&codes[..2]).await.unwrap_err();
    assert!(
        matches!(&refused, SessionError::Refused(m) if m.contains("query budget")),
        "{refused}"
    );
    c.classify(&codes[..1]).await.unwrap();
    assert_eq!(c.queries_left(), 0);
    c.close().await.unwrap();
    // Same address, same window: 5 − 3 left.
    let c = Client::connect(&addr, ClientOptions::new(Protocol::Yao, key))
        .await
        .unwrap();
    assert_eq!(c.queries_left(), 2);
    c.close().await.unwrap();
    // A hand-written client that asks for more than it was told: the session ends.
    let mut ch = common::raw_session(&addr, Some(key), Protocol::Yao).await;
    ch.send(&veil_protocols::wire::Request::Query { count: 3 })
        .await
        .unwrap();
    ch.flush().await.unwrap();
    assert!(ch.recv_bytes().await.is_err());
}
