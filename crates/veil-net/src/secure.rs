//! Authenticated, encrypted channels: the Noise IK handshake with long-term identity keys, then
//! every frame sealed.
//!
//! # Handshake
//!
//! `Noise_IK_25519_AESGCM_SHA256` (Perrin, "The Noise Protocol Framework", revision 34,
//! section 7.5), through the `snow` crate, with the prologue [`PROLOGUE`]. The client (initiator)
//! knows the server's static public key in advance, the *pin*: its first message already
//! encrypts to it and carries the client's own static key, so one round trip authenticates
//! both sides and the server learns who the client is before it answers. The server checks the
//! client's key against its allow-list, if it has one, and answers with an encrypted status
//! byte: [`ACCEPTED`] or [`REFUSED`]. A refused client gets [`NetError::Refused`] and the
//! server closes the connection before any protocol message. A server that does not hold the
//! private key of the pinned public key cannot complete the handshake, and the client gets
//! [`NetError::Handshake`].
//!
//! Both handshake messages travel as plain frames (96 and 49 bytes), so a peer that speaks
//! plaintext, or another protocol, fails the handshake instead of reaching a protocol decoder.
//! Each side reads the other's handshake frame with its exact length: a header announcing any
//! other length is refused before a byte of payload is read or waited for, so an
//! unauthenticated peer cannot make the handshake buffer (or wait for) more than 96 bytes.
//!
//! # Records
//!
//! After the handshake, a frame's payload of `n` bytes is cut into pieces of at most
//! [`MAX_PIECE`] bytes (one empty piece for an empty payload); each piece is sealed as one
//! Noise transport message (AES-256-GCM with the implicit message counter as nonce, 16-byte
//! tag), and the sealed pieces, back to back, form the payload of one wire frame. The receiver
//! cuts the wire payload at the same boundaries and opens each piece in order. A modified,
//! truncated, reordered, replayed or dropped frame fails authentication
//! ([`NetError::Decrypt`]) and leaves the receiving direction unusable.
//!
//! # Secrets in memory
//!
//! An [`Identity`]'s private key is `Zeroizing` (erased on drop) and its file text is built in
//! a `Zeroizing` buffer. `snow` copies the private key into its handshake state and derives the
//! session keys there; `snow` 0.10 does not zeroize either, a known limit. Public keys, which
//! are not secret, are still compared in constant time.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::NetError;

/// The Noise protocol name of every Veil channel.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_AESGCM_SHA256";
/// Hashed into the handshake: both sides must agree on it (it names the wire version).
pub const PROLOGUE: &[u8] = b"veil channel v1";
/// Largest plaintext piece sealed as one Noise transport message.
pub const MAX_PIECE: usize = 65535 - TAG_LEN;
/// Bytes an AEAD tag adds to each piece.
pub const TAG_LEN: usize = 16;
/// The server's handshake status byte for an accepted client.
pub const ACCEPTED: u8 = 0;
/// The server's handshake status byte for a client whose key is not on its allow-list.
pub const REFUSED: u8 = 1;

/// Bytes of the client's first handshake message (the payload of the channel's first frame),
/// exactly: its ephemeral key, its encrypted static key and an empty encrypted payload.
pub const FIRST_MESSAGE_LEN: usize = MSG1_LEN;

/// Exact lengths of the two IK handshake messages with the payloads used here: the client's
/// ephemeral key, its encrypted static key and an empty encrypted payload; the server's
/// ephemeral key and the encrypted status byte.
pub(crate) const MSG1_LEN: usize = 32 + (32 + TAG_LEN) + TAG_LEN;
pub(crate) const MSG2_LEN: usize = 32 + 1 + TAG_LEN;

/// The error for a handshake message (`what`, "the client's first message" or "the server's
/// answer") of `got` bytes where `want` were due.
pub(crate) fn wrong_length(what: &str, got: u64, want: usize) -> NetError {
    let who = if want == MSG1_LEN {
        "a plaintext or foreign client"
    } else {
        "not a Veil server, or one that does not speak encrypted channels"
    };
    NetError::Handshake(format!("{what} has {got} bytes, not {want}: {who}"))
}

