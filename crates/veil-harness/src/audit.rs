//! The membership-inference audit of a model trained by Veil on the bundled digits: the
//! attacks the defences are for, run against Veil's own models, so that what a model leaks
//! about its training data is a measured number beside the accountant's bound.
//!
//! Members are the training split the model was trained on, non-members the test split. Each
//! attack gives every example a score, higher meaning "member":
//!
//! - **loss** (Yeom, Giacomelli, Fredrikson and Jha, CSF 2018): minus the cross-entropy loss of
//!   the true label;
//! - **confidence** (Salem et al., NDSS 2019): the largest softmax probability;
//! - **label-only** (Choquette-Choo, Tramer, Carlini and Papernot, ICML 2021, section 4): the
//!   share of noisy copies of the input (each pixel moved by up to 2 of 16) that the model still
//!   labels right, which needs the label answers only;
//! - **LiRA** (Carlini et al., S&P 2022, section IV, the online attack): shadow models trained by
//!   Veil's trainer, with the target's recipe, each on a random half of the pool of all the
//!   examples, so that every example is in about half of them; per example, Gaussians fitted
//!   to the logit-scaled confidence `ln(p_y / (1 − p_y))` of the shadows that trained on it and
//!   of those that did not; the score is the log-likelihood ratio of the target's confidence.
//!
//! For each attack: the area under the ROC curve, the true-positive rate at 0.1% and 1%
//! false-positive rate, and the empirical epsilon lower bound of Jagielski, Ullman and Oprea
//! (NeurIPS 2020, section 3): at a threshold, with Clopper-Pearson bounds at 95% confidence on
//! both rates, `ε ≥ ln((TPR_low − δ) / FPR_high)`, or the same with the roles of the errors
//! swapped; the threshold and the direction are chosen on half of the examples and the bound
//! computed on the other half ([`epsilon_lower_bound`]). A differentially private model's
//! bound must not exceed its accountant's epsilon.
//!
//! [`extraction`] measures the other leak of a prediction API: how well a surrogate trained on
//! the answers to `N` queries agrees with the model, for class-only and for logit answers.

use anyhow::{ensure, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::Serialize;
use veil_nn::data::{Dataset, Sample};
use veil_nn::float::{input_features, FloatModel};
use veil_nn::train::{train, TrainConfig};

use crate::progress::Progress;

/// One attack's figures.
#[derive(Clone, Debug, Serialize)]
pub struct AttackResult {
    /// `loss`, `confidence`, `label-only` or `lira`.
    pub attack: String,
    /// Area under the ROC curve (0.5: no better than a coin).
    pub auc: f64,
    /// The largest true-positive rate at a false-positive rate of at most 0.1%.
    pub tpr_at_0_1_pct_fpr: f64,
    /// The same at 1%.
    pub tpr_at_1_pct_fpr: f64,
    /// The empirical epsilon lower bound at 95% confidence (0 when none is shown).
    pub epsilon_lower_bound: f64,
    /// The ROC curve: (false-positive rate, true-positive rate), from (0, 0) to (1, 1).
    #[serde(skip)]
    pub roc: Vec<(f64, f64)>,
}

/// The audit's report.
#[derive(Clone, Debug, Serialize)]
pub struct MembershipReport {
    /// Training examples (members).
    pub members: usize,
    /// Test examples (non-members).
    pub non_members: usize,
    /// Shadow models behind LiRA.
    pub shadows: usize,
    /// The delta of the lower bounds.
    pub delta: f64,
    /// The epsilon the model's accountant recorded, when it was trained with DP.
    pub accountant_epsilon: Option<f64>,
    /// Each attack's figures.
    pub attacks: Vec<AttackResult>,
}

/// What the audit needs of the model: its float network, the recipe that trained it (the
/// shadows' recipe), and the accountant's epsilon if any.
pub struct Target<'a> {
    /// The float network the attacks query.
    pub float: &'a FloatModel,
    /// The training recipe, for the shadows (without DP: the shadows need not be private).
    pub config: TrainConfig,
    /// The recorded epsilon and delta of a DP model.
    pub privacy: Option<(f64, f64)>,
}

/// The float network and training recipe of a digits MLP Veil trained (what both audits
/// need); `source` names the model in errors.
pub fn digits_mlp(
    model: &veil_nn::format::Model,
    source: &str,
) -> Result<(FloatModel, TrainConfig)> {
    let Some(float) = FloatModel::from_graph(&model.float) else {
        anyhow::bail!(
            "{source}: the audit trains models with Veil's trainer, which makes digits MLPs only"
        );
    };
    ensure!(
        float.layers.first().map(|l| l.inputs) == Some(veil_nn::data::IMAGE_PIXELS),
        "{source}: the audit covers the 8x8 digits models (64 inputs)"
    );
    let t = &model.training;
    let config = TrainConfig {
        hidden: t.hidden.clone(),
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        weight_decay: t.weight_decay,
        seed: t.seed,
    };
    Ok((float, config))
}

