//! AES-128 encryption of many blocks at once, on the widest AES instructions the processor
//! offers, chosen at run time: VAES with AVX-512 (four blocks per instruction, sixteen in
//! flight), AES-NI (one block per instruction, eight in flight), or the `aes` crate elsewhere
//! (ARMv8 crypto extensions on aarch64, its constant-time software otherwise).
//!
//! The binary is built for any x86-64 (no `target-cpu=native`); the instructions are enabled
//! per function with `#[target_feature]` and reached only after `is_x86_feature_detected!`
//! has confirmed them. With [`crate::transpose`], this is one of the two modules of `veil-ot`
//! with `unsafe` code.
//!
//! AES-128 is FIPS-197: the key schedule below is its section 5.2 computed with
//! `AESKEYGENASSIST` (Gueron, "Intel Advanced Encryption Standard (AES) New Instructions
//! Set", white paper 323641, 2010, section 5), and each `AESENC` is one round of section 5.1.
//! Every path is checked against the `aes` crate and the FIPS-197 vector on random inputs.
//!
//! `VEIL_AES=aes-ni` or `VEIL_AES=portable` in the environment selects a narrower path than
//! the processor allows (never a wider one), so that the paths can be measured side by side in
//! one binary.

#![allow(unsafe_code)]

use std::sync::OnceLock;

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};

use crate::block::Block;

/// The implementation that encrypts blocks on this processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AesPath {
    /// VAES on 512-bit registers (AVX-512F): four blocks per instruction.
    Vaes512,
    /// AES-NI: one block per instruction, eight interleaved.
    AesNi,
    /// The `aes` crate: ARMv8 crypto extensions where present, else constant-time software.
    Portable,
}

impl AesPath {
    /// The name reports carry: `"vaes-avx512"`, `"aes-ni"` or `"portable"`.
    pub fn name(self) -> &'static str {
        match self {
            AesPath::Vaes512 => "vaes-avx512",
            AesPath::AesNi => "aes-ni",
            AesPath::Portable => "portable",
        }
    }

    /// The widest path this processor supports.
    pub fn widest() -> AesPath {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("sse2")
            {
                if std::arch::is_x86_feature_detected!("vaes")
                    && std::arch::is_x86_feature_detected!("avx512f")
                {
                    return AesPath::Vaes512;
                }
                return AesPath::AesNi;
            }
        }
        AesPath::Portable
    }

    fn rank(self) -> u8 {
        match self {
            AesPath::Portable => 0,
            AesPath::AesNi => 1,
            AesPath::Vaes512 => 2,
        }
    }
}

/// The path in use: the widest one, or the narrower one `VEIL_AES` names.
pub fn path() -> AesPath {
    static PATH: OnceLock<AesPath> = OnceLock::new();
    *PATH.get_or_init(|| {
        let widest = AesPath::widest();
        let asked = match std::env::var("VEIL_AES").ok().as_deref() {
            Some("aes-ni") => AesPath::AesNi,
            Some("portable") => AesPath::Portable,
            _ => widest,
        };
        if asked.rank() <= widest.rank() {
            asked
        } else {
            widest
        }
    })
}

/// AES-128 under one key, encrypting slices of blocks on [`path`]'s instructions. The round
/// keys are erased on drop.
pub struct WideAes {
    inner: Inner,
}

enum Inner {
    /// Round keys for the x86 paths, as little-endian 128-bit words.
    #[cfg(target_arch = "x86_64")]
    X86 { round_keys: [u128; 11], wide: bool },
    /// The `aes` crate (zeroizes its own round keys, built with its `zeroize` feature).
    Portable(Box<aes::Aes128>),
}

impl Drop for WideAes {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        if let Inner::X86 { round_keys, .. } = &mut self.inner {
            zeroize::Zeroize::zeroize(round_keys);
        }
    }
}

impl zeroize::ZeroizeOnDrop for WideAes {}

impl WideAes {
    /// AES-128 keyed with `key` (the block's 16 little-endian bytes are the FIPS-197 key).
    pub fn new(key: Block) -> WideAes {
        WideAes::with_path(key, path())
    }

    /// AES-128 on a given path; a path the processor lacks falls back to the widest it has.
    pub fn with_path(key: Block, p: AesPath) -> WideAes {
        let p = if p.rank() <= AesPath::widest().rank() {
            p
        } else {
            AesPath::widest()
        };
        #[cfg(target_arch = "x86_64")]
        if p != AesPath::Portable {
            // SAFETY: `p` is AesNi or Vaes512 only when `widest()` saw AES-NI and SSE2.
            let round_keys = unsafe { x86::expand(key.0) };
            return WideAes {
                inner: Inner::X86 {
                    round_keys,
                    wide: p == AesPath::Vaes512,
                },
            };
        }
        WideAes {
            inner: Inner::Portable(Box::new(aes::Aes128::new(&GenericArray::from(
                key.to_bytes(),
            )))),
        }
    }