/// An X25519 public key: a party's long-term identity on the wire.
#[derive(Clone, Copy)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> PublicKey {
        PublicKey(bytes)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for PublicKey {}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// Why a key or identity could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not 64 hexadecimal digits.
    #[error("a key is 64 hexadecimal digits: {0}")]
    Format(String),
    /// An identity file is malformed.
    #[error("not a Veil identity file: {0}")]
    Identity(String),
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

fn parse_hex32(text: &str) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return Err(KeyError::Format(format!("got {} characters", text.len())));
    }
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
            .map_err(|_| KeyError::Format("not hexadecimal".into()))?;
    }
    Ok(out)
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(PublicKey(*parse_hex32(s)?))
    }
}

/// A long-term identity: an X25519 key pair. The private key is zeroized on drop and never
/// printed.
pub struct Identity {
    private: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl ZeroizeOnDrop for Identity {}

/// Largest identity file read.
const MAX_IDENTITY_FILE: u64 = 4096;
const IDENTITY_HEADER: &str =
    "# veil identity v1: X25519 key pair of a Veil channel endpoint. Keep this file private.";

impl Identity {
    /// A fresh identity from the operating system's randomness.
    pub fn generate() -> Identity {
        let mut private = Zeroizing::new([0u8; 32]);
        // A generator seeded by the operating system, used for these 32 bytes only.
        rand::rng().fill_bytes(&mut private[..]);
        Identity::from_private(private)
    }

    /// The identity with this private key (any 32 bytes; X25519 clamps them).
    pub fn from_private(private: Zeroizing<[u8; 32]>) -> Identity {
        let public = PublicKey(MontgomeryPoint::mul_base_clamped(*private).to_bytes());
        Identity { private, public }
    }

    /// The public key, which peers pin.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// The identity file's text: a comment line, `private: HEX`, `public: HEX`.
    pub fn to_text(&self) -> Zeroizing<String> {
        use std::fmt::Write;
        // Written into one buffer, sized up front so that it never reallocates (a reallocation
        // would leave a copy of the key behind).
        let mut text = Zeroizing::new(String::with_capacity(IDENTITY_HEADER.len() + 160));
        text.push_str(IDENTITY_HEADER);
        text.push_str("\nprivate: ");
        for b in self.private.iter() {
            // Writing into a `String` cannot fail.
            let _ = write!(text, "{b:02x}");
        }
        let _ = write!(text, "\npublic: {}\n", self.public);
        text
    }

    /// Parses an identity file's text; the public key, if present, must match the private one.
    pub fn from_text(text: &str) -> Result<Identity, KeyError> {
        let mut private = None;
        let mut public = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_once(':') {
                Some(("private", v)) => private = Some(parse_hex32(v)?),
                Some(("public", v)) => public = Some(v.parse::<PublicKey>()?),
                _ => return Err(KeyError::Identity("unexpected line".into())),
            }
        }
        let private = private.ok_or_else(|| KeyError::Identity("no private key".into()))?;
        let id = Identity::from_private(private);
        if public.is_some_and(|p| p != id.public) {
            return Err(KeyError::Identity(
                "the public key does not belong to the private key".into(),
            ));
        }
        Ok(id)
    }

    /// Reads an identity file (at most 4 KiB).
    pub fn load(path: &Path) -> Result<Identity, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_IDENTITY_FILE {
            return Err(KeyError::Identity(format!("{size} bytes is too large")));
        }
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        Identity::from_text(&text)
    }

    /// Writes the identity file, readable and writable by its owner only; refuses to overwrite.
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        use std::io::Write;
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(io)?;
        f.write_all(self.to_text().as_bytes()).map_err(io)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// Whether `key` is on `list`, comparing every entry in constant time.
pub fn allowed(list: &[PublicKey], key: &PublicKey) -> bool {
    let mut found = subtle::Choice::from(0u8);
    for k in list {
        found |= k.0.ct_eq(&key.0);
    }
    found.into()
}

fn params() -> snow::params::NoiseParams {
    // A constant, valid protocol name.
    NOISE_PARAMS.parse().expect("valid Noise parameters")
}

fn handshake_error(e: impl fmt::Display) -> NetError {
    NetError::Handshake(e.to_string())
}

