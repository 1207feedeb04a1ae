//! Frame decoding: arbitrary bytes as the stream a TCP channel reads, split into frames under a
//! small frame limit (the first byte picks it), and each frame decoded as a few message shapes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use veil_net::fuzzing::{decode_exact, read_frames};
use veil_net::NetError;

fuzz_target!(|data: &[u8]| {
    let Some((&limit, stream)) = data.split_first() else {
        return;
    };
    let max = 1usize << (limit % 20);
    let results = read_frames(stream, max);
    let mut offset = 0usize;
    for r in &results {
        match r {
            Ok(frame) => {
                assert!(frame.len() <= max);
                offset += 4 + frame.len();
                assert_eq!(&stream[offset - frame.len()..offset], &frame[..]);
                let _ = decode_exact::<String>(frame);
                let _ = decode_exact::<Vec<u8>>(frame);
                let _ = decode_exact::<Vec<u64>>(frame);
                let _ = decode_exact::<Vec<String>>(frame);
                let _ = decode_exact::<(u8, Option<i64>, u128, Vec<(u32, bool)>)>(frame);
                let _ = decode_exact::<std::collections::BTreeMap<String, Vec<u16>>>(frame);
            }
            Err(NetError::PeerClosed) => assert_eq!(offset, stream.len()),
            Err(NetError::FrameTooLarge { len, .. }) => assert!(*len > max as u64),
            Err(NetError::Truncated { .. }) => assert!(offset < stream.len()),
            Err(e) => panic!("unexpected error from a byte slice: {e}"),
        }
    }
    assert!(results.last().is_some_and(Result::is_err));
});
