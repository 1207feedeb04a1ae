//! Framing of field-element vectors between parties, and the concurrent per-peer driver.
//!
//! A vector message is one or more raw frames, each `tag (1) ‖ sequence (4) ‖ total (4) ‖
//! elements (8 each, little-endian, canonical below 2^61 - 1)`. The tag names the operation, the
//! sequence number the operation's position in the session (all parties run the same sequence),
//! and `total` the vector's full length; a long vector spans several frames. Every field is
//! checked on receipt: a wrong tag, sequence or length, an element out of range, or a frame that
//! adds nothing is a typed error, and memory grows only with bytes actually received.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use veil_net::Channel;

use crate::error::MpcError;
use crate::field::{Field, M61};

/// Bytes before the elements in each frame.
pub(crate) const HEADER: usize = 9;
/// Upper bound on elements per frame (8 MiB of payload).
const MAX_PER_FRAME: usize = 1 << 20;

/// Message tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Tag {
    Input = 1,
    Reshare = 2,
    Open = 3,
    Bye = 4,
}

fn net(peer: usize) -> impl FnOnce(veil_net::NetError) -> MpcError {
    move |source| MpcError::Net { peer, source }
}

fn malformed(peer: usize, reason: impl Into<String>) -> MpcError {
    MpcError::Malformed {
        peer,
        reason: reason.into(),
    }
}

/// Elements per frame allowed by the channel's frame limit.
pub(crate) fn per_frame(ch: &Channel) -> usize {
    (ch.config()
        .max_frame
        .min(u32::MAX as usize)
        .saturating_sub(HEADER)
        / 8)
    .clamp(1, MAX_PER_FRAME)
}

/// Sends `data` as one vector message (at least one frame, even when empty).
pub(crate) async fn send_elems(
    ch: &mut Channel,
    peer: usize,
    tag: Tag,
    seq: u32,
    data: &[M61],
) -> Result<(), MpcError> {
    let total = u32::try_from(data.len())
        .map_err(|_| MpcError::InvalidArgument("vector longer than 2^32 - 1".into()))?;
    let per = per_frame(ch);
    let mut buf = Vec::with_capacity(HEADER + 8 * data.len().min(per));
    let mut chunks = data.chunks(per);
    let mut first = true;
    loop {
        let chunk = chunks.next();
        if chunk.is_none() && !first {
            break;
        }
        first = false;
        buf.clear();
        buf.push(tag as u8);
        buf.extend_from_slice(&seq.to_le_bytes());
        buf.extend_from_slice(&total.to_le_bytes());
        for v in chunk.unwrap_or(&[]) {
            buf.extend_from_slice(&v.value().to_le_bytes());
        }
        ch.send_bytes(&buf).await.map_err(net(peer))?;
    }
    zeroize::Zeroize::zeroize(&mut buf);
    Ok(())
}

/// Receives one vector message. `expected` is the length if the protocol fixes it; otherwise
/// the announced length must not exceed `max`.
pub(crate) async fn recv_elems(
    ch: &mut Channel,
    peer: usize,
    tag: Tag,
    seq: u32,
    expected: Option<usize>,
    max: usize,
) -> Result<Vec<M61>, MpcError> {
    let mut out: Vec<M61> = Vec::new();
    let mut total: Option<usize> = None;
    let mut frame = Vec::new();
    loop {
        ch.recv_bytes_into(&mut frame).await.map_err(net(peer))?;
        if frame.len() < HEADER {
            return Err(malformed(peer, "frame shorter than its header"));
        }
        if frame[0] != tag as u8 {
            return Err(malformed(
                peer,
                format!("expected message tag {}, got {}", tag as u8, frame[0]),
            ));
        }
        let got_seq = u32::from_le_bytes([frame[1], frame[2], frame[3], frame[4]]);
        if got_seq != seq {
            return Err(malformed(
                peer,
                format!("expected sequence number {seq}, got {got_seq}"),
            ));
        }
        let t = u32::from_le_bytes([frame[5], frame[6], frame[7], frame[8]]) as usize;
        match (total, expected) {
            (Some(prev), _) if prev != t => {
                return Err(malformed(peer, "vector length changed between frames"))
            }
            (None, Some(e)) if e != t => {
                return Err(malformed(
                    peer,
                    format!("expected {e} elements, peer announced {t}"),
                ))
            }
            (None, None) if t > max => {
                return Err(malformed(
                    peer,
                    format!("announced {t} elements, limit is {max}"),
                ))
            }
            _ => {}
        }
        total = Some(t);
        let payload = &frame[HEADER..];
        if payload.len() % 8 != 0 {
            return Err(malformed(peer, "payload is not a whole number of elements"));
        }
        let count = payload.len() / 8;
        if count == 0 && out.len() < t {
            return Err(malformed(peer, "empty frame inside a vector"));
        }
        if out.len() + count > t {
            return Err(malformed(peer, "more elements than announced"));
        }
        for c in payload.chunks_exact(8) {
            let v =
                M61::from_bytes(c).ok_or_else(|| malformed(peer, "field element out of range"))?;
            out.push(v);
        }
        if out.len() == t {
            zeroize::Zeroize::zeroize(&mut frame);
            return Ok(out);
        }
    }
}

/// Runs all futures concurrently on the current task; returns their outputs in order, or the
/// first error as soon as it occurs (the other futures are dropped).
pub(crate) async fn try_join_all<T, E, F>(futs: Vec<F>) -> Result<Vec<T>, E>
where
    F: Future<Output = Result<T, E>>,
{
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<T>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(move |cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_some() {
                continue;
            }
            match f.as_mut().poll(cx) {
                Poll::Ready(Ok(v)) => *o = Some(v),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(Ok(out.iter_mut().filter_map(Option::take).collect()))
        }
    })
    .await
}
