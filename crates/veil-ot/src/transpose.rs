//! Transposition of 128x128 bit matrices, the step that turns IKNP's columns into OT rows.
//!
//! Row `r` of the matrix is a `u128` whose bit `c` is element `(r, c)`. The algorithm is the
//! recursive block swap of Eklundh (1972), in the word-parallel form of Warren, "Hacker's
//! Delight", section 7-3: seven stages; the stage of width `w` (64, 32, ..., 1) pairs row `r`
//! with row `r + w` and swaps the high `w`-bit half of each `2w`-bit group of the first with
//! the low half of the same group of the second. The stages commute (each exchanges one bit
//! of the row index with the same bit of the column index), so any order transposes.
//!
//! Three implementations of the same stages, chosen once at run time like [`crate::wide_aes`]:
//!
//! - **AVX-512F**: 32 registers of four rows each (`r`, `r + 32`, `r + 64`, `r + 96`). The
//!   stages of width 64 and 32 pair rows of one register and are one permutation each
//!   (`VPERMQ`, `VPERMD`); the five others pair whole registers with 64-bit shifts, exact
//!   because a `2w`-bit group never crosses a 64-bit word for `w ≤ 32`.
//! - **AVX2**: 64 registers of two rows (`r`, `r + 64`); width 64 is one `VPERMQ` per register.
//! - **portable**: the same stages on `u128` rows, for other processors.
//!
//! [`transpose_gather`] reads the 128 rows straight from a column-major matrix (one block of
//! each column), so the caller needs no copy. The SIMD kernels are this module's only
//! `unsafe` code; each is checked against the portable one on random matrices.

#![allow(unsafe_code)]

use std::sync::OnceLock;

use crate::block::Block;

/// The implementation that transposes on this processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransposePath {
    /// AVX-512F: four rows per register.
    Avx512,
    /// AVX2: two rows per register.
    Avx2,
    /// Word-parallel on `u128`, any processor.
    Portable,
}

impl TransposePath {
    /// The name reports carry: `"avx512"`, `"avx2"` or `"portable"`.
    pub fn name(self) -> &'static str {
        match self {
            TransposePath::Avx512 => "avx512",
            TransposePath::Avx2 => "avx2",
            TransposePath::Portable => "portable",
        }
    }

    /// The widest path this processor supports.
    pub fn widest() -> TransposePath {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return TransposePath::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return TransposePath::Avx2;
            }
        }
        TransposePath::Portable
    }

    fn rank(self) -> u8 {
        match self {
            TransposePath::Portable => 0,
            TransposePath::Avx2 => 1,
            TransposePath::Avx512 => 2,
        }
    }
}

/// The path in use: the widest one, or the portable one under `VEIL_AES=portable` (which
/// asks for no SIMD at all, for side-by-side figures).
pub fn path() -> TransposePath {
    static PATH: OnceLock<TransposePath> = OnceLock::new();
    *PATH.get_or_init(|| match std::env::var("VEIL_AES").ok().as_deref() {
        Some("portable") => TransposePath::Portable,
        _ => TransposePath::widest(),
    })
}

/// Transposes the 128x128 bit matrix `m` in place (portable stages).
pub fn transpose128(m: &mut [Block; 128]) {
    let mut width = 64usize;
    let mut mask: u128 = (1u128 << 64) - 1;
    while width != 0 {
        let mut k = 0usize;
        while k < 128 {
            for r in k..k + width {
                let t = ((m[r].0 >> width) ^ m[r + width].0) & mask;
                m[r].0 ^= t << width;
                m[r + width].0 ^= t;
            }
            k += 2 * width;
        }
        width >>= 1;
        mask ^= mask << width;
    }
}

/// Writes to `out` the transpose of the matrix whose row `i` is `cols[i * stride + b]`
/// (block `b` of each of the 128 columns of a column-major matrix with `stride` blocks per
/// column), on [`path`]'s instructions.
///
/// # Panics
/// If `cols` is shorter than `127 * stride + b + 1` blocks.
pub fn transpose_gather(cols: &[Block], stride: usize, b: usize, out: &mut [Block; 128]) {
    transpose_gather_on(path(), cols, stride, b, out);
}

