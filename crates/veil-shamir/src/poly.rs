//! Polynomials over a [`Field`]: evaluation (Horner), Lagrange interpolation, long division and
//! the linear-system solver used by Berlekamp-Welch decoding.
//!
//! Lagrange's formula: for distinct points `x_1..x_k`, the polynomial of degree `< k` through
//! `(x_j, y_j)` takes at `z` the value `Σ_j y_j λ_j(z)` with
//! `λ_j(z) = Π_{m≠j} (z - x_m) / (x_j - x_m)`. Shamir reconstruction (Shamir 1979) is the case
//! `z = 0`. The coefficients are computed with one field inversion in total (batch inversion).

use zeroize::Zeroize;

use crate::field::Field;

/// A polynomial `c_0 + c_1 x + … + c_d x^d`, coefficients lowest degree first. Zeroized on drop,
/// since a sharing polynomial reveals the secret and every share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Polynomial<F: Field> {
    coeffs: Vec<F>,
}

impl<F: Field> Zeroize for Polynomial<F> {
    /// Erases every coefficient and empties the polynomial.
    fn zeroize(&mut self) {
        self.coeffs.zeroize();
    }
}

impl<F: Field> Drop for Polynomial<F> {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl<F: Field> zeroize::ZeroizeOnDrop for Polynomial<F> {}

impl<F: Field> Polynomial<F> {
    /// The polynomial with these coefficients (lowest degree first).
    pub fn from_coefficients(coeffs: Vec<F>) -> Self {
        Polynomial { coeffs }
    }

    /// A random polynomial of degree at most `degree` with constant term `constant`.
    pub fn random<R: rand::RngCore + ?Sized>(constant: F, degree: usize, rng: &mut R) -> Self {
        let mut coeffs = Vec::with_capacity(degree + 1);
        coeffs.push(constant);
        coeffs.extend((0..degree).map(|_| F::random(rng)));
        Polynomial { coeffs }
    }

    /// The coefficients, lowest degree first.
    pub fn coefficients(&self) -> &[F] {
        &self.coeffs
    }

    /// The value at `x` (Horner's rule).
    pub fn evaluate(&self, x: F) -> F {
        evaluate(&self.coeffs, x)
    }

