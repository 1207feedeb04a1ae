//! Lower-case hexadecimal encoding and strict decoding (no dependency needed for so little).

/// Lower-case hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex digits (either case) appended to `out`; `Err` with the offset of the first bad
/// character, or of the end for an odd number of digits.
pub(crate) fn decode_into(text: &[u8], out: &mut Vec<u8>) -> Result<(), usize> {
    if !text.len().is_multiple_of(2) {
        return Err(text.len());
    }
    for (k, pair) in text.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(2 * k)?;
        let lo = nibble(pair[1]).ok_or(2 * k + 1)?;
        out.push(hi << 4 | lo);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip_and_errors() {
        let data = [0u8, 1, 0xab, 0xff];
        let s = super::encode(&data);
        assert_eq!(s, "0001abff");
        let mut out = Vec::new();
        super::decode_into(s.as_bytes(), &mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(super::decode_into(b"abc", &mut out), Err(3));
        assert_eq!(super::decode_into(b"zz", &mut out), Err(0));
    }
}
