//! The statistics Veil reports: medians, percentiles and accuracies, computed here and only
//! here so that every report means the same thing by them.

/// The median of `xs` (the mean of the two middle values for an even count), or NaN when
/// `xs` is empty. NaNs sort last.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The `q` quantile of `xs` (`q` in `0.0..=1.0`) by the nearest-rank rule on the sorted
/// values: the value at index `floor(len * q)`, or the largest value when that index is past
/// the end. `None` when `xs` is empty.
pub fn percentile(xs: &[f64], q: f64) -> Option<f64> {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let k = (v.len() as f64 * q.clamp(0.0, 1.0)) as usize;
    v.get(k).or(v.last()).copied()
}

/// The 95th percentile of `xs` ([`percentile`] at 0.95), `None` when `xs` is empty.
pub fn p95(xs: &[f64]) -> Option<f64> {
    percentile(xs, 0.95)
}

/// `count / total` as a fraction, 0 when `total` is 0.
pub fn fraction(count: usize, total: usize) -> f64 {
    count as f64 / total.max(1) as f64
}

/// The fraction of `predictions` equal to the matching `labels` (pairs beyond the shorter
/// list are ignored; the denominator is the number of predictions).
pub fn accuracy<P, L>(predictions: &[P], labels: &[L]) -> f64
where
    P: Copy,
    L: Copy,
    usize: From<P> + From<L>,
{
    let hits = predictions
        .iter()
        .zip(labels)
        .filter(|(p, l)| usize::from(**p) == usize::from(**l))
        .count();
    fraction(hits, predictions.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert!(median(Vec::new()).is_nan());
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(p95(&[]), None);
        let xs: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(p95(&xs), Some(20.0));
        let xs: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(p95(&xs), Some(96.0));
        assert_eq!(percentile(&[5.0], 0.5), Some(5.0));
    }

    #[test]
    fn fractions_and_accuracy() {
        assert_eq!(fraction(1, 0), 1.0);
        assert_eq!(fraction(0, 0), 0.0);
        assert_eq!(fraction(3, 4), 0.75);
        assert_eq!(accuracy::<usize, u8>(&[1, 2, 3, 4], &[1, 2, 0, 4]), 0.75);
        assert_eq!(accuracy::<usize, usize>(&[], &[]), 0.0);
    }
}
