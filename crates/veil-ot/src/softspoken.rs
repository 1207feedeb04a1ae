//! SoftSpokenOT: Roy, "SoftSpokenOT: Quieter OT Extension from Small-Field Silent VOLE in the
//! Minicrypt Model" (CRYPTO 2022), the columns of the extension matrix from small-field
//! subspace VOLE instead of IKNP's one seed pair per column, at `128 / k` bits per OT on the
//! wire instead of 128.
//!
//! The 128 columns fall into `128 / k` groups of `k`. For each group:
//!
//! - **Setup** (section 4, "(N−1)-out-of-N OT from GGM"): the extension receiver grows a GGM
//!   tree of depth `k` from a random root, with `N = 2^k` leaves `s_x`, `x ∈ {0,1}^k`; for each
//!   level `ℓ` it sends, one-time-padded with the two keys of a random base OT, the XOR of the
//!   level's left children and of its right children. The sender, whose base-OT choice bit at
//!   level `ℓ` is `1 − Δ_ℓ` (its `k` bits of `Δ` for the group), rebuilds every leaf but the
//!   one at `x = Δ`: the puncture.
//! - **Extension** (section 3, figure 3, with the repetition code): for `n` OTs the receiver
//!   expands every leaf with the PRG `G` and sets `u = Σ_x G(s_x)` and `v_j = Σ_x x_j·G(s_x)`
//!   (`j < k`), n-bit vectors; the sender, indexing its leaves by `y = x ⊕ Δ`, sets
//!   `w_j = Σ_y y_j·G(s_{y⊕Δ})`, which needs no `s_Δ` (its `y` is 0) and equals
//!   `v_j ⊕ Δ_j·u`. The receiver sends `c = u ⊕ r` for its choice bits `r` (n bits per group)
//!   and the sender adds `Δ_j·c`, leaving `w_j = v_j ⊕ Δ_j·r`.
//!
//! Across the groups the columns are `q^i = t^i ⊕ Δ_i·r` with `q = w` at the sender and
//! `t = v` at the receiver: exactly IKNP's correlation, so that transposition, random and
//! chosen-message OT and the KOS consistency check ([`crate::kos`]; Roy, section 5, shows the
//! same universal-hash check secures the subspace VOLE) run unchanged on top
//! ([`crate::extension`]).
//!
//! Cost per OT: `128 / k` bits sent (4 bytes at `k = 4`, IKNP 16), `2^k · 128 / k` bits of
//! PRG output per party (4 AES blocks at `k = 4`, IKNP 1 and 2). [`DEFAULT_K`] is 4.
//!
//! The sender's work on `Δ` is constant-time: the puncture is rebuilt with masks over every
//! position, and its leaves are re-indexed by `y = x ⊕ Δ` once, at setup, by masked selection,
//! so that later extensions touch memory in an order independent of `Δ`.

use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use crate::block::Block;
use crate::error::OtError;
use crate::prg::AesPrg;
use crate::wide_aes::WideAes;

/// The default group width: 32 bits (4 bytes) per OT on the wire, and 4 AES blocks of PRG
/// output per OT at each party.
pub const DEFAULT_K: usize = 4;

/// The group widths supported: the divisors of 128 up to 8 (`k = 8` sends 2 bytes per OT but
/// expands 32 AES blocks per OT).
pub const SUPPORTED_K: [usize; 4] = [1, 2, 4, 8];

/// Checks a group width.
pub fn check_k(k: usize) -> Result<(), OtError> {
    if SUPPORTED_K.contains(&k) {
        Ok(())
    } else {
        Err(OtError::InvalidArgument(format!(
            "SoftSpokenOT group width {k} (supported: 1, 2, 4, 8)"
        )))
    }
}

/// Groups of `k` columns.
pub fn groups(k: usize) -> usize {
    128 / k
}

/// The two children of a GGM node: AES under the node as key, on 0 and 1.
fn expand(node: Block) -> [Block; 2] {
    let mut kids = [Block(0), Block(1)];
    WideAes::new(node).encrypt(&mut kids);
    kids
}