/// Softmax probabilities of the float network on a sample.
fn probabilities(model: &FloatModel, s: &Sample) -> Vec<f64> {
    let logits = model.forward(&input_features(&s.pixels));
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let z: f64 = exps.iter().sum();
    exps.iter().map(|e| e / z).collect()
}

/// `ln(p / (1 − p))`, kept finite.
fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    (p / (1.0 - p)).ln()
}

/// Runs the four attacks with `shadows` shadow models (at least 2); `seed` draws the shadows'
/// halves and the label-only noise.
pub fn membership(
    target: &Target<'_>,
    members: &Dataset,
    non_members: &Dataset,
    shadows: usize,
    seed: u64,
    progress: &mut dyn Progress,
) -> Result<MembershipReport> {
    ensure!(shadows >= 2, "LiRA needs at least 2 shadow models");
    ensure!(
        !members.samples.is_empty() && !non_members.samples.is_empty(),
        "the audit needs members and non-members"
    );
    let pool: Vec<&Sample> = members.samples.iter().chain(&non_members.samples).collect();
    let is_member: Vec<bool> = (0..pool.len()).map(|i| i < members.len()).collect();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);

    let probs: Vec<Vec<f64>> = pool
        .iter()
        .map(|s| probabilities(target.float, s))
        .collect();
    let label = |i: usize| usize::from(pool[i].label);
    let loss: Vec<f64> = (0..pool.len())
        .map(|i| probs[i][label(i)].max(1e-300).ln())
        .collect();
    let confidence: Vec<f64> = probs
        .iter()
        .map(|p| p.iter().cloned().fold(0.0, f64::max))
        .collect();
    let label_only: Vec<f64> = pool
        .iter()
        .map(|s| {
            let copies = 32;
            let hits = (0..copies)
                .filter(|_| {
                    let mut noisy = s.pixels;
                    for p in noisy.iter_mut() {
                        let d: i8 = rng.random_range(-2..=2);
                        *p = (i16::from(*p) + i16::from(d)).clamp(0, 16) as u8;
                    }
                    target.float.predict(&noisy) == usize::from(s.label)
                })
                .count();
            hits as f64 / copies as f64
        })
        .collect();

    // LiRA: shadows on random halves of the pool.
    let mut ins: Vec<Vec<f64>> = vec![Vec::new(); pool.len()];
    let mut outs: Vec<Vec<f64>> = vec![Vec::new(); pool.len()];
    for k in 0..shadows {
        progress.phase(
            &format!("shadow model {} of {shadows}", k + 1),
            Some(shadows as u64),
        );
        let inside: Vec<bool> = (0..pool.len()).map(|_| rng.random()).collect();
        let data = Dataset {
            samples: pool
                .iter()
                .zip(&inside)
                .filter(|(_, x)| **x)
                .map(|(s, _)| (*s).clone())
                .collect(),
        };
        let config = TrainConfig {
            seed: rng.random(),
            ..target.config.clone()
        };
        let shadow = train(&data, &config, |_| {});
        for (i, s) in pool.iter().enumerate() {
            let phi = logit(probabilities(&shadow, s)[usize::from(s.label)]);
            if inside[i] {
                ins[i].push(phi);
            } else {
                outs[i].push(phi);
            }
        }
    }
    // Per-example means; a variance pooled over all examples (the paper's fixed-variance
    // variant, steadier with few shadows).
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let pooled = |sets: &[Vec<f64>]| {
        let (mut ss, mut n) = (0.0, 0usize);
        for v in sets.iter().filter(|v| v.len() >= 2) {
            let m = mean(v);
            ss += v.iter().map(|x| (x - m).powi(2)).sum::<f64>();
            n += v.len() - 1;
        }
        (ss / n.max(1) as f64).max(1e-6)
    };
    let (var_in, var_out) = (pooled(&ins), pooled(&outs));
    let global_in = mean(&ins.concat());
    let global_out = mean(&outs.concat());
    let lira: Vec<f64> = (0..pool.len())
        .map(|i| {
            let phi = logit(probs[i][label(i)]);
            let mu_in = if ins[i].is_empty() {
                global_in
            } else {
                mean(&ins[i])
            };
            let mu_out = if outs[i].is_empty() {
                global_out
            } else {
                mean(&outs[i])
            };
            -(phi - mu_in).powi(2) / (2.0 * var_in) + (phi - mu_out).powi(2) / (2.0 * var_out)
                - 0.5 * (var_in / var_out).ln()
        })
        .collect();

    let delta = target.privacy.map_or(1e-5, |(_, d)| d);
    let attacks = [
        ("loss", loss),
        ("confidence", confidence),
        ("label-only", label_only),
        ("lira", lira),
    ]
    .into_iter()
    .map(|(name, scores)| evaluate(name, &scores, &is_member, delta))
    .collect();
    Ok(MembershipReport {
        members: members.len(),
        non_members: non_members.len(),
        shadows,
        delta,
        accountant_epsilon: target.privacy.map(|(e, _)| e),
        attacks,
    })
}

