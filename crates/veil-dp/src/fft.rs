//! Real-input FFT convolution for the privacy-loss-distribution accountant (Koskela, Jalko
//! and Honkela 2020, "Computing Tight Differential Privacy Guarantees Using FFT"): the
//! linear convolution of two probability mass functions, and the `n`-fold self-convolution
//! by one transform, a pointwise `n`-th power and one inverse transform.
//!
//! The transforms are `realfft`'s real-to-complex FFTs (over `rustfft`), which hold only
//! the `n/2 + 1` non-redundant outputs of a real signal.

use realfft::num_complex::Complex64;
use realfft::RealFftPlanner;

/// Sequences shorter than this are convolved directly.
const DIRECT_LIMIT: usize = 32;

/// The forward transform of `values` zero-padded to `n` (even), and the planner that made it.
fn forward(values: &[f64], n: usize, planner: &mut RealFftPlanner<f64>) -> Vec<Complex64> {
    debug_assert!(n >= values.len() && n.is_multiple_of(2));
    let fft = planner.plan_fft_forward(n);
    let mut input = vec![0.0; n];
    input[..values.len()].copy_from_slice(values);
    let mut spectrum = fft.make_output_vec();
    // The lengths come from the plan itself, so the transform cannot fail.
    fft.process(&mut input, &mut spectrum)
        .expect("buffer lengths come from the plan");
    spectrum
}

/// The inverse transform of `spectrum` (from a length-`n` forward transform), including the
/// `1/n` factor.
fn inverse(mut spectrum: Vec<Complex64>, n: usize, planner: &mut RealFftPlanner<f64>) -> Vec<f64> {
    let fft = planner.plan_fft_inverse(n);
    // A real signal's spectrum is real at 0 and n/2; rounding may leave a residue there,
    // which the inverse transform refuses.
    spectrum[0].im = 0.0;
    if let Some(last) = spectrum.last_mut() {
        last.im = 0.0;
    }
    let mut out = fft.make_output_vec();
    fft.process(&mut spectrum, &mut out)
        .expect("buffer lengths come from the plan");
    let scale = 1.0 / n as f64;
    out.iter_mut().for_each(|v| *v *= scale);
    out
}

/// The linear convolution of two real sequences (length `a.len() + b.len() - 1`), directly
/// when one is short, by FFT otherwise.
pub(crate) fn convolve(a: &[f64], b: &[f64]) -> Vec<f64> {
    if a.is_empty() || b.is_empty() {
        return Vec::new();
    }
    let out_len = a.len() + b.len() - 1;
    if a.len().min(b.len()) <= DIRECT_LIMIT {
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
    let mut planner = RealFftPlanner::new();
    let mut fa = forward(a, n, &mut planner);
    let fb = forward(b, n, &mut planner);
    fa.iter_mut().zip(&fb).for_each(|(x, y)| *x *= y);
    let mut out = inverse(fa, n, &mut planner);
    out.truncate(out_len);
    out
}

/// The circular `power`-fold self-convolution of `values` zero-padded to `n` (a power of
/// two, at least 2): entry `j` holds the linear result's entries `j (mod n)`.
///
/// The `power`-th power of each Fourier coefficient is taken by repeated squaring (at most
/// 64 complex products, relative error about `power * 2^-52`), or as `exp(power * ln z)`
/// for powers beyond `u32`.
pub(crate) fn self_convolve_circular(values: &[f64], n: usize, power: u64) -> Vec<f64> {
    let mut planner = RealFftPlanner::new();
    let mut spectrum = forward(values, n, &mut planner);
    match u32::try_from(power) {
        Ok(k) => spectrum.iter_mut().for_each(|z| *z = z.powu(k)),
        Err(_) => {
            let p = power as f64;
            for z in spectrum.iter_mut() {
                let r = z.norm();
                *z = if r == 0.0 {
                    Complex64::new(0.0, 0.0)
                } else {
                    Complex64::from_polar((p * r.ln()).exp(), p * z.arg())
                };
            }
        }
    }
    inverse(spectrum, n, &mut planner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct(a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; a.len() + b.len() - 1];
        for (i, x) in a.iter().enumerate() {
            for (j, y) in b.iter().enumerate() {
                out[i + j] += x * y;
            }
        }
        out
    }

    #[test]
    fn convolution_matches_direct() {
        let a: Vec<f64> = (0..100).map(|i| ((i * 7 % 13) as f64) / 13.0).collect();
        let b: Vec<f64> = (0..77).map(|i| ((i * 5 % 11) as f64) / 11.0).collect();
        let fast = convolve(&a, &b);
        let slow = direct(&a, &b);
        assert_eq!(fast.len(), slow.len());
        for (f, d) in fast.iter().zip(&slow) {
            assert!((f - d).abs() < 1e-10);
        }
        assert_eq!(convolve(&[2.0], &[1.0, 3.0]), vec![2.0, 6.0]);
        assert!(convolve(&[], &[1.0]).is_empty());
    }

    #[test]
    fn self_convolution_matches_repeated_direct() {
        let p: Vec<f64> = vec![0.1, 0.2, 0.3, 0.4];
        let mut expect = vec![1.0];
        for _ in 0..5 {
            expect = direct(&expect, &p);
        }
        // 16 entries hold the linear result's 16 entries exactly (no wrap-around).
        let got = self_convolve_circular(&p, 16, 5);
        for (g, e) in got.iter().zip(&expect) {
            assert!((g - e).abs() < 1e-12, "{g} {e}");
        }
        // With 8 entries, entry j collects j and j + 8.
        let wrapped = self_convolve_circular(&p, 8, 5);
        for j in 0..8 {
            let e = expect[j] + expect.get(j + 8).copied().unwrap_or(0.0);
            assert!((wrapped[j] - e).abs() < 1e-12);
        }
    }
}