/// A mask of all ones where `a == b`, else zero, in constant time.
fn eq_mask(a: usize, b: usize) -> Block {
    Block::conditional_select(&Block::ZERO, &Block::ONES, (a as u64).ct_eq(&(b as u64)))
}

/// The receiver's leaves: `2^k` generators per group, leaf `x` at index `x`.
pub(crate) struct ReceiverLeaves {
    k: usize,
    prgs: Vec<Vec<AesPrg>>,
    /// Every leaf's output for one group and sub-chunk, leaf after leaf.
    buf: Vec<Block>,
}

impl Zeroize for ReceiverLeaves {
    fn zeroize(&mut self) {
        self.prgs.clear();
        crate::block::zeroize_blocks(&mut self.buf);
    }
}

/// The receiver's setup: from the `128` random base-OT pairs it sent (group `g`, level `ℓ` at
/// index `g·k + ℓ`), grows one tree per group from a random root and returns its leaves and
/// the padded level sums to send (`2 · 128` blocks: for each base OT, the sums of the left and
/// of the right children, each XORed with the matching key).
pub(crate) fn receiver_setup(
    k: usize,
    pairs: &[[Block; 2]],
    roots: &[Block],
) -> (ReceiverLeaves, Vec<Block>) {
    let g_count = groups(k);
    debug_assert_eq!(pairs.len(), 128);
    debug_assert_eq!(roots.len(), g_count);
    let mut sums = Vec::with_capacity(256);
    let mut prgs = Vec::with_capacity(g_count);
    for g in 0..g_count {
        let mut level = vec![roots[g]];
        for l in 0..k {
            let width = level.len();
            let mut next = vec![Block::ZERO; 2 * width];
            let mut k_sum = [Block::ZERO; 2];
            for (p, node) in level.iter().enumerate() {
                let kids = expand(*node);
                // Child with bit ℓ = b sits at p + b·2^ℓ.
                next[p] = kids[0];
                next[p + width] = kids[1];
                k_sum[0] ^= kids[0];
                k_sum[1] ^= kids[1];
            }
            let [a0, a1] = pairs[g * k + l];
            sums.push(k_sum[0] ^ a0);
            sums.push(k_sum[1] ^ a1);
            level.zeroize();
            level = next;
        }
        prgs.push(level.iter().map(|s| AesPrg::new(*s)).collect());
        level.zeroize();
    }
    (
        ReceiverLeaves {
            k,
            prgs,
            buf: Vec::new(),
        },
        sums,
    )
}

impl ReceiverLeaves {
    /// One sub-chunk of `nbs = r.len()` blocks per column: writes the columns `t^i = v`
    /// (column-major, `128 · nbs` blocks) and the corrections `c = u ⊕ r` of every group
    /// (`128 / k · nbs` blocks, group after group) as little-endian bytes into `corr`.
    ///
    /// With `random`, the choice bits are the first group's `u`, written to `r`, and that
    /// group sends no correction (`corr` holds the others): `128 / k − 1` bits per OT.
    pub(crate) fn columns(
        &mut self,
        r: &mut [Block],
        random: bool,
        t: &mut [Block],
        corr: &mut [u8],
    ) {
        let nbs = r.len();
        let k = self.k;
        let skip = usize::from(random);
        debug_assert_eq!(t.len(), 128 * nbs);
        debug_assert_eq!(corr.len(), (groups(k) - skip) * nbs * Block::BYTES);
        self.buf.resize(nbs << k, Block::ZERO);
        for (g, leaves) in self.prgs.iter_mut().enumerate() {
            for (prg, out) in leaves.iter_mut().zip(self.buf.chunks_exact_mut(nbs)) {
                prg.fill(out);
            }
            let planes = &mut t[g * k * nbs..(g + 1) * k * nbs];
            let mut u = [Block::ZERO; crate::extension::SUB_BLOCKS];
            reduce(k, &self.buf, nbs, planes, &mut u[..nbs]);
            if random && g == 0 {
                r.copy_from_slice(&u[..nbs]);
                crate::block::wipe_blocks(&mut u);
                continue;
            }
            let at = g - skip;
            let out = &mut corr[at * nbs * Block::BYTES..(at + 1) * nbs * Block::BYTES];
            for ((o, ub), rb) in out.chunks_exact_mut(Block::BYTES).zip(&u).zip(r.iter()) {
                o.copy_from_slice(&(*ub ^ *rb).to_bytes());
            }
            crate::block::wipe_blocks(&mut u);
        }
    }
}