/// The client side of the handshake: its first message, and the state to finish with.
pub(crate) fn initiator(
    identity: &Identity,
    server: &PublicKey,
) -> Result<(snow::HandshakeState, Vec<u8>), NetError> {
    let mut hs = snow::Builder::new(params())
        .local_private_key(&identity.private[..])
        .and_then(|b| b.remote_public_key(server.as_bytes()))
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_initiator())
        .map_err(handshake_error)?;
    let mut msg = vec![0u8; MSG1_LEN];
    let n = hs.write_message(&[], &mut msg).map_err(handshake_error)?;
    msg.truncate(n);
    Ok((hs, msg))
}

/// Finishes the client side on the server's answer.
pub(crate) fn initiator_finish(
    mut hs: snow::HandshakeState,
    answer: &[u8],
) -> Result<Sealer, NetError> {
    if answer.len() != MSG2_LEN {
        return Err(wrong_length(
            "the server's answer",
            answer.len() as u64,
            MSG2_LEN,
        ));
    }
    let mut payload = [0u8; MSG2_LEN];
    let n = hs.read_message(answer, &mut payload).map_err(|_| {
        NetError::Handshake(
            "the server's answer does not authenticate: it does not hold the private key of \
             the pinned public key"
                .into(),
        )
    })?;
    match &payload[..n] {
        [ACCEPTED] => {}
        [REFUSED] => {
            return Err(NetError::Refused(
                "the server does not accept this client's key".into(),
            ))
        }
        _ => return Err(NetError::Handshake("unknown handshake status".into())),
    }
    let state = hs.into_transport_mode().map_err(handshake_error)?;
    Ok(Sealer::new(state))
}

/// The server side: reads the client's first message and returns its key and the state.
pub(crate) fn responder(
    identity: &Identity,
    first: &[u8],
) -> Result<(snow::HandshakeState, PublicKey), NetError> {
    if first.len() != MSG1_LEN {
        return Err(wrong_length(
            "the client's first message",
            first.len() as u64,
            MSG1_LEN,
        ));
    }
    let mut hs = snow::Builder::new(params())
        .local_private_key(&identity.private[..])
        .and_then(|b| b.prologue(PROLOGUE))
        .and_then(|b| b.build_responder())
        .map_err(handshake_error)?;
    let mut payload = [0u8; MSG1_LEN];
    hs.read_message(first, &mut payload).map_err(|_| {
        NetError::Handshake(
            "the client's first message does not authenticate: it was sealed for another \
             server key"
                .into(),
        )
    })?;
    let remote = hs
        .get_remote_static()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| NetError::Handshake("no client static key".into()))?;
    Ok((hs, PublicKey(remote)))
}

/// Writes the server's answer carrying `status`; returns it and, when accepting, the sealer.
pub(crate) fn responder_answer(
    mut hs: snow::HandshakeState,
    status: u8,
) -> Result<(Vec<u8>, Option<Sealer>), NetError> {
    let mut msg = vec![0u8; MSG2_LEN];
    let n = hs
        .write_message(&[status], &mut msg)
        .map_err(handshake_error)?;
    msg.truncate(n);
    if status != ACCEPTED {
        return Ok((msg, None));
    }
    let state = hs.into_transport_mode().map_err(handshake_error)?;
    Ok((msg, Some(Sealer::new(state))))
}

/// Bytes on the wire for a payload of `len` bytes.
pub fn sealed_len(len: usize) -> usize {
    len + TAG_LEN * len.div_ceil(MAX_PIECE).max(1)
}

/// The transport state of an established channel: seals outgoing payloads and opens incoming
/// ones.
pub(crate) struct Sealer {
    state: snow::TransportState,
}

impl Sealer {
    fn new(state: snow::TransportState) -> Sealer {
        Sealer { state }
    }

    /// Seals `plain` into `out` (cleared first).
    pub(crate) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> Result<(), NetError> {
        out.clear();
        out.resize(sealed_len(plain.len()), 0);
        let mut at = 0;
        let mut pieces = plain.chunks(MAX_PIECE);
        let first = pieces.next().unwrap_or(&[]);
        for piece in std::iter::once(first).chain(pieces) {
            let n = self
                .state
                .write_message(piece, &mut out[at..at + piece.len() + TAG_LEN])
                .map_err(|e| NetError::Encode(format!("sealing: {e}")))?;
            at += n;
        }
        debug_assert_eq!(at, out.len());
        Ok(())
    }

