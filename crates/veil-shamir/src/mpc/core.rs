//! BGW's online phase as a synchronous core: every communicating operation is a *start*, which
//! returns the [`Round`] of messages to send and the lengths to expect, and a *finish*, which
//! takes what the peers sent and returns the result. No I/O and no runtime: [`Party`]
//! (`party.rs`) drives the core over its channels, and the tests below drive `n` cores by
//! handing each round's messages across in memory.
//!
//! The arithmetic is that of the module `party`: Shamir sharing of degree `t` with party `i`
//! at the point `i + 1` (Shamir 1979), products reduced with the one-round resharing of
//! Gennaro, Rabin and Rabin ("Simplified VSS and fast-track multiparty computations", PODC
//! 1998, section 3) for the semi-honest BGW protocol (Ben-Or, Goldwasser and Wigderson, STOC
//! 1988, section 4), and openings decoded with error detection (Berlekamp–Welch).
//!
//! [`Party`]: crate::mpc::Party

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroize;

use crate::error::MpcError;
use crate::field::{Field, M61};
use crate::mpc::party::SharedVec;
use crate::mpc::wire::Tag;
use crate::poly::lagrange_coefficients;
use crate::shamir::{ShareVec, SharingParams};

fn invalid(s: impl Into<String>) -> MpcError {
    MpcError::InvalidArgument(s.into())
}

/// The messages of one communication round at one party: a vector to each party that gets one,
/// and, from each party that sends one, the length expected (`Some(None)`: any length up to the
/// driver's bound). Outgoing shares are zeroized when the round is dropped.
pub struct Round {
    pub(crate) tag: Tag,
    pub(crate) seq: u32,
    /// `outgoing[j]`: the vector for party `j`.
    pub outgoing: Vec<Option<Vec<M61>>>,
    /// `expect[j]`: whether (and at what length) party `j` sends to this party.
    pub expect: Vec<Option<Option<usize>>>,
}