/// Every leaf's output (leaf `x` at `buf[x·nbs ..]`, `nbs` blocks each) summed, block by
/// block, by a binary tree: writes `u = Σ_x G(s_x)` and the planes `v_j = Σ_{x_j = 1} G(s_x)`
/// (plane `j` at `planes[j·nbs ..]`). Pairing the nodes that differ in bit `j` at level `j`,
/// the right nodes of level `j` sum to `v_j`: `2 (2^k − 1)` XORs in registers per block,
/// where XOR-ing each leaf into `1 + k/2` accumulators in memory costs six times the memory
/// traffic. Specialised per `k` so that the tree unrolls.
fn reduce(k: usize, buf: &[Block], nbs: usize, planes: &mut [Block], u: &mut [Block]) {
    match k {
        1 => reduce_k::<1, 2>(buf, nbs, 0, planes, u),
        2 => reduce_k::<2, 4>(buf, nbs, 0, planes, u),
        4 => {
            let done = simd_reduce4(buf, nbs, planes, u);
            reduce_k::<4, 16>(buf, nbs, done, planes, u);
        }
        _ => reduce_k::<8, 256>(buf, nbs, 0, planes, u),
    }
}

/// The portable tree, for the blocks from `from` on.
fn reduce_k<const K: usize, const N: usize>(
    buf: &[Block],
    nbs: usize,
    from: usize,
    planes: &mut [Block],
    u: &mut [Block],
) {
    debug_assert!(buf.len() >= N * nbs && planes.len() == K * nbs && u.len() == nbs);
    for (b, ub) in u.iter_mut().enumerate().skip(from) {
        let mut acc: [Block; N] = std::array::from_fn(|x| buf[x * nbs + b]);
        let mut width = N;
        for j in 0..K {
            let half = width / 2;
            let mut sum = Block::ZERO;
            for i in 0..half {
                let right = acc[2 * i + 1];
                sum ^= right;
                acc[i] = acc[2 * i] ^ right;
            }
            planes[j * nbs + b] = sum;
            width = half;
        }
        *ub = acc[0];
    }
}

/// Whether the AVX2 tree runs: the processor has AVX2 and `VEIL_AES=portable` (no SIMD at
/// all) is not set.
pub fn simd_tree() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        crate::transpose::path() != crate::transpose::TransposePath::Portable
            && std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The `k = 4` tree on AVX2, two blocks per register, where the processor has it; returns how
