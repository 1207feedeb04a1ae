//! The secure-channel handshake (`veil_net::secure`, Noise IK) on hostile bytes: as the server
//! receiving a client's first message, and as the client receiving a server's answer, then,
//! when a handshake completes, the sealed frames that follow.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use veil_net::{Channel, Identity};

/// Fixed identities, made once per process.
fn identities() -> &'static (Identity, Identity) {
    static IDS: OnceLock<(Identity, Identity)> = OnceLock::new();
    IDS.get_or_init(|| (Identity::generate(), Identity::generate()))
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let frames = veil_fuzz::frames(rest);
    let (server, client) = identities();
    veil_fuzz::runtime().block_on(async {
        let (mut peer, mut me) = Channel::memory_pair(veil_fuzz::config());
        for f in &frames {
            if peer.send_bytes(f).await.is_err() {
                break;
            }
        }
        drop(peer);
        let secured = if which % 2 == 0 {
            let allow = [client.public()];
            let list = (which & 2 != 0).then_some(&allow[..]);
            me.secure_server(server, list).await.is_ok()
        } else {
            me.secure_client(client, &server.public()).await.is_ok()
        };
        if secured {
            while me.recv_bytes().await.is_ok() {}
        }
    });
});