    /// Opens the sealed `wire` payload into `out` (cleared first).
    pub(crate) fn open(&mut self, wire: &[u8], out: &mut Vec<u8>) -> Result<(), NetError> {
        out.clear();
        if wire.len() < TAG_LEN {
            return Err(NetError::Decrypt);
        }
        let mut rest = wire;
        while !rest.is_empty() {
            let take = rest.len().min(MAX_PIECE + TAG_LEN);
            let (piece, tail) = rest.split_at(take);
            if piece.len() < TAG_LEN {
                return Err(NetError::Decrypt);
            }
            let at = out.len();
            out.resize(at + piece.len() - TAG_LEN, 0);
            self.state
                .read_message(piece, &mut out[at..])
                .map_err(|_| NetError::Decrypt)?;
            rest = tail;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Sealer, Sealer) {
        let server = Identity::generate();
        let client = Identity::generate();
        let (hs, m1) = initiator(&client, &server.public()).unwrap();
        assert_eq!(m1.len(), MSG1_LEN);
        let (shs, key) = responder(&server, &m1).unwrap();
        assert_eq!(key, client.public());
        let (m2, s) = responder_answer(shs, ACCEPTED).unwrap();
        assert_eq!(m2.len(), MSG2_LEN);
        (initiator_finish(hs, &m2).unwrap(), s.unwrap())
    }

    #[test]
    fn seal_and_open_every_piece_boundary() {
        let (mut a, mut b) = pair();
        for len in [
            0,
            1,
            MAX_PIECE - 1,
            MAX_PIECE,
            MAX_PIECE + 1,
            3 * MAX_PIECE,
            200_000,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let (mut wire, mut back) = (Vec::new(), Vec::new());
            a.seal(&plain, &mut wire).unwrap();
            assert_eq!(wire.len(), sealed_len(len));
            b.open(&wire, &mut back).unwrap();
            assert_eq!(back, plain, "{len}");
        }
    }

    #[test]
    fn tampering_replay_and_reordering_fail() {
        let (mut a, mut b) = pair();
        let mut w1 = Vec::new();
        let mut w2 = Vec::new();
        a.seal(b"first", &mut w1).unwrap();
        a.seal(b"second", &mut w2).unwrap();
        let mut out = Vec::new();
        // Reordered: the second frame first.
        assert!(matches!(b.open(&w2, &mut out), Err(NetError::Decrypt)));
        let (mut a, mut b) = pair();
        a.seal(b"first", &mut w1).unwrap();
        let mut bad = w1.clone();
        bad[3] ^= 1;
        assert!(matches!(b.open(&bad, &mut out), Err(NetError::Decrypt)));
        let (mut a, mut b) = pair();
        a.seal(b"first", &mut w1).unwrap();
        b.open(&w1, &mut out).unwrap();
        // Replayed.
        assert!(matches!(b.open(&w1, &mut out), Err(NetError::Decrypt)));
        // Truncated.
        assert!(matches!(
            b.open(&w1[..10], &mut out),
            Err(NetError::Decrypt)
        ));
    }

    #[test]
    fn wrong_server_key_and_refusal() {
        let server = Identity::generate();
        let impostor = Identity::generate();
        let client = Identity::generate();
        // Pinned to `server`, answered by `impostor`.
        let (_, m1) = initiator(&client, &server.public()).unwrap();
        assert!(matches!(
            responder(&impostor, &m1),
            Err(NetError::Handshake(_))
        ));
        // Refused by an allow-list.
        let (hs, m1) = initiator(&client, &server.public()).unwrap();
        let (shs, key) = responder(&server, &m1).unwrap();
        assert!(!allowed(&[impostor.public()], &key));
        assert!(allowed(&[impostor.public(), client.public()], &key));
        let (m2, none) = responder_answer(shs, REFUSED).unwrap();
        assert!(none.is_none());
        assert!(matches!(
            initiator_finish(hs, &m2),
            Err(NetError::Refused(_))
        ));
        // Garbage in either direction.
        assert!(responder(&server, &[0u8; MSG1_LEN]).is_err());
        assert!(responder(&server, &[0u8; 3]).is_err());
        let (hs, _) = initiator(&client, &server.public()).unwrap();
        assert!(initiator_finish(hs, &[7u8; MSG2_LEN]).is_err());
    }

    /// A raw socket to a fresh server-side channel with a 30 s read timeout.
    async fn raw_and_channel() -> (tokio::net::TcpStream, crate::Channel) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let raw = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (sock, _) = listener.accept().await.unwrap();
        let config = crate::ChannelConfig::default()
            .with_read_timeout(std::time::Duration::from_secs(30))
            .with_max_frame(64 << 20);
        (raw, crate::Channel::from_tcp(sock, config))
    }