    /// Encrypts every block in place.
    #[inline]
    pub fn encrypt(&self, blocks: &mut [Block]) {
        match &self.inner {
            #[cfg(target_arch = "x86_64")]
            Inner::X86 { round_keys, wide } => {
                // SAFETY: `Block` is `repr(transparent)` over `u128`, so the slice is a valid
                // `[u128]` of the same length. The round keys exist only when AES-NI and SSE2
                // were detected, and `wide` only when VAES and AVX-512F were too.
                let words = unsafe {
                    std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<u128>(), blocks.len())
                };
                unsafe {
                    if *wide {
                        x86::encrypt_vaes512(round_keys, words);
                    } else {
                        x86::encrypt_aesni(round_keys, words);
                    }
                }
            }
            Inner::Portable(cipher) => portable_encrypt(cipher, blocks),
        }
    }

    /// The encryption of one block.
    pub fn encrypt_block(&self, x: Block) -> Block {
        let mut b = [x];
        self.encrypt(&mut b);
        b[0]
    }
}

/// The `aes` crate on blocks, through a stack buffer of its byte arrays.
fn portable_encrypt(cipher: &aes::Aes128, blocks: &mut [Block]) {
    const CHUNK: usize = 64;
    let mut buf = [GenericArray::from([0u8; 16]); CHUNK];
    for chunk in blocks.chunks_mut(CHUNK) {
        for (g, b) in buf.iter_mut().zip(chunk.iter()) {
            *g = GenericArray::from(b.to_bytes());
        }
        cipher.encrypt_blocks(&mut buf[..chunk.len()]);
        for (b, g) in chunk.iter_mut().zip(buf.iter()) {
            *b = Block::from_bytes((*g).into());
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// The eleven AES-128 round keys of `key` (FIPS-197 section 5.2).
    ///
    /// # Safety
    /// The processor must support AES-NI and SSE2.
    #[target_feature(enable = "aes,sse2")]
    pub(super) unsafe fn expand(key: u128) -> [u128; 11] {
        // One step of the schedule: the previous round key with its words XORed in prefix
        // (three byte shifts by four) and the RotWord/SubWord/Rcon word broadcast.
        macro_rules! step {
            ($prev:expr, $rcon:literal) => {{
                let t = _mm_shuffle_epi32::<0xff>(_mm_aeskeygenassist_si128::<$rcon>($prev));
                let mut p = $prev;
                p = _mm_xor_si128(p, _mm_slli_si128::<4>(p));
                p = _mm_xor_si128(p, _mm_slli_si128::<4>(p));
                p = _mm_xor_si128(p, _mm_slli_si128::<4>(p));
                _mm_xor_si128(p, t)
            }};
        }
        let k0 = to_m128(key);
        let k1 = step!(k0, 0x01);
        let k2 = step!(k1, 0x02);
        let k3 = step!(k2, 0x04);
        let k4 = step!(k3, 0x08);
        let k5 = step!(k4, 0x10);
        let k6 = step!(k5, 0x20);
        let k7 = step!(k6, 0x40);
        let k8 = step!(k7, 0x80);
        let k9 = step!(k8, 0x1b);
        let k10 = step!(k9, 0x36);
        [k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, k10].map(from_m128)
    }

    #[inline(always)]
    fn to_m128(x: u128) -> __m128i {
        // SAFETY: `__m128i` and `u128` are both 16 plain bytes; x86 is little-endian, so the
        // value's bytes in memory are the block's bytes in order.
        unsafe { std::mem::transmute::<u128, __m128i>(x) }
    }

    #[inline(always)]
    fn from_m128(x: __m128i) -> u128 {
        // SAFETY: as in `to_m128`.
        unsafe { std::mem::transmute::<__m128i, u128>(x) }
    }

    /// One block through the ten rounds.
    #[inline(always)]
    unsafe fn one(k: &[__m128i; 11], x: &mut u128) {
        let p = (x as *mut u128).cast::<__m128i>();
        // SAFETY (caller): AES-NI present; `p` points to 16 valid bytes (unaligned access).
        unsafe {
            let mut v = _mm_xor_si128(_mm_loadu_si128(p), k[0]);
            for rk in &k[1..10] {
                v = _mm_aesenc_si128(v, *rk);
            }
            _mm_storeu_si128(p, _mm_aesenclast_si128(v, k[10]));
        }
    }

    /// AES-NI, eight blocks interleaved to fill the pipeline, then one at a time.
    ///
    /// # Safety
    /// The processor must support AES-NI and SSE2.
    #[target_feature(enable = "aes,sse2")]
    pub(super) unsafe fn encrypt_aesni(round_keys: &[u128; 11], blocks: &mut [u128]) {
        let k = round_keys.map(to_m128);
        let mut chunks = blocks.chunks_exact_mut(8);
        for c in &mut chunks {
            let p = c.as_mut_ptr().cast::<__m128i>();
            // SAFETY: `c` holds exactly eight blocks, so `p.add(0..8)` stay within it; loads
            // and stores are unaligned.
            unsafe {
                let mut v = [_mm_setzero_si128(); 8];
                for (i, v) in v.iter_mut().enumerate() {
                    *v = _mm_xor_si128(_mm_loadu_si128(p.add(i)), k[0]);
                }
                for rk in &k[1..10] {
                    for v in v.iter_mut() {
                        *v = _mm_aesenc_si128(*v, *rk);
                    }
                }
                for (i, v) in v.iter().enumerate() {
                    _mm_storeu_si128(p.add(i), _mm_aesenclast_si128(*v, k[10]));
                }
            }
        }
        for x in chunks.into_remainder() {
            // SAFETY: AES-NI is present (this function's contract).
            unsafe { one(&k, x) };
        }
    }

    /// VAES on 512-bit registers: sixteen blocks in four registers per step, then the rest
    /// on AES-NI.
    ///
    /// # Safety
    /// The processor must support VAES, AVX-512F, AES-NI and SSE2.
    #[target_feature(enable = "avx512f,vaes,aes,sse2")]
    pub(super) unsafe fn encrypt_vaes512(round_keys: &[u128; 11], blocks: &mut [u128]) {
        let k = round_keys.map(to_m128);
        let kw = k.map(|x| _mm512_broadcast_i32x4(x));
        let mut chunks = blocks.chunks_exact_mut(16);
        for c in &mut chunks {
            let p = c.as_mut_ptr().cast::<__m512i>();
            // SAFETY: `c` holds exactly sixteen blocks (256 bytes), four 64-byte registers, so
            // `p.add(0..4)` stay within it; loads and stores are unaligned.
            unsafe {
                let mut v = [_mm512_setzero_si512(); 4];
                for (i, v) in v.iter_mut().enumerate() {
                    *v = _mm512_xor_si512(_mm512_loadu_si512(p.add(i).cast()), kw[0]);
                }
                for rk in &kw[1..10] {
                    for v in v.iter_mut() {
                        *v = _mm512_aesenc_epi128(*v, *rk);
                    }
                }
                for (i, v) in v.iter().enumerate() {
                    _mm512_storeu_si512(p.add(i).cast(), _mm512_aesenclast_epi128(*v, kw[10]));
                }
            }
        }
        for x in chunks.into_remainder() {
            // SAFETY: AES-NI is present (this function's contract).
            unsafe { one(&k, x) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngCore, SeedableRng};

    const PATHS: [AesPath; 3] = [AesPath::Portable, AesPath::AesNi, AesPath::Vaes512];

    #[test]
    fn every_path_matches_fips197_c1() {
        let key =
            Block::from_bytes(*b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f");
        let pt =
            Block::from_bytes(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff");
        for p in PATHS {
            assert_eq!(
                WideAes::with_path(key, p).encrypt_block(pt).to_bytes(),
                *b"\x69\xc4\xe0\xd8\x6a\x7b\x04\x30\xd8\xcd\xb7\x80\x70\xb4\xc5\x5a",
                "{p:?}"
            );
        }
    }

    #[test]
    fn every_path_equals_the_aes_crate_on_random_keys_and_lengths() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 33, 64, 100, 257] {
            let key = Block(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64()));
            let xs: Vec<Block> = (0..len)
                .map(|_| Block(u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64())))
                .collect();
            let reference = aes::Aes128::new(&GenericArray::from(key.to_bytes()));
            let mut want = xs.clone();
            portable_encrypt(&reference, &mut want);
            for p in PATHS {
                let mut got = xs.clone();
                WideAes::with_path(key, p).encrypt(&mut got);
                assert!(got == want, "path {p:?}, {len} blocks");
            }
        }
    }

    #[test]
    fn a_narrower_path_is_honoured_and_a_wider_one_falls_back() {
        assert!(path().rank() <= AesPath::widest().rank());
        let w = WideAes::with_path(Block(1), AesPath::Vaes512);
        match (&w.inner, AesPath::widest()) {
            (Inner::Portable(_), AesPath::Portable) => {}
            #[cfg(target_arch = "x86_64")]
            (Inner::X86 { wide, .. }, widest) => {
                assert_eq!(*wide, widest == AesPath::Vaes512)
            }
            _ => panic!("a path the processor lacks was chosen"),
        }
        assert!(matches!(
            WideAes::with_path(Block(1), AesPath::Portable).inner,
            Inner::Portable(_)
        ));
    }
}