/// An attack's figures from its scores.
pub fn evaluate(name: &str, scores: &[f64], is_member: &[bool], delta: f64) -> AttackResult {
    let positives = is_member.iter().filter(|m| **m).count();
    let negatives = is_member.len() - positives;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    // Walk the thresholds from the highest score down; ties move together.
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut roc = vec![(0.0, 0.0)];
    let mut k = 0;
    while k < order.len() {
        let s = scores[order[k]];
        while k < order.len() && scores[order[k]] == s {
            if is_member[order[k]] {
                tp += 1;
            } else {
                fp += 1;
            }
            k += 1;
        }
        roc.push((fp as f64 / negatives as f64, tp as f64 / positives as f64));
    }
    let auc = roc
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum();
    let tpr_at = |limit: f64| {
        roc.iter()
            .filter(|(f, _)| *f <= limit)
            .map(|(_, t)| *t)
            .fold(0.0, f64::max)
    };
    let bound = epsilon_lower_bound(scores, is_member, delta);
    AttackResult {
        attack: name.to_string(),
        auc,
        tpr_at_0_1_pct_fpr: tpr_at(0.001),
        tpr_at_1_pct_fpr: tpr_at(0.01),
        epsilon_lower_bound: bound,
        roc,
    }
}

/// The empirical epsilon lower bound of an attack, valid at 95% confidence: the threshold and
/// the direction (`ε ≥ ln((TPR − δ) / FPR)`, or `ln((TNR − δ) / FNR)`) are chosen on the
/// even-indexed examples, and the bound is computed on the odd-indexed ones with
/// Clopper-Pearson bounds (each side at 2.5%), so that choosing the best of many thresholds
/// does not inflate it. Zero when no bound above zero is shown.
pub fn epsilon_lower_bound(scores: &[f64], is_member: &[bool], delta: f64) -> f64 {
    let half = |parity: usize| -> Vec<(f64, bool)> {
        scores
            .iter()
            .zip(is_member)
            .enumerate()
            .filter(|(i, _)| i % 2 == parity)
            .map(|(_, (s, m))| (*s, *m))
            .collect()
    };
    // (true positives, false positives, positives, negatives) at "score >= t".
    let rates = |set: &[(f64, bool)], t: f64| {
        let (mut tp, mut fp, mut p, mut n) = (0, 0, 0, 0);
        for &(s, m) in set {
            if m {
                p += 1;
                tp += usize::from(s >= t);
            } else {
                n += 1;
                fp += usize::from(s >= t);
            }
        }
        (tp, fp, p, n)
    };
    let bound = |(tp, fp, p, n): (usize, usize, usize, usize), upper_side: bool| -> f64 {
        if p == 0 || n == 0 {
            return 0.0;
        }
        let tpr_low = clopper_pearson(tp, p, 0.025).0;
        let fpr_high = clopper_pearson(fp, n, 0.025).1;
        let (num, den) = if upper_side {
            (tpr_low - delta, fpr_high)
        } else {
            (1.0 - fpr_high - delta, 1.0 - tpr_low)
        };
        if num > 0.0 && den > 0.0 {
            (num / den).ln().max(0.0)
        } else {
            0.0
        }
    };
    let (choose, measure) = (half(0), half(1));
    let mut thresholds: Vec<f64> = choose.iter().map(|(s, _)| *s).collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let mut best = (0.0, f64::INFINITY, true);
    for &t in &thresholds {
        let r = rates(&choose, t);
        for side in [true, false] {
            let b = bound(r, side);
            if b > best.0 {
                best = (b, t, side);
            }
        }
    }
    if best.0 == 0.0 {
        return 0.0;
    }
    bound(rates(&measure, best.1), best.2)
}

