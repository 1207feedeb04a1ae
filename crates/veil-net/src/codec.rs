//! Message encoding: bincode 2 with the standard configuration (little endian, variable-length
//! integers), one message per frame.
//!
//! # Bounding what a hostile frame can make the decoder allocate
//!
//! bincode reserves memory for a string or byte buffer from the length written inside the
//! message, before checking that the bytes are there. Without a limit, a 20-byte frame announcing a
//! string of 2^60 bytes would abort the process on allocation failure. bincode's limit is a
//! compile-time constant counting the in-memory size of every primitive and byte buffer decoded
//! ("claimed" bytes), so the limit is chosen per frame from a few constant tiers:
//!
//! Through serde, every claim is backed by bytes of the frame: each primitive consumes at least one
//! byte and claims at most 16 (an `u128`), a string or byte buffer claims exactly the bytes it
//! consumes, and sequences claim nothing up front. A well-formed frame of `n` bytes therefore
//! claims at most `16 n`, and the smallest tier at or above `16 n` never rejects a valid message,
//! while a hostile frame of `n` bytes can make the decoder reserve no more than that tier: at most
//! 1 MiB for frames up to 64 KiB, and at most 256 times the frame length beyond. Frames are already
//! bounded by [`ChannelConfig::max_frame`](crate::ChannelConfig::max_frame), so the largest tier in
//! use is 16 times that (1 GiB for the default 64 MiB).

use bincode::config::{Configuration, Limit};
use serde::{de::DeserializeOwned, Serialize};

use crate::NetError;

/// Upper bound on bytes claimed by the decoder per byte of a well-formed frame.
const CLAIM_PER_BYTE: usize = 16;

/// `2^shift`, saturated at `usize::MAX` on targets where it does not fit.
const fn tier(shift: u32) -> usize {
    if shift >= usize::BITS {
        usize::MAX
    } else {
        1 << shift
    }
}

const TIER_0: usize = tier(20);
const TIER_1: usize = tier(24);
const TIER_2: usize = tier(28);
const TIER_3: usize = tier(32);
// Frames are at most `u32::MAX` bytes, so `16 n` never exceeds 2^36.
const TIER_4: usize = tier(36);
const _: () = assert!(TIER_0 < TIER_1 && TIER_1 < TIER_2 && TIER_2 <= TIER_3 && TIER_3 <= TIER_4);

/// The encoding configuration shared by both ends.
fn encode_config() -> Configuration {
    bincode::config::standard()
}

fn limited<const N: usize>(
) -> Configuration<bincode::config::LittleEndian, bincode::config::Varint, Limit<N>> {
    bincode::config::standard().with_limit::<N>()
}

/// Appends the encoding of `msg` to `out`.
pub(crate) fn encode_into<M: Serialize + ?Sized>(
    msg: &M,
    out: &mut Vec<u8>,
) -> Result<(), NetError> {
    bincode::serde::encode_into_std_write(msg, out, encode_config())
        .map(|_| ())
        .map_err(|e| NetError::Encode(e.to_string()))
}

/// Encodes `msg` into a new buffer.
pub(crate) fn encode_to_vec<M: Serialize + ?Sized>(msg: &M) -> Result<Vec<u8>, NetError> {
    bincode::serde::encode_to_vec(msg, encode_config()).map_err(|e| NetError::Encode(e.to_string()))
}

/// Decodes one `M` that must span the whole of `frame`.
pub(crate) fn decode_exact<M: DeserializeOwned>(frame: &[u8]) -> Result<M, NetError> {
    let budget = frame.len().saturating_mul(CLAIM_PER_BYTE);
    let decoded = if budget <= TIER_0 {
        bincode::serde::decode_from_slice(frame, limited::<TIER_0>())
    } else if budget <= TIER_1 {
        bincode::serde::decode_from_slice(frame, limited::<TIER_1>())
    } else if budget <= TIER_2 {
        bincode::serde::decode_from_slice(frame, limited::<TIER_2>())
    } else if budget <= TIER_3 {
        bincode::serde::decode_from_slice(frame, limited::<TIER_3>())
    } else {
        bincode::serde::decode_from_slice(frame, limited::<TIER_4>())
    };
    let (value, used) = decoded
        .map_err(|e| NetError::Decode(format!("expected {}: {e}", std::any::type_name::<M>())))?;
    if used != frame.len() {
        return Err(NetError::Decode(format!(
            "expected {}: {} trailing bytes after {used} bytes of message",
            std::any::type_name::<M>(),
            frame.len() - used
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Msg {
        a: u64,
        b: String,
        c: Vec<u128>,
    }

    #[test]
    fn round_trip() {
        let m = Msg {
            a: 7,
            b: "hello".into(),
            c: vec![1, u128::MAX],
        };
        let bytes = encode_to_vec(&m).unwrap();
        let mut appended = vec![];
        encode_into(&m, &mut appended).unwrap();
        assert_eq!(bytes, appended);
        assert_eq!(decode_exact::<Msg>(&bytes).unwrap(), m);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = encode_to_vec(&5u32).unwrap();
        bytes.push(0);
        let err = decode_exact::<u32>(&bytes).unwrap_err();
        assert!(
            matches!(err, NetError::Decode(ref s) if s.contains("trailing")),
            "{err}"
        );
    }

    #[test]
    fn truncated_message_is_rejected() {
        let bytes = encode_to_vec(&(1u64, 2u64, String::from("abc"))).unwrap();
        let err = decode_exact::<(u64, u64, String)>(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
    }

    #[test]
    fn hostile_inner_length_is_rejected_without_huge_allocation() {
        // A string announcing 2^62 bytes inside a 10-byte frame: must fail on the limit rather
        // than attempt the allocation.
        let mut frame = vec![];
        encode_into(&(1u64 << 62), &mut frame).unwrap();
        frame.push(b'x');
        let err = decode_exact::<String>(&frame).unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
        let err = decode_exact::<Vec<u8>>(&frame).unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
        let err = decode_exact::<Vec<u64>>(&frame).unwrap_err();
        assert!(matches!(err, NetError::Decode(_)), "{err}");
    }

    #[test]
    fn dense_small_integers_fit_the_limit() {
        // Worst case for claimed/consumed: one byte per u128 on the wire, 16 claimed.
        for n in [0usize, 1, 1000, 70_000, 1 << 20] {
            let v = vec![0u128; n];
            let bytes = encode_to_vec(&v).unwrap();
            assert_eq!(decode_exact::<Vec<u128>>(&bytes).unwrap().len(), n);
        }
        let v = vec![1u8; 3 << 20];
        let bytes = encode_to_vec(&v).unwrap();
        assert_eq!(decode_exact::<Vec<u8>>(&bytes).unwrap(), v);
    }
}
