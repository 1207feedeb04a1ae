//! A small iterative radix-2 complex FFT (Cooley and Tukey 1965, "An Algorithm for the
//! Machine Calculation of Complex Fourier Series"; decimation in time with bit-reversed input
//! order, as in Press et al., "Numerical Recipes", 3rd ed., Section 12.2).
//!
//! Used by the privacy-loss-distribution accountant to convolve probability mass functions
//! (Koskela, Jalko and Honkela 2020, "Computing Tight Differential Privacy Guarantees Using
//! FFT"). Twiddle factors are computed directly with `sin`/`cos` for every index (no
//! recurrence), so the round-off stays near `1e-16 * log2(n)`.

/// A complex vector in split (real, imaginary) form whose length is a power of two.
#[derive(Debug, Clone)]
pub(crate) struct ComplexVec {
    pub re: Vec<f64>,
    pub im: Vec<f64>,
}

impl ComplexVec {
    /// The real vector `values` zero-padded to length `n` (a power of two, `>= values.len()`).
    pub fn from_real_padded(values: &[f64], n: usize) -> Self {
        debug_assert!(n.is_power_of_two() && n >= values.len());
        let mut re = vec![0.0; n];
        re[..values.len()].copy_from_slice(values);
        ComplexVec {
            re,
            im: vec![0.0; n],
        }
    }

    /// Forward transform in place: `X_k = sum_j x_j e^{-2 pi i jk/n}`.
    pub fn fft(&mut self) {
        transform(&mut self.re, &mut self.im, false);
    }

    /// Inverse transform in place, including the `1/n` factor.
    pub fn ifft(&mut self) {
        transform(&mut self.re, &mut self.im, true);
        let scale = 1.0 / self.re.len() as f64;
        for (r, i) in self.re.iter_mut().zip(self.im.iter_mut()) {
            *r *= scale;
            *i *= scale;
        }
    }
}

fn transform(re: &mut [f64], im: &mut [f64], inverse: bool) {
    let n = re.len();
    if n <= 1 {
        return;
    }
    debug_assert!(n.is_power_of_two() && im.len() == n);
    // Bit-reversal permutation.
    let bits = n.trailing_zeros();
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if j > i {
            re.swap(i, j);
            im.swap(i, j);
        }
    }
    // Twiddles w_k = e^{-+2 pi i k / n}, k < n/2.
    let half = n / 2;
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut wr = Vec::with_capacity(half);
    let mut wi = Vec::with_capacity(half);
    for k in 0..half {
        let angle = 2.0 * std::f64::consts::PI * k as f64 / n as f64;
        wr.push(angle.cos());
        wi.push(sign * angle.sin());
    }
    let mut len = 2;
    while len <= n {
        let half_len = len / 2;
        let stride = n / len;
        for start in (0..n).step_by(len) {
            for k in 0..half_len {
                let (c, s) = (wr[k * stride], wi[k * stride]);
                let a = start + k;
                let b = a + half_len;
                let tr = re[b] * c - im[b] * s;
                let ti = re[b] * s + im[b] * c;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
        len *= 2;
    }
}

/// The linear convolution of two real sequences (length `a.len() + b.len() - 1`), directly
/// when one is short, by FFT otherwise.
pub(crate) fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let out_len = a.len() + b.len() - 1;
    if a.len().min(b.len()) <= 32 {
        let mut out = vec![0.0; out_len];
        for (i, &x) in a.iter().enumerate() {
            if x == 0.0 {
                continue;
            }
            for (j, &y) in b.iter().enumerate() {
                out[i + j] += x * y;
            }
        }
        return out;
    }
    let n = out_len.next_power_of_two();
    // Pack a in the real part and b in the imaginary part: one forward FFT gives both.
    let mut z = ComplexVec::from_real_padded(a, n);
    z.im[..b.len()].copy_from_slice(b);
    z.fft();
    let mut prod = ComplexVec {
        re: vec![0.0; n],
        im: vec![0.0; n],
    };
    for k in 0..n {
        let nk = (n - k) % n;
        // A_k = (Z_k + conj(Z_{n-k}))/2, B_k = (Z_k - conj(Z_{n-k}))/(2i).
        let (ar, ai) = (0.5 * (z.re[k] + z.re[nk]), 0.5 * (z.im[k] - z.im[nk]));
        let (br, bi) = (0.5 * (z.im[k] + z.im[nk]), -0.5 * (z.re[k] - z.re[nk]));
        prod.re[k] = ar * br - ai * bi;
        prod.im[k] = ar * bi + ai * br;
    }
    prod.ifft();
    prod.re.truncate(out_len);
    prod.re
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_transform() {
        let x = [1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0];
        let mut v = ComplexVec::from_real_padded(&x, 8);
        v.fft();
        // X_0 = 10, X_4 = 1 - 2 + 3 - 4 = -2.
        assert!((v.re[0] - 10.0).abs() < 1e-12 && v.im[0].abs() < 1e-12);
        assert!((v.re[4] + 2.0).abs() < 1e-12 && v.im[4].abs() < 1e-12);
        v.ifft();
        for (a, b) in v.re.iter().zip(x) {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    fn convolution_matches_direct() {
        let a: Vec<f64> = (0..100).map(|i| ((i * 7 % 13) as f64) / 13.0).collect();
        let b: Vec<f64> = (0..77).map(|i| ((i * 5 % 11) as f64) / 11.0).collect();
        let fast = convolve(&a, &b);
        let mut direct = vec![0.0; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                direct[i + j] += x * y;
            }
        }
        for (f, d) in fast.iter().zip(&direct) {
            assert!((f - d).abs() < 1e-10);
        }
    }
}
