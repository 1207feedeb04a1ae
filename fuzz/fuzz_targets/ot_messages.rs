//! Oblivious-transfer messages: each role of the base OT and of the IKNP extension (correlated
//! and chosen-message, without and with the KOS consistency check) run against a peer that
//! sends the fuzzer's frames, and the chosen-message frame decoder on its own.
//!
//! Input: a mode byte, a size byte, then the peer's frames (4-byte LE length, payload).

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_fuzz::{against, encode_frames, frames, record, rng, runtime, write_seed};
use veil_net::Channel;
use veil_ot::base::{BaseOtReceiver, BaseOtSender};
use veil_ot::extension::decrypt_chosen_core;
use veil_ot::{Block, ChouOrlandi, OtReceiver, OtSender};

/// The choice bits of `n` OTs.
fn choices(n: usize) -> Vec<bool> {
    (0..n).map(|i| i % 3 == 1).collect()
}

/// Chosen-message pairs: message `j` is `j % 40` bytes long.
fn messages(n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    (0..n)
        .map(|j| (vec![j as u8; j % 40], vec![!(j as u8); j % 40]))
        .collect()
}

async fn base_receiver(mut ch: Channel, n: usize) {
    let _ = ChouOrlandi::new(rng())
        .receive_random(&mut ch, &choices(n))
        .await;
}

async fn base_sender(mut ch: Channel, n: usize) {
    let _ = ChouOrlandi::new(rng()).send_random(&mut ch, n).await;
}

async fn ext_sender(mut ch: Channel, n: usize, checked: bool) {
    let Ok(mut s) = OtSender::setup(&mut ch, &mut rng()).await else {
        return;
    };
    if checked {
        s = s.with_kos_check(&mut rng());
    }
    if s.send_correlated(&mut ch, n).await.is_err() {
        return;
    }
    let msgs = messages(n);
    let refs: Vec<(&[u8], &[u8])> = msgs.iter().map(|(a, b)| (&a[..], &b[..])).collect();
    let _ = s.send_chosen(&mut ch, &refs).await;
}

async fn ext_receiver(mut ch: Channel, n: usize, checked: bool) {
    let Ok(mut r) = OtReceiver::setup(&mut ch, &mut rng()).await else {
        return;
    };
    if checked {
        r = r.with_kos_check(&mut rng());
    }
    if r.receive_correlated(&mut ch, &choices(n)).await.is_err() {
        return;
    }
    let _ = r.receive_chosen(&mut ch, &choices(n)).await;
}

fn write_seeds() {
    let rt = runtime();
    for n in [1usize, 5, 8] {
        // Modes 0 and 1 run `1 + size` base OTs.
        let size = (n - 1) as u8;
        let f = rt.block_on(record(|ch| base_receiver(ch, n), |ch| base_sender(ch, n)));
        let seed = [&[0, size][..], &encode_frames(&f)].concat();
        write_seed(&format!("base-recv-{n}"), &seed);
        let f = rt.block_on(record(|ch| base_sender(ch, n), |ch| base_receiver(ch, n)));
        let seed = [&[1, size][..], &encode_frames(&f)].concat();
        write_seed(&format!("base-send-{n}"), &seed);
    }
    for n in [1usize, 5, 130] {
        // Modes 2 and 3 run `size` extended OTs, modes 5 and 6 the same with the KOS check.
        let size = n as u8;
        for (checked, send_mode, tag) in [(false, 2u8, "ext"), (true, 5, "kos")] {
            let f = rt.block_on(record(
                |ch| ext_sender(ch, n, checked),
                |ch| ext_receiver(ch, n, checked),
            ));
            let seed = [&[send_mode, size][..], &encode_frames(&f)].concat();
            write_seed(&format!("{tag}-send-{n}"), &seed);
            let f = rt.block_on(record(
                |ch| ext_receiver(ch, n, checked),
                |ch| ext_sender(ch, n, checked),
            ));
            let seed = [&[send_mode + 1, size][..], &encode_frames(&f)].concat();
            write_seed(&format!("{tag}-recv-{n}"), &seed);
        }
    }
}

fuzz_target!(
    init: {
        if veil_fuzz::seed_dir().is_some() {
            write_seeds();
        }
    },
    |data: &[u8]| {
    let [mode, size, rest @ ..] = data else {
        return;
    };
    let rt = runtime();
    let n = usize::from(*size);
    match mode % 7 {
        0 => rt.block_on(against(frames(rest), |ch| base_receiver(ch, 1 + n))),
        1 => rt.block_on(against(frames(rest), |ch| base_sender(ch, 1 + n % 8))),
        2 => rt.block_on(against(frames(rest), |ch| ext_sender(ch, n, false))),
        3 => rt.block_on(against(frames(rest), |ch| ext_receiver(ch, n, false))),
        5 => rt.block_on(against(frames(rest), |ch| ext_sender(ch, n, true))),
        6 => rt.block_on(against(frames(rest), |ch| ext_receiver(ch, n, true))),
        _ => {
            // The decoder alone: `size` OTs with fixed keys, the frame as given.
            let keys: Vec<Block> = (0..n).map(|j| Block(j as u128)).collect();
            if let Ok(out) = decrypt_chosen_core(&keys, &choices(n), 0, rest) {
                assert_eq!(out.len(), n);
            }
        }
    }
});
