//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not part of the API): the
//! frame reader and the message decoder run on a byte string, without a socket.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use serde::de::DeserializeOwned;

use crate::{codec, transport, NetError};

/// Reads frames from `stream` as a TCP channel with frame limit `max_frame` would, until the
/// first error (end of stream included), and returns what each read gave.
pub fn read_frames(mut stream: &[u8], max_frame: usize) -> Vec<Result<Vec<u8>, NetError>> {
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        let mut consumed = 0;
        let result = block_on(transport::read_frame(
            &mut stream,
            max_frame,
            &mut buf,
            &mut consumed,
        ));
        let failed = result.is_err();
        out.push(result.map(|()| buf));
        if failed {
            return out;
        }
    }
}

/// Decodes one `M` spanning the whole of `frame`, as [`Channel::recv`](crate::Channel::recv)
/// does.
pub fn decode_exact<M: DeserializeOwned>(frame: &[u8]) -> Result<M, NetError> {
    codec::decode_exact(frame)
}

/// Drives a future that never waits (a reader over a byte slice) to completion.
fn block_on<T>(fut: impl Future<Output = T>) -> T {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