/// many leading blocks it did (an even number), the rest being the portable tree's.
fn simd_reduce4(buf: &[Block], nbs: usize, planes: &mut [Block], u: &mut [Block]) -> usize {
    #[cfg(target_arch = "x86_64")]
    if simd_tree() {
        assert!(buf.len() >= 16 * nbs && planes.len() == 4 * nbs && u.len() == nbs);
        // SAFETY: the processor has AVX2 (checked above); the lengths are asserted.
        #[allow(unsafe_code)]
        return unsafe { x86::reduce4_avx2(buf, nbs, planes, u) };
    }
    let _ = (buf, nbs, planes, u);
    0
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::{__m256i, _mm256_loadu_si256, _mm256_storeu_si256, _mm256_xor_si256};

    use crate::block::Block;

    /// The `k = 4` tree on blocks `b, b + 1` at a time for every even `b + 2 <= nbs`; returns
    /// the blocks done.
    ///
    /// # Safety
    /// The processor has AVX2; `buf` holds at least `16 * nbs` blocks, `planes` `4 * nbs` and
    /// `u` `nbs`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn reduce4_avx2(
        buf: &[Block],
        nbs: usize,
        planes: &mut [Block],
        u: &mut [Block],
    ) -> usize {
        let src = buf.as_ptr();
        let dst = planes.as_mut_ptr();
        let mut b = 0;
        while b + 2 <= nbs {
            // SAFETY: `x * nbs + b + 1 < 16 * nbs <= buf.len()` for every leaf `x < 16`;
            // `j * nbs + b + 1 < 4 * nbs` for every plane `j < 4`; `b + 1 < nbs`.
            unsafe {
                let mut a: [__m256i; 16] =
                    std::array::from_fn(|x| _mm256_loadu_si256(src.add(x * nbs + b).cast()));
                let mut width = 16;
                for j in 0..4 {
                    let half = width / 2;
                    let mut sum = a[1];
                    a[0] = _mm256_xor_si256(a[0], a[1]);
                    for i in 1..half {
                        let right = a[2 * i + 1];
                        sum = _mm256_xor_si256(sum, right);
                        a[i] = _mm256_xor_si256(a[2 * i], right);
                    }
                    _mm256_storeu_si256(dst.add(j * nbs + b).cast(), sum);
                    width = half;
                }
                _mm256_storeu_si256(u.as_mut_ptr().add(b).cast(), a[0]);
            }
            b += 2;
        }
        b
    }
}

/// The sender's leaves: per group, the generators of `y = 1 … 2^k − 1`, leaf `y` being the
/// receiver's leaf `y ⊕ Δ`; and `Δ`, to add its share of the corrections.
pub(crate) struct SenderLeaves {
    k: usize,
    delta: Block,
    prgs: Vec<Vec<AesPrg>>,
    buf: Vec<Block>,
}

impl Zeroize for SenderLeaves {
    fn zeroize(&mut self) {
        self.delta.zeroize();
        self.prgs.clear();
        crate::block::zeroize_blocks(&mut self.buf);
    }
}

/// The sender's setup: from its base-OT keys (chosen by `1 − Δ_i`, index `g·k + ℓ`) and the
/// receiver's padded level sums, rebuilds each tree but its punctured leaf `Δ_g`, in constant
/// time, and re-indexes the leaves by `y = x ⊕ Δ_g`.
pub(crate) fn sender_setup(
    k: usize,
    delta: Block,
    keys: &[Block],
    sums: &[Block],
) -> Result<SenderLeaves, OtError> {
    let g_count = groups(k);
    if keys.len() != 128 || sums.len() != 256 {
        return Err(OtError::Malformed(format!(
            "SoftSpokenOT setup: {} base keys and {} level sums, expected 128 and 256",
            keys.len(),
            sums.len()
        )));
    }
    let mut prgs = Vec::with_capacity(g_count);
    for g in 0..g_count {
        let bit = |l: usize| delta.bit(g * k + l);
        // Level 0: the sibling of the path is known, the path node is not.
        let mut level = vec![Block::ZERO; 2];
        let c0 = !bit(0);
        let known =
            sums[2 * (g * k)].conditional_select_by(sums[2 * (g * k) + 1], c0) ^ keys[g * k];
        for (b, node) in level.iter_mut().enumerate() {
            *node = known & eq_mask(b, usize::from(c0));
        }
        // The punctured index so far (secret).
        let mut punct = usize::from(bit(0));
        for l in 1..k {
            let width = level.len();
            let mut next = vec![Block::ZERO; 2 * width];
            let mut s = [Block::ZERO; 2];
            for (p, node) in level.iter().enumerate() {
                let keep = eq_mask(p, punct) ^ Block::ONES;
                let kids = expand(*node);
                next[p] = kids[0] & keep;
                next[p + width] = kids[1] & keep;
                s[0] ^= next[p];
                s[1] ^= next[p + width];
            }
            let c = !bit(l);
            let at = 2 * (g * k + l);
            let k_c = sums[at].conditional_select_by(sums[at + 1], c) ^ keys[g * k + l];
            let recovered = k_c ^ s[0].conditional_select_by(s[1], c);
            let target = punct + usize::from(c) * width;
            for (q, node) in next.iter_mut().enumerate() {
                *node ^= recovered & eq_mask(q, target);
            }
            punct += usize::from(bit(l)) * width;
            level.zeroize();
            level = next;
        }
        // Leaf y of the sender is the receiver's leaf y ⊕ Δ_g; y = 0 is the puncture.
        let dg = punct;
        let mut leaves = Vec::with_capacity((1 << k) - 1);
        for y in 1..1usize << k {
            let mut s = Block::ZERO;
            for (x, node) in level.iter().enumerate() {
                s ^= *node & eq_mask(x, y ^ dg);
            }
            leaves.push(AesPrg::new(s));
            s.zeroize();
        }
        level.zeroize();
        prgs.push(leaves);
    }
    Ok(SenderLeaves {
        k,
        delta,
        prgs,
        buf: Vec::new(),
    })
}