/// The Clopper-Pearson interval of a binomial proportion, `k` successes in `n`, each side at
/// level `alpha`: `(lower, upper)`, the quantiles of Beta distributions.
pub fn clopper_pearson(k: usize, n: usize, alpha: f64) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let lower = if k == 0.0 {
        0.0
    } else {
        beta_quantile(alpha, k, n - k + 1.0)
    };
    let upper = if k == n {
        1.0
    } else {
        beta_quantile(1.0 - alpha, k + 1.0, n - k)
    };
    (lower, upper)
}

/// The `p`-quantile of Beta(a, b), by bisection on the regularized incomplete beta function.
fn beta_quantile(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if incomplete_beta(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// The regularized incomplete beta function `I_x(a, b)`, by its continued fraction (Lentz's
/// method; Abramowitz and Stegun 26.5.8), on the side where it converges fast.
pub fn incomplete_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = veil_dp::special::ln_gamma(a + b)
        - veil_dp::special::ln_gamma(a)
        - veil_dp::special::ln_gamma(b)
        + a * x.ln()
        + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_fraction(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_fraction(1.0 - x, b, a) / b
    }
}

fn beta_fraction(x: f64, a: f64, b: f64) -> f64 {
    let tiny = 1e-300;
    let mut c = 1.0;
    let mut d = 1.0 - (a + b) * x / (a + 1.0);
    if d.abs() < tiny {
        d = tiny;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..500 {
        let m = f64::from(m);
        // The even and the odd term of step `m`.
        let even = m * (b - m) * x / ((a + 2.0 * m - 1.0) * (a + 2.0 * m));
        let odd = -(a + m) * (a + b + m) * x / ((a + 2.0 * m) * (a + 2.0 * m + 1.0));
        for coef in [even, odd] {
            d = 1.0 + coef * d;
            if d.abs() < tiny {
                d = tiny;
            }
            c = 1.0 + coef / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            h *= d * c;
        }
        if (d * c - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The ROC curves on log axes (false-positive rate from 10^-3 to 1, true-positive rate from
/// 10^-3 to 1), one polyline per attack, with the chance diagonal.
pub fn roc_svg(report: &MembershipReport) -> String {
    let (w, h, m) = (560.0, 440.0, 60.0);
    let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
    let pos = |v: f64| (v.max(1e-3).log10() + 3.0) / 3.0;
    let px = |f: f64| m + pos(f) * (w - 2.0 * m);
    let py = |t: f64| h - m - pos(t) * (h - 2.0 * m);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n"
    );
    for k in 0..=3 {
        let v = 10f64.powi(-k);
        out += &format!(
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#ddd\"/>\n\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{v}</text>\n\
             <line x1=\"{m}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/>\n\
             <text x=\"{}\" y=\"{y}\" text-anchor=\"end\">{v}</text>\n",
            m,
            h - m,
            h - m + 16.0,
            w - m,
            m - 6.0,
            x = px(v),
            y = py(v),
        );
    }
    out += &format!(
        "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\" stroke-dasharray=\"4\"/>\n",
        px(1e-3),
        py(1e-3),
        px(1.0),
        py(1.0)
    );
    out += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">false-positive rate</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">\
         true-positive rate</text>\n",
        w / 2.0,
        h - 16.0,
        h / 2.0,
        h / 2.0
    );
    for (k, a) in report.attacks.iter().enumerate() {
        let c = colours[k % colours.len()];
        let points: Vec<String> = a
            .roc
            .iter()
            .map(|(f, t)| format!("{:.1},{:.1}", px(*f), py(*t)))
            .collect();
        out += &format!(
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"1.5\" points=\"{}\"/>\n\
             <text x=\"{}\" y=\"{}\" fill=\"{c}\">{} (AUC {:.3})</text>\n",
            points.join(" "),
            m + 10.0,
            m + 16.0 * k as f64,
            a.attack,
            a.auc
        );
    }
    out + "</svg>\n"
}

/// What the served model answers in the extraction audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Answer {
    /// The class only (`allow_logits` false): the surrogate trains on the labels.
    Class,
    /// The logits: the surrogate distils the float network's softmax (Veil's integer logits
    /// are its rounding, up to a scale).
    Logits,
}

/// One point of the extraction audit.
#[derive(Clone, Debug, Serialize)]
pub struct ExtractionPoint {
    /// Queries answered.
    pub queries: usize,
    /// The share of the test split on which the surrogate's class equals the served model's.
    pub agreement: f64,
}

/// The extraction audit's report.
#[derive(Clone, Debug, Serialize)]
pub struct ExtractionReport {
    /// What the served model answered.
    pub answer: Answer,
    /// Test images the agreement is measured on.
    pub test_images: usize,
    /// One point per query budget.
    pub points: Vec<ExtractionPoint>,
}

/// Model extraction through the prediction API (Tramer et al., USENIX Security 2016,
/// section 5): for each budget of `queries`, an attacker who knows the architecture sends that
/// many images of its own (random pen strokes, [`veil_nn::train::synthetic_calibration`]'s,
/// which owe nothing to the training data), trains a surrogate with Veil's trainer and the
/// target's recipe on the answers, and the audit measures how often the surrogate's class equals the served model's
/// (`served`, the integer reference) on the test split.
pub fn extraction(
    target: &Target<'_>,
    served: &dyn Fn(&[u8; veil_nn::data::IMAGE_PIXELS]) -> usize,
    answer: Answer,
    queries: &[usize],
    test: &Dataset,
    seed: u64,
    progress: &mut dyn Progress,
) -> Result<ExtractionReport> {
    ensure!(!test.samples.is_empty(), "the audit needs test images");
    let (float, config) = (target.float, &target.config);
    let mut points = Vec::new();
    for &n in queries {
        ensure!(n > 0, "a query budget must be positive");
        progress.phase(&format!("surrogate from {n} {answer:?} answers"), None);
        let mut data = veil_nn::train::synthetic_calibration(float, n, seed);
        for s in &mut data.samples {
            s.label = served(&s.pixels) as u8;
        }
        let surrogate = match answer {
            Answer::Class => train(&data, config, |_| {}),
            Answer::Logits => {
                let soft: Vec<Vec<f32>> = data
                    .samples
                    .iter()
                    .map(|s| probabilities(float, s).iter().map(|p| *p as f32).collect())
                    .collect();
                veil_nn::train::train_distilled(&data, &soft, config, |_| {})
            }
        };
        let agree = test
            .samples
            .iter()
            .filter(|s| surrogate.predict(&s.pixels) == served(&s.pixels))
            .count();
        points.push(ExtractionPoint {
            queries: n,
            agreement: agree as f64 / test.len() as f64,
        });
    }
    Ok(ExtractionReport {
        answer,
        test_images: test.len(),
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_beta_and_clopper_pearson_match_known_values() {
        // I_x(1, 1) = x; I_0.5(a, a) = 1/2; I_x(2, 3) = 6x^2 - 8x^3 + 3x^4.
        assert!((incomplete_beta(0.3, 1.0, 1.0) - 0.3).abs() < 1e-12);
        assert!((incomplete_beta(0.5, 7.0, 7.0) - 0.5).abs() < 1e-12);
        let x: f64 = 0.4;
        let want = 6.0 * x.powi(2) - 8.0 * x.powi(3) + 3.0 * x.powi(4);
        assert!((incomplete_beta(x, 2.0, 3.0) - want).abs() < 1e-12);
        // Clopper-Pearson, 95% two-sided: 0 of 10 gives (0, 0.3085); 5 of 10 (0.1871, 0.8129).
        let (lo, hi) = clopper_pearson(0, 10, 0.025);
        assert_eq!(lo, 0.0);
        assert!((hi - 0.308_5).abs() < 1e-4, "{hi}");
        let (lo, hi) = clopper_pearson(5, 10, 0.025);
        assert!(
            (lo - 0.187_1).abs() < 1e-4 && (hi - 0.812_9).abs() < 1e-4,
            "{lo} {hi}"
        );
    }

    #[test]
    fn evaluate_scores_a_perfect_a_useless_and_a_reversed_attack() {
        let members: Vec<bool> = (0..400).map(|i| i < 200).collect();
        let perfect: Vec<f64> = (0..400).map(|i| if i < 200 { 1.0 } else { 0.0 }).collect();
        let r = evaluate("perfect", &perfect, &members, 1e-5);
        assert!((r.auc - 1.0).abs() < 1e-12 && r.tpr_at_0_1_pct_fpr == 1.0);
        // The measuring half: 100 right of 100 on each side, ε ≥ ln(0.964 / 0.036) ≈ 3.28.
        assert!((r.epsilon_lower_bound - 3.281).abs() < 0.01, "{r:?}");
        let flat = vec![0.5; 400];
        let r = evaluate("flat", &flat, &members, 1e-5);
        assert!((r.auc - 0.5).abs() < 1e-12 && r.epsilon_lower_bound == 0.0);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let noise: Vec<f64> = (0..400).map(|_| rng.random()).collect();
        let r = evaluate("noise", &noise, &members, 1e-5);
        assert!((r.auc - 0.5).abs() < 0.08, "{}", r.auc);
        assert!(r.epsilon_lower_bound < 0.5, "{}", r.epsilon_lower_bound);
    }
}