impl std::fmt::Debug for Round {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Round")
            .field("tag", &self.tag)
            .field("seq", &self.seq)
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

impl Drop for Round {
    fn drop(&mut self) {
        for v in self.outgoing.iter_mut().flatten() {
            v.zeroize();
        }
    }
}

/// What the peers sent in a round: `got[j]` from party `j` (`None` where nothing was expected).
pub type Received = Vec<Option<Vec<M61>>>;

/// An input sharing waiting for its round.
#[derive(Debug)]
pub struct InputStep {
    owner: usize,
    mine: Option<SharedVec>,
}

/// A degree reduction waiting for its round: this party's own piece, if it reshares.
#[derive(Debug)]
pub struct ReduceStep {
    own_piece: Option<SharedVec>,
    len: usize,
}

/// An opening waiting for its round: this party's shares and whether it learns the value.
#[derive(Debug)]
pub struct OpenStep {
    mine: SharedVec,
    learns: bool,
}

/// One party's state of the BGW online phase: index, sharing degree, randomness, the degree
/// reduction's Lagrange coefficients and the operation counter that tags every round.
pub struct Bgw {
    index: usize,
    n: usize,
    t: usize,
    rng: ChaCha20Rng,
    reduce: Vec<M61>,
    seq: u32,
}

impl std::fmt::Debug for Bgw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bgw")
            .field("index", &self.index)
            .field("parties", &self.n)
            .field("degree", &self.t)
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl Bgw {
    /// Party `index` of `n` at degree `t` (`n ≥ 2t + 1`), drawing its randomness from `seed`
    /// (`None`: from the OS).
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if `index ≥ n` or `n < 2t + 1`.
    pub fn new(index: usize, n: usize, t: usize, seed: Option<[u8; 32]>) -> Result<Self, MpcError> {
        if index >= n || n < 2 * t + 1 || n > crate::shamir::MAX_SHARES {
            return Err(invalid(format!(
                "party {index} of {n} at degree {t} (need index < n and n ≥ 2t + 1)"
            )));
        }
        let xs: Vec<M61> = (1..=n as u64).map(M61::new).collect();
        let reduce = lagrange_coefficients(&xs[..2 * t + 1], M61::ZERO)
            .ok_or_else(|| invalid("evaluation points"))?;
        let rng = match seed {
            Some(s) => ChaCha20Rng::from_seed(s),
            None => ChaCha20Rng::from_os_rng(),
        };
        Ok(Bgw {
            index,
            n,
            t,
            rng,
            reduce,
            seq: 0,
        })
    }

    /// This party's index.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Number of parties.
    pub fn parties(&self) -> usize {
        self.n
    }

    /// Sharing degree `t`.
    pub fn threshold(&self) -> usize {
        self.t
    }

    fn round(&mut self, tag: Tag) -> Round {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        Round {
            tag,
            seq,
            outgoing: (0..self.n).map(|_| None).collect(),
            expect: vec![None; self.n],
        }
    }

    /// Degree-`t` sharings of `values` for all parties (index `j` for party `j`).
    fn deal(&mut self, values: &[M61]) -> Result<Vec<ShareVec<M61>>, MpcError> {
        let params = SharingParams::new(self.t, self.n).map_err(|e| invalid(e.to_string()))?;
        crate::shamir::deal_vec(values, params, &mut self.rng).map_err(|e| invalid(e.to_string()))
    }

    /// Starts sharing a private vector: `owner` passes `Some(values)`, every other party `None`.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] for an owner out of range, or values given by a non-owner
    /// or missing at the owner.
    pub fn start_input(
        &mut self,
        owner: usize,
        values: Option<&[M61]>,
    ) -> Result<(Round, InputStep), MpcError> {
        if owner >= self.n {
            return Err(invalid(format!("owner {owner} out of range")));
        }
        if (owner == self.index) != values.is_some() {
            return Err(invalid("exactly the owner supplies the input"));
        }
        let mut round = self.round(Tag::Input);
        let mine = match values {
            Some(values) => {
                let shares = self.deal(values)?;
                for (j, s) in shares.iter().enumerate() {
                    if j != self.index {
                        round.outgoing[j] = Some(s.values().to_vec());
                    }
                }
                Some(SharedVec::from_shares(shares[self.index].values().to_vec()))
            }
            None => {
                round.expect[owner] = Some(None);
                None
            }
        };
        Ok((round, InputStep { owner, mine }))
    }

    /// This party's shares of the input.
    pub fn finish_input(&self, step: InputStep, mut got: Received) -> SharedVec {
        match step.mine {
            Some(mine) => mine,
            None => SharedVec::from_shares(
                got.get_mut(step.owner)
                    .and_then(Option::take)
                    .unwrap_or_default(),
            ),
        }
    }

    /// Starts the degree reduction of local degree-`2t` shares `h` (products, or sums of
    /// products): the first `2t + 1` parties reshare theirs.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] if the sharing cannot be dealt.
    pub fn start_reduce(&mut self, h: &[M61]) -> Result<(Round, ReduceStep), MpcError> {
        let resharers = 2 * self.t + 1;
        let me = self.index;
        let mut round = self.round(Tag::Reshare);
        let mut own_piece = None;
        if me < resharers {
            let pieces = self.deal(h)?;
            for (j, p) in pieces.iter().enumerate() {
                if j == me {
                    own_piece = Some(SharedVec::from_shares(p.values().to_vec()));
                } else {
                    round.outgoing[j] = Some(p.values().to_vec());
                }
            }
        }
        for i in 0..resharers.min(self.n) {
            if i != me {
                round.expect[i] = Some(Some(h.len()));
            }
        }
        Ok((
            round,
            ReduceStep {
                own_piece,
                len: h.len(),
            },
        ))
    }

    /// The degree-`t` shares: `Σ_i λ_i · [h_i]` over the resharing parties.
    ///
    /// # Errors
    ///
    /// [`MpcError::Malformed`] if a resharing party's piece is missing or of the wrong length.
    pub fn finish_reduce(
        &self,
        step: ReduceStep,
        mut got: Received,
    ) -> Result<SharedVec, MpcError> {
        let mut acc: Vec<M61> = vec![M61::ZERO; step.len];
        for i in 0..2 * self.t + 1 {
            let lambda = self.reduce[i];
            let piece: &[M61] = if i == self.index {
                step.own_piece.as_ref().map_or(&[][..], SharedVec::shares)
            } else {
                got.get(i).and_then(Option::as_deref).unwrap_or(&[])
            };
            if piece.len() != step.len {
                return Err(MpcError::Malformed {
                    peer: i,
                    reason: "reshare of the wrong length".into(),
                });
            }
            for (a, v) in acc.iter_mut().zip(piece) {
                *a += lambda * *v;
            }
        }
        for g in got.iter_mut().flatten() {
            g.zeroize();
        }
        Ok(SharedVec::from_shares(acc))
    }

    /// Starts opening `a` to every party (`target = None`) or to party `target` only.
    ///
    /// # Errors
    ///
    /// [`MpcError::InvalidArgument`] for a target out of range.
    pub fn start_open(
        &mut self,
        a: &SharedVec,
        target: Option<usize>,
    ) -> Result<(Round, OpenStep), MpcError> {
        if let Some(t) = target.filter(|&t| t >= self.n) {
            return Err(invalid(format!("target {t} out of range")));
        }
        let me = self.index;
        let learns = target.is_none_or(|t| t == me);
        let mut round = self.round(Tag::Open);
        for j in (0..self.n).filter(|&j| j != me) {
            if target.is_none_or(|t| t == j) {
                round.outgoing[j] = Some(a.shares().to_vec());
            }
            if learns {
                round.expect[j] = Some(Some(a.len()));
            }
        }
        Ok((
            round,
            OpenStep {
                mine: a.clone(),
                learns,
            },
        ))
    }

    /// The opened values, at a party that learns them (`None` elsewhere).
    ///
    /// # Errors
    ///
    /// [`MpcError::Inconsistent`] if the shares do not lie on one degree-`t` polynomial.
    pub fn finish_open(
        &self,
        step: OpenStep,
        mut got: Received,
    ) -> Result<Option<Vec<M61>>, MpcError> {
        if !step.learns {
            return Ok(None);
        }
        let shares: Vec<ShareVec<M61>> = (0..self.n)
            .map(|j| {
                let v = if j == self.index {
                    step.mine.shares().to_vec()
                } else {
                    got.get_mut(j).and_then(Option::take).unwrap_or_default()
                };
                ShareVec::new(j as u32 + 1, v)
            })
            .collect();
        crate::shamir::reconstruct_vec(self.t, &shares)
            .map(|v| Some(v.to_vec()))
            .map_err(MpcError::Inconsistent)
    }

    /// The last round of a session: an empty message to and from every other party.
    pub fn bye(&mut self) -> Round {
        let mut round = self.round(Tag::Bye);
        for j in (0..self.n).filter(|&j| j != self.index) {
            round.outgoing[j] = Some(Vec::new());
            round.expect[j] = Some(Some(0));
        }
        round
    }
}

#[cfg(test)]
mod tests {
    //! `n` cores driven in lockstep, the messages of each round handed across in memory: the
    //! protocol's arithmetic checked against plaintext on random inputs with no runtime and no
    //! channel.

    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    use super::*;