/// `a` where `choose` is false, `b` where it is true, in constant time.
trait SelectBy {
    fn conditional_select_by(self, b: Block, choose: bool) -> Block;
}

impl SelectBy for Block {
    fn conditional_select_by(self, b: Block, choose: bool) -> Block {
        Block::conditional_select(&self, &b, subtle::Choice::from(u8::from(choose)))
    }
}

impl SenderLeaves {
    /// One sub-chunk of `nbs` blocks per column: from the receiver's corrections (bytes, as
    /// [`ReceiverLeaves::columns`] wrote them; with `random`, none for the first group),
    /// writes the columns `q^i = w` (column-major, `128 · nbs` blocks).
    pub(crate) fn columns(&mut self, corr: &[u8], random: bool, nbs: usize, q: &mut [Block]) {
        let k = self.k;
        let skip = usize::from(random);
        debug_assert_eq!(q.len(), 128 * nbs);
        debug_assert_eq!(corr.len(), (groups(k) - skip) * nbs * Block::BYTES);
        // Leaf `y = 0`, the puncture, stays zero: its weight `y_j` is 0 in every plane.
        self.buf.resize(nbs << k, Block::ZERO);
        self.buf[..nbs].fill(Block::ZERO);
        for (g, leaves) in self.prgs.iter_mut().enumerate() {
            for (prg, out) in leaves.iter_mut().zip(self.buf[nbs..].chunks_exact_mut(nbs)) {
                prg.fill(out);
            }
            let planes = &mut q[g * k * nbs..(g + 1) * k * nbs];
            let mut u = [Block::ZERO; crate::extension::SUB_BLOCKS];
            reduce(k, &self.buf, nbs, planes, &mut u[..nbs]);
            if random && g == 0 {
                continue;
            }
            let at = g - skip;
            let c = &corr[at * nbs * Block::BYTES..(at + 1) * nbs * Block::BYTES];
            for (j, plane) in planes.chunks_exact_mut(nbs).enumerate() {
                // `Δ_i` is secret: mask instead of branching on it.
                let mask = Block::ONES.and_bit(self.delta.bit(g * k + j));
                for (w, cb) in plane.iter_mut().zip(c.chunks_exact(Block::BYTES)) {
                    *w ^= Block::from_bytes(cb.try_into().expect("16-byte chunk")) & mask;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Base OTs as an honest run would leave them: the sender holds key `1 − Δ_i` of pair `i`.
    fn wired(k: usize, delta: Block, rng: &mut ChaCha20Rng) -> (ReceiverLeaves, SenderLeaves) {
        let pairs: Vec<[Block; 2]> = (0..128)
            .map(|_| [Block::random(rng), Block::random(rng)])
            .collect();
        let keys: Vec<Block> = (0..128)
            .map(|i| pairs[i][usize::from(!delta.bit(i))])
            .collect();
        let roots: Vec<Block> = (0..groups(k)).map(|_| Block::random(rng)).collect();
        let (r, sums) = receiver_setup(k, &pairs, &roots);
        let s = sender_setup(k, delta, &keys, &sums).unwrap();
        (r, s)
    }

    #[test]
    fn columns_satisfy_the_correlation_for_every_k() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        for k in SUPPORTED_K {
            let delta = Block::random(&mut rng);
            let (mut r, mut s) = wired(k, delta, &mut rng);
            for (nbs, random) in [(1, false), (3, true), (16, false), (16, true)] {
                let mut choices: Vec<Block> = (0..nbs).map(|_| Block::random(&mut rng)).collect();
                let mut t = vec![Block::ZERO; 128 * nbs];
                let mut q = vec![Block::ZERO; 128 * nbs];
                let skip = usize::from(random);
                let mut corr = vec![0u8; (groups(k) - skip) * nbs * Block::BYTES];
                let given = choices.clone();
                r.columns(&mut choices, random, &mut t, &mut corr);
                assert_eq!(choices == given, !random);
                s.columns(&corr, random, nbs, &mut q);
                for i in 0..128 {
                    for b in 0..nbs {
                        let want = t[i * nbs + b] ^ choices[b].and_bit(delta.bit(i));
                        assert_eq!(q[i * nbs + b], want, "k {k}, column {i}, block {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_sender_misses_exactly_the_punctured_leaf() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let k = 4;
        let delta = Block::random(&mut rng);
        let (mut r, mut s) = wired(k, delta, &mut rng);
        for g in 0..groups(k) {
            let dg: usize = (0..k).map(|l| usize::from(delta.bit(g * k + l)) << l).sum();
            let outs: Vec<Block> = r.prgs[g].iter_mut().map(|p| p.next_block()).collect();
            let mine: Vec<Block> = s.prgs[g].iter_mut().map(|p| p.next_block()).collect();
            for (y, b) in (1usize..).zip(&mine) {
                assert_eq!(*b, outs[y ^ dg]);
            }
            assert!(!mine.contains(&outs[dg]));
        }
    }

    #[test]
    fn the_simd_tree_matches_the_portable_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        for nbs in [1, 2, 3, 15, 16] {
            let buf: Vec<Block> = (0..16 * nbs).map(|_| Block::random(&mut rng)).collect();
            let (mut p1, mut u1) = (vec![Block::ZERO; 4 * nbs], vec![Block::ZERO; nbs]);
            let (mut p2, mut u2) = (vec![Block::ZERO; 4 * nbs], vec![Block::ZERO; nbs]);
            reduce(4, &buf, nbs, &mut p1, &mut u1);
            reduce_k::<4, 16>(&buf, nbs, 0, &mut p2, &mut u2);
            assert_eq!((&p1, &u1), (&p2, &u2), "{nbs} blocks");
            // And the tree is the definition: u = Σ_x leaf_x, v_j = Σ_{x_j = 1} leaf_x.
            for b in 0..nbs {
                let sum = |f: &dyn Fn(usize) -> bool| {
                    (0..16)
                        .filter(|x| f(*x))
                        .fold(Block::ZERO, |a, x| a ^ buf[x * nbs + b])
                };
                assert_eq!(u2[b], sum(&|_| true));
                for j in 0..4 {
                    assert_eq!(p2[j * nbs + b], sum(&|x| x >> j & 1 == 1));
                }
            }
        }
    }

    #[test]
    fn setup_refuses_wrong_sizes() {
        assert!(sender_setup(4, Block(1), &[Block(0); 127], &[Block(0); 256]).is_err());
        assert!(sender_setup(4, Block(1), &[Block(0); 128], &[Block(0); 255]).is_err());
        assert!(check_k(3).is_err() && check_k(4).is_ok());
    }
}
