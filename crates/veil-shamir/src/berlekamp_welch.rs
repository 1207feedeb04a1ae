//! Berlekamp-Welch decoding of Reed-Solomon codewords: recovering a degree-`t` polynomial from
//! `n` evaluations of which up to `e = ⌊(n - t - 1)/2⌋` are wrong, and naming the wrong ones.
//!
//! Welch and Berlekamp, "Error correction for algebraic block codes", US patent 4,633,470
//! (1986); the formulation here follows Gemmell and Sudan, "Highly resilient correctors for
//! polynomials", IPL 43(4), 1992. Find a monic error locator `E` of degree `e` and `Q` of
//! degree `≤ e + t` with `Q(x_i) = y_i E(x_i)` for every point (a linear system in `2e + t + 1`
//! unknowns and `n ≥ 2e + t + 1` equations). Then `Q = P·E` for the true polynomial `P`
//! whenever at most `e` points are wrong, because `Q - P·E` has degree `≤ e + t` and vanishes on
//! the `≥ n - e ≥ e + t + 1` correct points. Any solution of the system works, so free variables
//! are simply set to zero. A Shamir sharing (Shamir 1979) is such a codeword, which is how
//! robust reconstruction corrects and names tampered shares.

use crate::error::ShamirError;
use crate::field::Field;
use crate::poly::{divide, evaluate, solve_linear};

/// The outcome of decoding: the polynomial and the positions (into the input slice) of the
/// points that do not lie on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded<F: Field> {
    /// Coefficients of the decoded polynomial, lowest degree first (`degree + 1` entries).
    pub polynomial: Vec<F>,
    /// Positions of the erroneous points in the input, ascending.
    pub error_positions: Vec<usize>,
}

/// Largest number of errors decodable from `n` points of a degree-`degree` polynomial.
pub fn max_errors(n: usize, degree: usize) -> usize {
    n.saturating_sub(degree + 1) / 2
}

/// Decodes `points` (distinct x-coordinates) as evaluations of a polynomial of degree at most
/// `degree` with up to [`max_errors`] wrong values.
///
/// # Errors
///
/// [`ShamirError::NotEnoughShares`] with fewer than `degree + 1` points,
/// [`ShamirError::Uncorrectable`] if no polynomial of degree `degree` agrees with all but at
/// most [`max_errors`] of the points, [`ShamirError::InvalidParams`] if x-coordinates repeat.
pub fn decode<F: Field>(points: &[(F, F)], degree: usize) -> Result<Decoded<F>, ShamirError> {
    let n = points.len();
    if n < degree + 1 {
        return Err(ShamirError::NotEnoughShares {
            got: n,
            needed: degree + 1,
        });
    }
    for a in 0..n {
        for b in a + 1..n {
            if points[a].0 == points[b].0 {
                return Err(ShamirError::InvalidParams(
                    "repeated evaluation point".into(),
                ));
            }
        }
    }
    let e = max_errors(n, degree);
    // Fast path: all points on the interpolant of the first degree+1. The values are
    // secret: every point is checked, in constant time, and only the verdict branches.
    if let Some(poly) = crate::poly::interpolate(&points[..degree + 1]) {
        let mut all_on = subtle::Choice::from(1u8);
        for (x, y) in &points[degree + 1..] {
            all_on &= evaluate(&poly, *x).ct_eq(y);
        }
        if bool::from(all_on) {
            return Ok(Decoded {
                polynomial: poly,
                error_positions: Vec::new(),
            });
        }
    }
    let uncorrectable = ShamirError::Uncorrectable { max_errors: e };
    if e == 0 {
        return Err(uncorrectable);
    }
    // Unknowns: q_0..q_{e+t} (e+t+1 of them), then E_0..E_{e-1} (E monic of degree e).
    // Equation per point: Σ q_k x^k - y Σ_{k<e} E_k x^k = y x^e.
    let nq = e + degree + 1;
    let cols = nq + e;
    let rows: Vec<Vec<F>> = points
        .iter()
        .map(|(x, y)| {
            let mut row = Vec::with_capacity(cols + 1);
            let mut pw = F::ONE;
            for _ in 0..nq {
                row.push(pw);
                pw *= *x;
            }
            let mut pw = F::ONE;
            for _ in 0..e {
                row.push(-(*y * pw));
                pw *= *x;
            }
            row.push(*y * pw);
            row
        })
        .collect();
    let sol = solve_linear(rows, cols).ok_or_else(|| uncorrectable.clone())?;
    let q = &sol[..nq];
    let mut err_loc = sol[nq..].to_vec();
    err_loc.push(F::ONE);
    let (p, r) = divide(q, &err_loc).ok_or_else(|| uncorrectable.clone())?;
    if r.iter().any(|c| *c != F::ZERO) {
        return Err(uncorrectable);
    }
    let mut polynomial = p;
    if polynomial.iter().skip(degree + 1).any(|c| *c != F::ZERO) {
        return Err(uncorrectable);
    }
    polynomial.resize(degree + 1, F::ZERO);
    let error_positions: Vec<usize> = points
        .iter()
        .enumerate()
        .filter(|(_, (x, y))| evaluate(&polynomial, *x) != *y)
        .map(|(i, _)| i)
        .collect();
    if error_positions.len() > e {
        return Err(uncorrectable);
    }
    Ok(Decoded {
        polynomial,
        error_positions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M61;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn corrects_up_to_max_errors() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for (n, t) in [(7usize, 2usize), (10, 3), (5, 0), (4, 1)] {
            let e = max_errors(n, t);
            let poly: Vec<M61> = (0..=t).map(|_| M61::random(&mut rng)).collect();
            for errs in 0..=e {
                let mut pts: Vec<(M61, M61)> = (1..=n as u64)
                    .map(|x| (M61::new(x), evaluate(&poly, M61::new(x))))
                    .collect();
                let bad: Vec<usize> = (0..errs).map(|k| (k * 3 + 1) % n).collect();
                for &b in &bad {
                    pts[b].1 += M61::ONE;
                }
                let d = decode(&pts, t).unwrap();
                assert_eq!(d.polynomial, poly);
                let mut want = bad.clone();
                want.sort_unstable();
                want.dedup();
                assert_eq!(d.error_positions, want, "n={n} t={t} errs={errs}");
            }
        }
    }
}
