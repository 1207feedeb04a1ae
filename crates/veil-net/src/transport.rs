//! Framing over the two transports: TCP (buffered halves of a socket) and in-memory queues.
//!
//! A frame is a 4-byte little-endian payload length followed by the payload. The in-memory
//! transport moves payloads as whole `Vec<u8>`s and never materialises the header, but enforces
//! the same limits and is accounted identically.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::NetError;

/// Bytes of the length header that precedes every payload on the wire.
pub const FRAME_HEADER_LEN: usize = 4;

/// Capacity of the TCP read and write buffers.
const TCP_BUFFER: usize = 64 << 10;

/// Frames an in-memory endpoint can queue before the sender has to wait for the receiver.
pub(crate) const MEMORY_QUEUE_FRAMES: usize = 64;

/// Largest step by which a payload buffer grows beyond the bytes already received (see
/// [`read_payload`]).
const READ_CHUNK: usize = 1 << 20;

/// The concrete transport below a channel.
pub(crate) enum Transport {
    /// A TCP connection.
    Tcp(TcpTransport),
    /// One end of an in-memory duplex.
    Memory(MemoryTransport),
}

/// Buffered halves of a TCP stream.
pub(crate) struct TcpTransport {
    pub(crate) reader: BufReader<OwnedReadHalf>,
    pub(crate) writer: BufWriter<OwnedWriteHalf>,
    pub(crate) peer: Option<SocketAddr>,
}

impl TcpTransport {
    pub(crate) fn new(stream: TcpStream) -> Self {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let peer = stream.peer_addr().ok();
        let (read, write) = stream.into_split();
        Self {
            reader: BufReader::with_capacity(TCP_BUFFER, read),
            writer: BufWriter::with_capacity(TCP_BUFFER, write),
            peer,
        }
    }

    /// Writes header and payload into the send buffer (and through to the socket when it fills).
    /// `header` must come from [`header_for`], which enforces the frame limit.
    pub(crate) async fn write_frame(
        &mut self,
        payload: &[u8],
        header: [u8; 4],
    ) -> std::io::Result<()> {
        self.writer.write_all(&header).await?;
        self.writer.write_all(payload).await
    }

    /// Bytes written by the channel but still held in the send buffer.
    pub(crate) fn pending_writes(&self) -> usize {
        self.writer.buffer().len()
    }
}

/// One end of an in-memory duplex: a bounded queue of payloads each way.
pub(crate) struct MemoryTransport {
    pub(crate) tx: mpsc::Sender<Vec<u8>>,
    pub(crate) rx: mpsc::Receiver<Vec<u8>>,
}

impl MemoryTransport {
    /// Two connected ends.
    pub(crate) fn pair() -> (Self, Self) {
        let (a_tx, b_rx) = mpsc::channel(MEMORY_QUEUE_FRAMES);
        let (b_tx, a_rx) = mpsc::channel(MEMORY_QUEUE_FRAMES);
        (Self { tx: a_tx, rx: a_rx }, Self { tx: b_tx, rx: b_rx })
    }
}

/// Encodes a payload length as a frame header, or refuses it when above `max`.
pub(crate) fn header_for(len: usize, max: usize) -> Result<[u8; 4], NetError> {
    let too_large = || NetError::FrameTooLarge {
        len: u64::try_from(len).unwrap_or(u64::MAX),
        max,
    };
    if len > max {
        return Err(too_large());
    }
    let len32 = u32::try_from(len).map_err(|_| too_large())?;
    Ok(len32.to_le_bytes())
}

/// Reads one frame into `buf` (cleared first), refusing payloads above `max` before reading them.
///
/// `consumed` is advanced as bytes of the frame are taken off the stream, so that a caller whose
/// future was cancelled (by a timeout) can tell whether the stream is still at a frame boundary.
pub(crate) async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> Result<(), NetError> {
    let announced = read_header(reader, consumed).await?;
    let len = match usize::try_from(announced) {
        Ok(len) if len <= max => len,
        _ => {
            return Err(NetError::FrameTooLarge {
                len: u64::from(announced),
                max,
            })
        }
    };
    buf.clear();
    read_payload(reader, len, buf, consumed).await
}

/// Reads one frame whose payload must be exactly `len` bytes (a handshake message of fixed
/// size). Any other announced length is refused with `wrong(announced)` as soon as the header
/// is in, before a byte of the payload is read.
pub(crate) async fn read_frame_exact<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
    wrong: impl FnOnce(u64) -> NetError,
) -> Result<(), NetError> {
    let announced = read_header(reader, consumed).await?;
    if usize::try_from(announced).ok() != Some(len) {
        return Err(wrong(u64::from(announced)));
    }
    buf.clear();
    read_payload(reader, len, buf, consumed).await
}

/// Reads a frame's 4-byte header; returns the announced payload length.
async fn read_header<R: AsyncRead + Unpin>(
    reader: &mut R,
    consumed: &mut usize,
) -> Result<u32, NetError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let n = reader.read(&mut header[filled..]).await?;
        if n == 0 {
            return Err(if filled == 0 {
                NetError::PeerClosed
            } else {
                NetError::Truncated {
                    expected: FRAME_HEADER_LEN,
                    got: filled,
                }
            });
        }
        filled += n;
        *consumed += n;
    }
    Ok(u32::from_le_bytes(header))
}

/// Reads exactly `len` payload bytes, appending them to the empty `buf`.
///
/// The buffer is not sized from the announced length up front: it grows only as data arrives, by
/// at most `max(READ_CHUNK, bytes received so far)` at a time and never beyond `len`. A peer that
/// announces a large frame and then sends little can make us hold at most about twice what it
/// actually sent (plus 1 MiB).
async fn read_payload<R: AsyncRead + Unpin>(
    reader: &mut R,
    len: usize,
    buf: &mut Vec<u8>,
    consumed: &mut usize,
) -> Result<(), NetError> {
    while buf.len() < len {
        let remaining = len - buf.len();
        if buf.capacity() == buf.len() {
            buf.reserve_exact(remaining.min(READ_CHUNK.max(buf.len())));
        }
        let limit = u64::try_from(remaining).unwrap_or(u64::MAX);
        let n = (&mut *reader).take(limit).read_buf(buf).await?;
        if n == 0 {
            return Err(NetError::Truncated {
                expected: len,
                got: buf.len(),
            });
        }
        *consumed += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_encoding() {
        assert_eq!(header_for(0, 10).unwrap(), [0, 0, 0, 0]);
        assert_eq!(header_for(0x0102_0304, usize::MAX).unwrap(), [4, 3, 2, 1]);
        assert!(matches!(
            header_for(11, 10),
            Err(NetError::FrameTooLarge { len: 11, max: 10 })
        ));
        #[cfg(target_pointer_width = "64")]
        assert!(matches!(
            header_for(1 << 32, usize::MAX),
            Err(NetError::FrameTooLarge { len, .. }) if len == 1 << 32
        ));
    }
}