    /// The degree, with trailing zero coefficients ignored (`None` for the zero polynomial).
    /// Not constant time: use on public polynomials only.
    pub fn degree(&self) -> Option<usize> {
        self.coeffs.iter().rposition(|c| *c != F::ZERO)
    }
}

/// `Σ c_k x^k` by Horner's rule.
pub fn evaluate<F: Field>(coeffs: &[F], x: F) -> F {
    let mut acc = F::ZERO;
    for c in coeffs.iter().rev() {
        acc = acc * x + *c;
    }
    acc
}

/// Inverts every element of `values` with one field inversion (Montgomery's trick).
/// Returns `None` if any element is zero.
pub fn batch_inverse<F: Field>(values: &[F]) -> Option<Vec<F>> {
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = F::ONE;
    for v in values {
        prefix.push(acc);
        acc *= *v;
    }
    let mut inv = acc.inverse()?;
    let mut out = vec![F::ZERO; values.len()];
    for i in (0..values.len()).rev() {
        out[i] = prefix[i] * inv;
        inv *= values[i];
    }
    Some(out)
}

/// Lagrange coefficients `λ_j(z)` for the distinct points `xs`, so that the interpolating
/// polynomial of degree `< xs.len()` takes the value `Σ_j y_j λ_j(z)` at `z`.
///
/// Returns `None` if two points coincide.
pub fn lagrange_coefficients<F: Field>(xs: &[F], z: F) -> Option<Vec<F>> {
    let k = xs.len();
    // If z is one of the points, the coefficients are a unit vector.
    if let Some(pos) = xs.iter().position(|x| *x == z) {
        let mut out = vec![F::ZERO; k];
        out[pos] = F::ONE;
        // Still require distinct points.
        for a in 0..k {
            for b in a + 1..k {
                if xs[a] == xs[b] {
                    return None;
                }
            }
        }
        return Some(out);
    }
    let mut denoms = Vec::with_capacity(k);
    for j in 0..k {
        let mut d = F::ONE;
        for m in 0..k {
            if m != j {
                d *= xs[j] - xs[m];
            }
        }
        denoms.push(d);
    }
    let inv = batch_inverse(&denoms)?;
    // numerator_j = Π_{m≠j}(z - x_m) = full / (z - x_j)
    let diffs: Vec<F> = xs.iter().map(|x| z - *x).collect();
    let mut full = F::ONE;
    for d in &diffs {
        full *= *d;
    }
    let inv_diffs = batch_inverse(&diffs)?;
    Some(
        (0..k)
            .map(|j| full * inv_diffs[j] * inv[j])
            .collect::<Vec<F>>(),
    )
}

/// The coefficients of the polynomial of degree `< points.len()` through `points`, or `None`
/// if two x-coordinates coincide. Quadratic time.
pub fn interpolate<F: Field>(points: &[(F, F)]) -> Option<Vec<F>> {
    let k = points.len();
    let mut result = vec![F::ZERO; k];
    for j in 0..k {
        // basis_j(x) = Π_{m≠j} (x - x_m) / (x_j - x_m)
        let mut basis = vec![F::ONE];
        let mut denom = F::ONE;
        for m in 0..k {
            if m == j {
                continue;
            }
            let xm = points[m].0;
            let mut next = vec![F::ZERO; basis.len() + 1];
            for (d, c) in basis.iter().enumerate() {
                next[d + 1] += *c;
                next[d] -= *c * xm;
            }
            basis = next;
            denom *= points[j].0 - xm;
        }
        let scale = points[j].1 * denom.inverse()?;
        for (r, b) in result.iter_mut().zip(&basis) {
            *r += *b * scale;
        }
    }
    Some(result)
}

/// Long division `num = q·den + r`; returns `(q, r)` or `None` if `den` is zero.
/// `den`'s leading coefficient is its last non-zero entry.
pub fn divide<F: Field>(num: &[F], den: &[F]) -> Option<(Vec<F>, Vec<F>)> {
    let dd = den.iter().rposition(|c| *c != F::ZERO)?;
    let lead_inv = den[dd].inverse()?;
    let mut rem = num.to_vec();
    if rem.len() <= dd {
        return Some((vec![F::ZERO], rem));
    }
    let mut q = vec![F::ZERO; rem.len() - dd];
    for i in (dd..rem.len()).rev() {
        let coef = rem[i] * lead_inv;
        q[i - dd] = coef;
        if coef != F::ZERO {
            for j in 0..=dd {
                rem[i - dd + j] -= coef * den[j];
            }
        }
    }
    rem.truncate(dd);
    Some((q, rem))
}

/// Solves `A·v = b` for an `rows × cols` matrix given row by row (each row `cols` entries
/// followed by the right-hand side). Free variables are set to zero. Returns `None` if the
/// system is inconsistent.
pub fn solve_linear<F: Field>(mut rows: Vec<Vec<F>>, cols: usize) -> Option<Vec<F>> {
    let n = rows.len();
    let mut pivot_cols = Vec::new();
    let mut r = 0;
    for c in 0..cols {
        if r == n {
            break;
        }
        let Some(p) = (r..n).find(|&i| rows[i][c] != F::ZERO) else {
            continue;
        };
        rows.swap(r, p);
        let inv = rows[r][c].inverse()?;
        for v in rows[r][c..].iter_mut() {
            *v *= inv;
        }
        let pivot_row = rows[r].clone();
        for (i, row) in rows.iter_mut().enumerate() {
            if i != r && row[c] != F::ZERO {
                let f = row[c];
                for (v, pv) in row[c..].iter_mut().zip(&pivot_row[c..]) {
                    *v -= f * *pv;
                }
            }
        }
        pivot_cols.push(c);
        r += 1;
    }
    // Any remaining row must read 0 = 0.
    for row in &rows[r..] {
        if row[cols] != F::ZERO {
            return None;
        }
    }
    let mut sol = vec![F::ZERO; cols];
    for (i, &c) in pivot_cols.iter().enumerate() {
        sol[c] = rows[i][cols];
    }
    Some(sol)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::M61;

    fn m(v: u64) -> M61 {
        M61::new(v)
    }

    #[test]
    fn interpolation_recovers_polynomial() {
        let p = [m(5), m(7), m(11)];
        let pts: Vec<(M61, M61)> = (1..=3u64).map(|x| (m(x), evaluate(&p, m(x)))).collect();
        assert_eq!(interpolate(&pts).unwrap(), p.to_vec());
        let xs: Vec<M61> = pts.iter().map(|p| p.0).collect();
        let l = lagrange_coefficients(&xs, M61::ZERO).unwrap();
        let s = pts.iter().zip(&l).fold(M61::ZERO, |a, (p, c)| a + p.1 * *c);
        assert_eq!(s, m(5));
        let l = lagrange_coefficients(&xs, m(2)).unwrap();
        assert_eq!(l, vec![M61::ZERO, M61::ONE, M61::ZERO]);
        assert!(lagrange_coefficients(&[m(1), m(1)], M61::ZERO).is_none());
    }

    #[test]
    fn division_and_solver() {
        // (x+1)(x+2) = x^2 + 3x + 2
        let (q, r) = divide(&[m(2), m(3), m(1)], &[m(1), m(1)]).unwrap();
        assert_eq!(q, vec![m(2), m(1)]);
        assert!(r.iter().all(|c| *c == M61::ZERO));
        // x + y = 3, x - y = 1
        let sol = solve_linear(vec![vec![m(1), m(1), m(3)], vec![m(1), -m(1), m(1)]], 2).unwrap();
        assert_eq!(sol, vec![m(2), m(1)]);
        assert!(solve_linear(vec![vec![m(1), m(1)], vec![m(1), m(2)]], 1).is_none());
    }
}