    fn cores(n: usize, t: usize) -> Vec<Bgw> {
        (0..n)
            .map(|i| Bgw::new(i, n, t, Some([i as u8 + 1; 32])).unwrap())
            .collect()
    }

    /// Delivers one round of every party: `got[j][i]` is what `i` sent `j`, checked against
    /// what `j` expects (tag, sequence number and length), as the wire does.
    fn deliver(rounds: &[Round]) -> Vec<Received> {
        let n = rounds.len();
        (0..n)
            .map(|j| {
                (0..n)
                    .map(|i| {
                        let expected = rounds[j].expect[i]?;
                        assert_eq!(rounds[i].tag, rounds[j].tag);
                        assert_eq!(rounds[i].seq, rounds[j].seq);
                        let sent = rounds[i].outgoing[j].clone().expect("a message");
                        if let Some(len) = expected {
                            assert_eq!(sent.len(), len);
                        }
                        Some(sent)
                    })
                    .collect()
            })
            .collect()
    }

    fn input_all(ps: &mut [Bgw], owner: usize, values: &[M61]) -> Vec<SharedVec> {
        let (rounds, steps): (Vec<_>, Vec<_>) = ps
            .iter_mut()
            .map(|p| {
                let mine = (p.index() == owner).then_some(values);
                p.start_input(owner, mine).unwrap()
            })
            .unzip();
        let got = deliver(&rounds);
        ps.iter()
            .zip(steps)
            .zip(got)
            .map(|((p, s), g)| p.finish_input(s, g))
            .collect()
    }

    fn reduce_all(ps: &mut [Bgw], h: &[Vec<M61>]) -> Vec<SharedVec> {
        let (rounds, steps): (Vec<_>, Vec<_>) = ps
            .iter_mut()
            .zip(h)
            .map(|(p, h)| p.start_reduce(h).unwrap())
            .unzip();
        let got = deliver(&rounds);
        ps.iter()
            .zip(steps)
            .zip(got)
            .map(|((p, s), g)| p.finish_reduce(s, g).unwrap())
            .collect()
    }

