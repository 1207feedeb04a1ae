//! The layers compose: a model owner answers integer-inference queries over a real loopback
//! channel, and the answers equal local inference. (No privacy here: this is the plaintext
//! baseline the private protocols replace.)

use veil::net::{tcp_pair, ChannelConfig};
use veil::nn::data::digits_split;

#[tokio::test]
async fn plaintext_queries_over_tcp_match_local_inference() {
    let (mut client, mut server) = tcp_pair(ChannelConfig::default()).await.unwrap();
    let model = veil::nn::bundled_model().unwrap().quantized;
    let server_model = model.clone();
    let server = tokio::spawn(async move {
        loop {
            let codes: Vec<u8> = match server.recv().await {
                Ok(c) => c,
                Err(e) if e.is_peer_closed() => return server.stats(),
                Err(e) => panic!("server: {e}"),
            };
            server.send(&server_model.logits(&codes)).await.unwrap();
            server.flush().await.unwrap();
        }
    });
    let test = digits_split().test;
    for s in test.samples.iter().take(20) {
        let codes = model.quantize_input(&s.pixels);
        client.send(&codes).await.unwrap();
        let logits: Vec<i64> = client.recv().await.unwrap();
        assert_eq!(logits, model.logits(&codes));
    }
    let stats = client.stats();
    client.close().await.unwrap();
    let server_stats = server.await.unwrap();
    assert_eq!(stats.rounds, 20);
    assert_eq!(stats.bytes_sent, server_stats.bytes_received);
    assert_eq!(stats.bytes_received, server_stats.bytes_sent);
}