    #[tokio::test]
    async fn handshake_frames_of_another_length_are_refused_before_their_payload() {
        use tokio::io::AsyncWriteExt;
        let server = Identity::generate();
        // Only a header is sent and the socket stays open: a reader that waited for the
        // announced payload would sit until its 30 s read timeout.
        for announced in [64u32 << 20, u32::MAX, MSG1_LEN as u32 + 1, 95, 0] {
            let (mut raw, mut ch) = raw_and_channel().await;
            raw.write_all(&announced.to_le_bytes()).await.unwrap();
            let t0 = std::time::Instant::now();
            let e = ch.secure_server(&server, None).await.unwrap_err();
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(2),
                "{announced}: {:?}",
                t0.elapsed()
            );
            match e {
                NetError::Handshake(m) => {
                    assert!(m.contains(&format!("{announced} bytes, not 96")), "{m}")
                }
                other => panic!("{announced}: {other}"),
            }
            assert_eq!(ch.stats().bytes_received, 0, "no frame was taken in");
        }
        // The client's side: a "server" whose answer announces 64 MiB.
        let (mut raw, mut ch) = raw_and_channel().await;
        let client = tokio::spawn(async move {
            let id = Identity::generate();
            let e = ch.secure_client(&id, &server.public()).await.unwrap_err();
            assert!(
                matches!(&e, NetError::Handshake(m) if m.contains("not 49")),
                "{e}"
            );
        });
        use tokio::io::AsyncReadExt;
        let mut first = [0u8; 4 + MSG1_LEN];
        raw.read_exact(&mut first).await.unwrap();
        raw.write_all(&(64u32 << 20).to_le_bytes()).await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(2), client)
            .await
            .expect("refused at once")
            .unwrap();
        // In memory too.
        let (mut a, mut b) = crate::Channel::memory_pair(crate::ChannelConfig::default());
        a.send_bytes(&[0u8; MSG1_LEN + 1]).await.unwrap();
        let e = b
            .secure_server(&Identity::generate(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, NetError::Handshake(m) if m.contains("97 bytes")),
            "{e}"
        );
    }

    #[test]
    fn identity_private_key_is_zeroized() {
        use zeroize::Zeroize;
        fn assert_zeroize_on_drop<T: ZeroizeOnDrop>() {}
        assert_zeroize_on_drop::<Identity>();
        assert_zeroize_on_drop::<Zeroizing<[u8; 32]>>();
        let mut id = Identity::generate();
        assert_ne!(*id.private, [0u8; 32]);
        let capacity = id.to_text().capacity();
        assert_eq!(
            capacity,
            IDENTITY_HEADER.len() + 160,
            "the text never reallocates"
        );
        // What the private key's `Zeroizing` runs on drop.
        id.private.zeroize();
        assert_eq!(*id.private, [0u8; 32]);
    }

    #[test]
    fn identity_files_round_trip_and_reject_mismatches() {
        let id = Identity::generate();
        let text = id.to_text();
        let back = Identity::from_text(&text).unwrap();
        assert_eq!(back.public(), id.public());
        assert!(!format!("{id:?}").contains(&text[text.find("private: ").unwrap() + 9..][..64]));
        let other = Identity::generate();
        let mixed = format!(
            "private: {}\npublic: {}\n",
            &text[text.find("private: ").unwrap() + 9..][..64],
            other.public()
        );
        assert!(Identity::from_text(&mixed).is_err());
        assert!(Identity::from_text("private: 12\n").is_err());
        assert!(Identity::from_text("hello\n").is_err());
        assert!(Identity::from_text("").is_err());
        assert!("zz".parse::<PublicKey>().is_err());
        let k: PublicKey = id.public().to_string().parse().unwrap();
        assert_eq!(k, id.public());
    }
}