    fn open_all(ps: &mut [Bgw], a: &[SharedVec], target: Option<usize>) -> Vec<Option<Vec<M61>>> {
        let (rounds, steps): (Vec<_>, Vec<_>) = ps
            .iter_mut()
            .zip(a)
            .map(|(p, a)| p.start_open(a, target).unwrap())
            .unzip();
        let got = deliver(&rounds);
        ps.iter()
            .zip(steps)
            .zip(got)
            .map(|((p, s), g)| p.finish_open(s, g).unwrap())
            .collect()
    }

    fn random(rng: &mut ChaCha20Rng, len: usize) -> Vec<M61> {
        (0..len).map(|_| M61::new(rng.random())).collect()
    }

    #[test]
    fn products_inner_products_and_openings_match_plaintext() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for (n, t) in [(3, 1), (4, 1), (5, 2), (7, 3)] {
            let mut ps = cores(n, t);
            let len = rng.random_range(1..40);
            let (x, y) = (random(&mut rng, len), random(&mut rng, len));
            let xs = input_all(&mut ps, 0, &x);
            let ys = input_all(&mut ps, n - 1, &y);
            // Element-wise product: local products, then one reduction.
            let h: Vec<Vec<M61>> = xs
                .iter()
                .zip(&ys)
                .map(|(a, b)| {
                    a.shares()
                        .iter()
                        .zip(b.shares())
                        .map(|(u, v)| *u * *v)
                        .collect()
                })
                .collect();
            let prod = reduce_all(&mut ps, &h);
            let want: Vec<M61> = x.iter().zip(&y).map(|(a, b)| *a * *b).collect();
            for opened in open_all(&mut ps, &prod, None) {
                assert_eq!(opened.unwrap(), want, "n = {n}, t = {t}");
            }
            // An inner product reduced once.
            let h: Vec<Vec<M61>> = xs
                .iter()
                .zip(&ys)
                .map(|(a, b)| {
                    vec![a
                        .shares()
                        .iter()
                        .zip(b.shares())
                        .fold(M61::ZERO, |s, (u, v)| s + *u * *v)]
                })
                .collect();
            let dot = reduce_all(&mut ps, &h);
            let want = x.iter().zip(&y).fold(M61::ZERO, |s, (a, b)| s + *a * *b);
            // Opened to one party only.
            let target = n / 2;
            for (i, opened) in open_all(&mut ps, &dot, Some(target))
                .into_iter()
                .enumerate()
            {
                assert_eq!(opened, (i == target).then(|| vec![want]));
            }
            let byes: Vec<Round> = ps.iter_mut().map(Bgw::bye).collect();
            assert!(deliver(&byes).iter().flatten().flatten().all(Vec::is_empty));
        }
    }

    #[test]
    fn a_deviating_share_is_detected_at_opening() {
        let (n, t) = (5, 1);
        let mut ps = cores(n, t);
        let x = vec![M61::new(42), M61::new(7)];
        let xs = input_all(&mut ps, 2, &x);
        let (mut rounds, steps): (Vec<_>, Vec<_>) = ps
            .iter_mut()
            .zip(&xs)
            .map(|(p, a)| p.start_open(a, None).unwrap())
            .unzip();
        // Party 3 sends everyone a share off by one.
        for v in rounds[3].outgoing.iter_mut().flatten() {
            v[0] += M61::ONE;
        }
        let got = deliver(&rounds);
        let (p, s, g) = (&ps[0], steps.into_iter().next().unwrap(), got[0].clone());
        let err = p.finish_open(s, g).unwrap_err();
        assert!(matches!(err, MpcError::Inconsistent(_)), "{err:?}");
    }

    #[test]
    fn a_missing_or_short_reshare_is_malformed() {
        let mut ps = cores(3, 1);
        let h = vec![vec![M61::new(3)]; 3];
        let (rounds, mut steps): (Vec<_>, Vec<_>) = ps
            .iter_mut()
            .zip(&h)
            .map(|(p, h)| p.start_reduce(h).unwrap())
            .unzip();
        let mut got = deliver(&rounds);
        got[0][1] = Some(Vec::new());
        let err = ps[0]
            .finish_reduce(steps.remove(0), got.remove(0))
            .unwrap_err();
        assert!(
            matches!(err, MpcError::Malformed { peer: 1, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(Bgw::new(3, 3, 1, None).is_err());
        assert!(Bgw::new(0, 4, 2, None).is_err());
        let mut p = Bgw::new(0, 3, 1, None).unwrap();
        assert!(p.start_input(3, None).is_err());
        assert!(p.start_input(1, Some(&[M61::ONE])).is_err());
        assert!(p.start_input(0, None).is_err());
        let a = SharedVec::from_shares(vec![M61::ONE]);
        assert!(p.start_open(&a, Some(3)).is_err());
    }
}