/// [`transpose_gather`] on a given path; a path the processor lacks falls back to the widest
/// it has.
pub fn transpose_gather_on(
    p: TransposePath,
    cols: &[Block],
    stride: usize,
    b: usize,
    out: &mut [Block; 128],
) {
    assert!(
        127 * stride + b < cols.len(),
        "transpose of block {b} with stride {stride} over {} blocks",
        cols.len()
    );
    let p = if p.rank() <= TransposePath::widest().rank() {
        p
    } else {
        TransposePath::widest()
    };
    match p {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `widest()` returned at least this path, so the processor has AVX-512F.
        TransposePath::Avx512 => unsafe { x86::avx512(cols, stride, b, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, with AVX2.
        TransposePath::Avx2 => unsafe { x86::avx2(cols, stride, b, out) },
        _ => {
            for (i, row) in out.iter_mut().enumerate() {
                *row = cols[i * stride + b];
            }
            transpose128(out);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::block::Block;

    /// Loads row `i` of the gathered matrix. Bounds-checked indexing; the load itself is an
    /// unaligned 16-byte read of a `Block` (`repr(transparent)` over `u128`).
    #[inline(always)]
    fn load(cols: &[Block], stride: usize, b: usize, i: usize) -> __m128i {
        let p = (&cols[i * stride + b] as *const Block).cast::<__m128i>();
        // SAFETY: `p` points to a live, 16-byte `Block`; `loadu` has no alignment requirement
        // and SSE2 is part of x86-64.
        unsafe { _mm_loadu_si128(p) }
    }

    #[inline(always)]
    fn store(out: &mut [Block; 128], i: usize, v: __m128i) {
        let p = (&mut out[i] as *mut Block).cast::<__m128i>();
        // SAFETY: `p` points to a 16-byte `Block` we borrow mutably; `storeu` is unaligned.
        unsafe { _mm_storeu_si128(p, v) }
    }

    /// The stages of width `W` (16 down to 1 for AVX-512, 32 down to 1 for AVX2), on register
    /// pairs `(r, r + W)`; `$n` registers, with the given vector type's operations.
    macro_rules! pair_stage {
        ($z:ident, $n:expr, $w:literal, $mask:expr, $srl:ident, $sll:ident, $xor:ident, $and:ident) => {{
            let mask = $mask;
            let mut k = 0;
            while k < $n {
                for r in k..k + $w {
                    let a = $z[r];
                    let b = $z[r + $w];
                    let t = $and($xor($srl::<$w>(a), b), mask);
                    $z[r] = $xor(a, $sll::<$w>(t));
                    $z[r + $w] = $xor(b, t);
                }
                k += 2 * $w;
            }
        }};
    }

    /// # Safety
    /// The processor must support AVX-512F. Bounds of `cols` are checked by the caller and
    /// again by the indexing in `load`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn avx512(cols: &[Block], stride: usize, b: usize, out: &mut [Block; 128]) {
        let mut z = [_mm512_setzero_si512(); 32];
        for (k, v) in z.iter_mut().enumerate() {
            let x = _mm512_castsi128_si512(load(cols, stride, b, k));
            let x = _mm512_inserti32x4::<1>(x, load(cols, stride, b, k + 32));
            let x = _mm512_inserti32x4::<2>(x, load(cols, stride, b, k + 64));
            *v = _mm512_inserti32x4::<3>(x, load(cols, stride, b, k + 96));
        }
        // Width 64: rows r (lane 0) and r + 64 (lane 2), r + 32 (lane 1) and r + 96 (lane 3)
        // swap the first's high quadword with the second's low one.
        let q = _mm512_set_epi64(7, 3, 5, 1, 6, 2, 4, 0);
        // Width 32: lanes 0 and 1, 2 and 3 swap the high doubleword of each quadword of the
        // first with the low doubleword of the same quadword of the second.
        let d = _mm512_set_epi32(15, 11, 13, 9, 14, 10, 12, 8, 7, 3, 5, 1, 6, 2, 4, 0);
        for v in z.iter_mut() {
            *v = _mm512_permutexvar_epi32(d, _mm512_permutexvar_epi64(q, *v));
        }
        macro_rules! stage {
            ($w:literal, $m:literal) => {
                pair_stage!(
                    z,
                    32,
                    $w,
                    _mm512_set1_epi64($m),
                    _mm512_srli_epi64,
                    _mm512_slli_epi64,
                    _mm512_xor_si512,
                    _mm512_and_si512
                )
            };
        }
        stage!(16, 0x0000_ffff_0000_ffff);
        stage!(8, 0x00ff_00ff_00ff_00ff);
        stage!(4, 0x0f0f_0f0f_0f0f_0f0f);
        stage!(2, 0x3333_3333_3333_3333);
        stage!(1, 0x5555_5555_5555_5555);
        for (k, v) in z.iter().enumerate() {
            store(out, k, _mm512_extracti32x4_epi32::<0>(*v));
            store(out, k + 32, _mm512_extracti32x4_epi32::<1>(*v));
            store(out, k + 64, _mm512_extracti32x4_epi32::<2>(*v));
            store(out, k + 96, _mm512_extracti32x4_epi32::<3>(*v));
        }
    }

    /// # Safety
    /// The processor must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2(cols: &[Block], stride: usize, b: usize, out: &mut [Block; 128]) {
        let mut z = [_mm256_setzero_si256(); 64];
        for (k, v) in z.iter_mut().enumerate() {
            let x = _mm256_castsi128_si256(load(cols, stride, b, k));
            let x = _mm256_inserti128_si256::<1>(x, load(cols, stride, b, k + 64));
            // Width 64: quadwords (0, 1 | 2, 3) become (0, 2 | 1, 3).
            *v = _mm256_permute4x64_epi64::<0b11_01_10_00>(x);
        }
        macro_rules! stage {
            ($w:literal, $m:literal) => {
                pair_stage!(
                    z,
                    64,
                    $w,
                    _mm256_set1_epi64x($m),
                    _mm256_srli_epi64,
                    _mm256_slli_epi64,
                    _mm256_xor_si256,
                    _mm256_and_si256
                )
            };
        }
        stage!(32, 0x0000_0000_ffff_ffff);
        stage!(16, 0x0000_ffff_0000_ffff);
        stage!(8, 0x00ff_00ff_00ff_00ff);
        stage!(4, 0x0f0f_0f0f_0f0f_0f0f);
        stage!(2, 0x3333_3333_3333_3333);
        stage!(1, 0x5555_5555_5555_5555);
        for (k, v) in z.iter().enumerate() {
            store(out, k, _mm256_castsi256_si128(*v));
            store(out, k + 64, _mm256_extracti128_si256::<1>(*v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn transposes_random_matrices() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..4 {
            let orig: [Block; 128] = std::array::from_fn(|_| Block(rng.random()));
            let mut m = orig;
            transpose128(&mut m);
            for r in 0..128 {
                for c in 0..128 {
                    assert_eq!(m[c].bit(r), orig[r].bit(c), "({r},{c})");
                }
            }
            transpose128(&mut m);
            assert_eq!(m, orig);
        }
    }

    /// Every path the processor has gathers and transposes exactly as the portable one, at
    /// every block of a strided matrix.
    #[test]
    fn every_path_matches_the_portable_one() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
        let paths = [
            TransposePath::Avx512,
            TransposePath::Avx2,
            TransposePath::Portable,
        ];
        for stride in [1usize, 3, 16] {
            let cols: Vec<Block> = (0..128 * stride).map(|_| Block(rng.random())).collect();
            for b in 0..stride {
                let mut want = [Block::ZERO; 128];
                for (i, row) in want.iter_mut().enumerate() {
                    *row = cols[i * stride + b];
                }
                transpose128(&mut want);
                for p in paths {
                    let mut got = [Block::ZERO; 128];
                    transpose_gather_on(p, &cols, stride, b, &mut got);
                    assert_eq!(got, want, "{p:?}, stride {stride}, block {b}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "transpose of block")]
    fn a_short_matrix_is_refused() {
        let cols = vec![Block::ZERO; 127 * 4];
        let mut out = [Block::ZERO; 128];
        transpose_gather(&cols, 4, 0, &mut out);
    }

    #[test]
    fn the_path_is_the_widest_unless_narrowed() {
        let p = path();
        assert!(p == TransposePath::widest() || p == TransposePath::Portable);
    }
}
