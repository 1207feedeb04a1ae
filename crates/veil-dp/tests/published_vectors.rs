//! Published test vectors reproduced by `veil-dp`.
//!
//! - TF Privacy `compute_dp_sgd_privacy_test.py` (orders 1.25 ... 4.5, 5..63, 128, 256, 512).
//! - `dp_accounting` `rdp_privacy_accountant_test.py` (`test_compute_rdp_sequence`).
//! - `dp_accounting` PLD: three Gaussians of sigma sqrt(3) = one Gaussian of sigma 1, whose
//!   delta at epsilon 1 is Balle and Wang's closed form (2018, Theorem 8).
//! - The analytic Gaussian mechanism (Balle and Wang 2018) at (1, 1e-5).
//! - Laplace RDP (Mironov 2017, Proposition 6) and zCDP (Bun and Steinke 2016).

use veil_dp::rdp::{
    epsilon_from_rdp, epsilon_from_rdp_classic, rdp_laplace, rdp_poisson_subsampled_gaussian,
};
use veil_dp::{
    analytic_gaussian_sigma, calibrate_noise, dp_sgd_epsilon, gaussian_delta, gaussian_zcdp,
    max_steps, pure_dp_to_zcdp, zcdp_to_epsilon, zcdp_to_epsilon_tight, AccountantKind, Delta,
    DpError, DpEvent, Epsilon, NoiseMultiplier, PldAccountant, PldDiscretization, PldOptions,
    RdpAccountant, Rho, SamplingRate,
};

fn eps(x: f64) -> Epsilon {
    Epsilon::new(x).unwrap()
}
fn delta(x: f64) -> Delta {
    Delta::new(x).unwrap()
}
fn noise(x: f64) -> NoiseMultiplier {
    NoiseMultiplier::new(x).unwrap()
}
fn rate(x: f64) -> SamplingRate {
    SamplingRate::new(x).unwrap()
}

/// The orders of TF Privacy's old `compute_dp_sgd_privacy`.
fn tf_privacy_orders() -> Vec<f64> {
    let mut o = vec![1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5, 4.0, 4.5];
    o.extend((5..64).map(|x| x as f64));
    o.extend([128.0, 256.0, 512.0]);
    o
}

/// `compute_dp_sgd_privacy(n, batch, sigma, epochs, delta)`: q = batch/n,
/// steps = ceil(epochs * n / batch).
fn tf_privacy_epsilon(n: u64, batch: u64, sigma: f64, epochs: u64, d: f64) -> (f64, f64, f64) {
    let q = SamplingRate::from_batch(batch, n).unwrap();
    let steps = (epochs * n).div_ceil(batch);
    let mut acc = RdpAccountant::new(tf_privacy_orders()).unwrap();
    acc.compose(&DpEvent::dp_sgd(sigma, q.get(), steps).unwrap())
        .unwrap();
    let improved = acc.epsilon(delta(d)).unwrap();
    let classic = acc.epsilon_classic(delta(d)).unwrap();
    (improved.epsilon, improved.order, classic.epsilon)
}

#[test]
fn tf_privacy_compute_dp_sgd_privacy_mnist() {
    // n=60000, batch 150, sigma 1.3, 15 epochs, delta 1e-5 -> 0.7242234026 at order 19.
    // The published number is the improved conversion (Canonne-Kamath-Steinke); the classic
    // one gives 0.94187 at the same order.
    let (e, order, classic) = tf_privacy_epsilon(60_000, 150, 1.3, 15, 1e-5);
    assert!((e - 0.724_223_402_6).abs() < 1e-9, "{e}");
    assert_eq!(order, 19.0);
    assert!((classic - 0.941_870_567_2).abs() < 1e-8, "{classic}");
}

#[test]
fn tf_privacy_compute_dp_sgd_privacy_large() {
    // n=100000, batch 100, sigma 1.0, 30 epochs, delta 1e-7 -> 1.4154988495 at order 13.
    let (e, order, classic) = tf_privacy_epsilon(100_000, 100, 1.0, 30, 1e-7);
    assert!((e - 1.415_498_849_5).abs() < 1e-9, "{e}");
    assert_eq!(order, 13.0);
    assert!((classic - 1.709_287_337_0).abs() < 1e-8, "{classic}");
}

#[test]
fn dp_accounting_rdp_sequence() {
    // q = 0.01, sigma = 2.5, 50 steps.
    let orders = [1.5, 2.5, 5.0, 50.0, 100.0];
    let want = [
        6.705_797_41e-4,
        1.085_487_10e-3,
        2.180_756_56e-3,
        2.384_603_75e-2,
        167.416_308,
    ];
    let mut acc = RdpAccountant::new(orders.to_vec()).unwrap();
    acc.compose(&DpEvent::dp_sgd(2.5, 0.01, 50).unwrap())
        .unwrap();
    for (got, want) in acc.rdp().iter().zip(want) {
        assert!(((got - want) / want).abs() < 1e-8, "{got} vs {want}");
    }
}

#[test]
fn pld_three_gaussians_equal_one() {
    // Closed form (Balle and Wang 2018, Theorem 8) with sigma_eff = 1.
    let exact = gaussian_delta(noise(1.0), eps(1.0));
    assert!((exact - 0.126_936_737_506_643_9).abs() < 1e-13, "{exact}");

    let g = DpEvent::gaussian(3f64.sqrt()).unwrap();
    // Heterogeneous composition: three PLDs convolved by FFT.
    for discretization in [
        PldDiscretization::ConnectTheDots,
        PldDiscretization::PrivacyBuckets,
    ] {
        let opts = PldOptions::default().with_discretization(discretization);
        let mut acc = PldAccountant::with_options(opts);
        acc.compose(&DpEvent::Composed(vec![g.clone(), g.clone(), g.clone()]))
            .unwrap();
        let d = acc.delta(eps(1.0));
        assert!(d >= exact, "{discretization:?}: {d} < {exact}");
        assert!(d - exact < 1e-4, "{discretization:?}: {d} vs {exact}");
        // And 0.126936 to six digits.
        assert!((d - 0.126_936).abs() < 1e-4);
    }
    // Self-composition: FFT power of one PLD.
    let opts = PldOptions::default();
    let single =
        veil_dp::PrivacyLossDistribution::from_gaussian(noise(3f64.sqrt()), rate(1.0), opts)
            .unwrap();
    let d = single.self_compose(3).unwrap().delta_for_epsilon(eps(1.0));
    assert!(d >= exact && d - exact < 1e-4, "{d}");
    // The accountant's exact shortcut for self-composed Gaussians.
    let mut acc = PldAccountant::default();
    acc.compose(&DpEvent::self_composed(g, 3)).unwrap();
    let d = acc.delta(eps(1.0));
    assert!(d >= exact && d - exact < 1e-5, "{d}");
}

#[test]
fn analytic_gaussian_calibration() {
    // Bisection on the exact delta formula gives 3.730631634815936 (scipy, 200 halvings).
    let s = analytic_gaussian_sigma(eps(1.0), delta(1e-5), 1.0).unwrap();
    assert!((s - 3.730_631_634_815_936).abs() < 1e-9, "{s}");
    assert!((s - 3.73).abs() < 1e-3);
    // Scales with the sensitivity.
    let s2 = analytic_gaussian_sigma(eps(1.0), delta(1e-5), 2.0).unwrap();
    assert!((s2 - 2.0 * s).abs() < 1e-9);
    // It is tight: delta at that sigma equals the target.
    let d = gaussian_delta(noise(s), eps(1.0));
    assert!((d / 1e-5 - 1.0).abs() < 1e-8, "{d}");
}

#[test]
fn laplace_rdp_closed_form() {
    // Mironov 2017, Proposition 6: with lambda = 1/b,
    // rdp(a) = 1/(a-1) ln( a/(2a-1) e^{(a-1) lambda} + (a-1)/(2a-1) e^{-a lambda} ).
    let b = 0.8;
    let orders = [1.05, 1.5, 2.0, 10.0, 100.0];
    let got = rdp_laplace(noise(b), &orders).unwrap();
    for (g, a) in got.iter().zip(orders) {
        let l = 1.0 / b;
        let want = ((a / (2.0 * a - 1.0) * ((a - 1.0) * l).exp())
            + ((a - 1.0) / (2.0 * a - 1.0) * (-a * l).exp()))
        .ln()
            / (a - 1.0);
        assert!(((g - want) / want).abs() < 1e-10, "a={a}: {g} vs {want}");
    }
    // dp_accounting 0.6.0 `_laplace_rdp(1/0.8, order)`.
    let reference = [0.5589612224509889, 0.7286239088901548, 0.8562251665091107];
    for (g, w) in got.iter().zip(reference) {
        assert!(((g - w) / w).abs() < 1e-13, "{g} vs {w}");
    }
    // KL limit a -> 1: lambda + e^{-lambda} - 1 = 0.5365047968601901.
    let near1 = rdp_laplace(noise(b), &[1.000_001]).unwrap()[0];
    assert!((near1 - 0.536_504_796_860_190_1).abs() < 1e-6);
    // As a -> inf, rdp -> pure epsilon 1/b.
    let far = rdp_laplace(noise(b), &[1e6]).unwrap()[0];
    assert!((far - 1.25).abs() < 1e-5);
}

#[test]
fn zcdp_conversions() {
    // Bun and Steinke 2016, Proposition 1.3.
    let rho = Rho::new(0.5).unwrap();
    let e = zcdp_to_epsilon(rho, delta(1e-5));
    let want = 0.5 + 2.0 * (0.5 * (1e5f64).ln()).sqrt();
    assert!((e - want).abs() < 1e-12);
    let tight = zcdp_to_epsilon_tight(rho, delta(1e-5));
    assert!(tight < e && tight > 0.0);
    // Gaussian: rho = 1/(2 sigma^2); composition adds.
    let r = gaussian_zcdp(noise(2.0));
    assert_eq!(r.get(), 0.125);
    assert_eq!(r.times(4).get(), 0.5);
    assert_eq!(pure_dp_to_zcdp(eps(1.0)).get(), 0.5);
    // The tight conversion of a Gaussian's zCDP equals the RDP accountant on the same curve
    // (a Gaussian's RDP is exactly alpha * rho), up to the order grid.
    let mut acc = RdpAccountant::default();
    acc.compose(&DpEvent::gaussian(1.0).unwrap()).unwrap();
    let via_rdp = acc.epsilon(delta(1e-5)).unwrap().epsilon;
    let via_zcdp = zcdp_to_epsilon_tight(gaussian_zcdp(noise(1.0)), delta(1e-5));
    assert!(via_zcdp <= via_rdp + 1e-12 && via_rdp - via_zcdp < 1e-3);
    assert!(Rho::new(-1.0).is_err());
    assert!(Rho::new(f64::NAN).is_err());
}

#[test]
fn calibration_round_trip_rdp() {
    let (target, d, q, steps) = (eps(2.0), delta(1e-5), rate(0.01), 1000);
    let kind = AccountantKind::Rdp;
    let s = calibrate_noise(target, d, q, steps, &kind).unwrap();
    let e = dp_sgd_epsilon(s, q, steps, d, &kind).unwrap();
    assert!(e <= 2.0, "{e}");
    let e_less = dp_sgd_epsilon(noise(s.get() * 0.999), q, steps, d, &kind).unwrap();
    assert!(e_less > 2.0, "{e_less}");

    // Most steps at that noise: epsilon(n) <= target < epsilon(n + 1); n >= 1000.
    let n = max_steps(s, q, target, d, &kind).unwrap();
    assert!(n >= steps);
    assert!(dp_sgd_epsilon(s, q, n, d, &kind).unwrap() <= 2.0);
    assert!(dp_sgd_epsilon(s, q, n + 1, d, &kind).unwrap() > 2.0);
}

#[test]
fn calibration_round_trip_pld() {
    let opts = PldOptions::new(1e-3).unwrap();
    let kind = AccountantKind::Pld(opts);
    let (target, d, q, steps) = (eps(1.5), delta(1e-5), rate(0.02), 200);
    let s = calibrate_noise(target, d, q, steps, &kind).unwrap();
    let e = dp_sgd_epsilon(s, q, steps, d, &kind).unwrap();
    assert!(e <= 1.5, "{e}");
    let e_less = dp_sgd_epsilon(noise(s.get() * 0.99), q, steps, d, &kind).unwrap();
    assert!(e_less > 1.5, "{e_less}");
    // PLD is tighter than RDP: it needs less noise.
    let s_rdp = calibrate_noise(target, d, q, steps, &AccountantKind::Rdp).unwrap();
    assert!(s.get() < s_rdp.get());

    let n = max_steps(s, q, target, d, &kind).unwrap();
    assert!(n >= steps);
    assert!(dp_sgd_epsilon(s, q, n, d, &kind).unwrap() <= 1.5);
    assert!(dp_sgd_epsilon(s, q, n + 1, d, &kind).unwrap() > 1.5);
}

#[test]
fn pld_is_tighter_than_rdp_for_dp_sgd() {
    // dp_accounting 0.6.0 (PLDAccountant, 1e-4): 1.5153702481094293; RDP 1.7117701662429012.
    let event = DpEvent::dp_sgd(1.1, 0.01, 1000).unwrap();
    let mut pld = PldAccountant::default();
    pld.compose(&event).unwrap();
    let e_pld = pld.epsilon(delta(1e-5));
    assert!((e_pld - 1.515_370_248_109_429_3).abs() < 1e-4, "{e_pld}");
    let mut rdp = RdpAccountant::default();
    rdp.compose(&event).unwrap();
    let e_rdp = rdp.epsilon(delta(1e-5)).unwrap().epsilon;
    assert!(e_pld < e_rdp);
    // delta(1) from dp_accounting: 0.0007669463426913815.
    let d = pld.delta(eps(1.0));
    assert!((d / 7.669_463_426_913_815e-4 - 1.0).abs() < 1e-3, "{d}");
}

#[test]
fn pld_laplace_matches_dp_accounting() {
    // Ten Laplace mechanisms of scale 2: delta(1) = 0.30704054344535964, epsilon(1e-5) =
    // 4.98996231698569 (dp_accounting 0.6.0).
    let mut acc = PldAccountant::default();
    acc.compose(&DpEvent::self_composed(DpEvent::laplace(2.0).unwrap(), 10))
        .unwrap();
    assert!((acc.delta(eps(1.0)) - 0.307_040_543_445_359_64).abs() < 1e-6);
    assert!((acc.epsilon(delta(1e-5)) - 4.989_962_316_985_69).abs() < 1e-4);
    // Poisson-subsampled Laplace: q = 0.05, b = 1, 100 steps: delta(1) = 0.0047258199630422345,
    // epsilon(1e-6) = 2.183252003688017.
    let mut acc = PldAccountant::default();
    acc.compose(&DpEvent::self_composed(
        DpEvent::poisson_sampled(0.05, DpEvent::laplace(1.0).unwrap()).unwrap(),
        100,
    ))
    .unwrap();
    assert!((acc.delta(eps(1.0)) / 0.004_725_819_963_042_234_5 - 1.0).abs() < 1e-3);
    assert!((acc.epsilon(delta(1e-6)) - 2.183_252_003_688_017).abs() < 1e-3);
}

#[test]
fn bad_inputs_are_errors() {
    assert!(Epsilon::new(f64::NAN).is_err());
    assert!(Epsilon::new(-0.1).is_err());
    assert!(Epsilon::new(f64::INFINITY).is_err());
    assert!(Delta::new(0.0).is_err());
    assert!(Delta::new(1.0).is_err());
    assert!(Delta::new(f64::NAN).is_err());
    assert!(NoiseMultiplier::new(-1.0).is_err());
    assert!(NoiseMultiplier::new(0.0).is_err());
    assert!(SamplingRate::new(1.5).is_err());
    assert!(SamplingRate::new(-0.1).is_err());
    assert!(SamplingRate::new(f64::NAN).is_err());
    assert!(DpEvent::gaussian(f64::NAN).is_err());
    assert!(DpEvent::dp_sgd(1.0, 2.0, 10).is_err());
    assert!(DpEvent::sampled_without_replacement(10, 11, DpEvent::gaussian(1.0).unwrap()).is_err());
    assert!(DpEvent::sampled_without_replacement(0, 0, DpEvent::gaussian(1.0).unwrap()).is_err());
    assert!(PldOptions::new(0.0).is_err());
    assert!(PldOptions::new(f64::NAN).is_err());
    assert!(PldOptions::default()
        .with_tail_mass_truncation(0.5)
        .is_err());
    let err = Delta::new(2.0).unwrap_err();
    assert!(err.to_string().contains("delta"), "{err}");
    // An event the accountant cannot analyse.
    let mut pld = PldAccountant::default();
    let wor =
        DpEvent::sampled_without_replacement(100, 10, DpEvent::gaussian(1.0).unwrap()).unwrap();
    assert!(matches!(
        pld.compose(&wor),
        Err(DpError::UnsupportedEvent { .. })
    ));
    // Direct curve conversions validate their inputs too.
    assert!(epsilon_from_rdp(&[0.5], &[1.0], delta(1e-5)).is_err());
    assert!(epsilon_from_rdp_classic(&[2.0], &[], delta(1e-5)).is_err());
    assert!(rdp_poisson_subsampled_gaussian(rate(0.1), noise(1.0), &[f64::INFINITY]).is_err());
    // Nothing to calibrate when no data is touched.
    assert!(calibrate_noise(eps(1.0), delta(1e-5), rate(0.0), 10, &AccountantKind::Rdp).is_err());
    assert!(max_steps(
        noise(1.0),
        rate(0.0),
        eps(1.0),
        delta(1e-5),
        &AccountantKind::Rdp
    )
    .is_err());
    // Deserialisation validates as well.
    let bad: Result<Delta, _> = Delta::try_from(-1.0);
    assert!(bad.is_err());
}

#[test]
fn heterogeneous_composition_and_edge_cases() {
    // RDP composes by addition, so composing events one by one equals one Composed event.
    let a = DpEvent::dp_sgd(1.0, 0.01, 100).unwrap();
    let b = DpEvent::laplace(5.0).unwrap();
    let mut one = RdpAccountant::default();
    one.compose(&DpEvent::Composed(vec![a.clone(), b.clone()]))
        .unwrap();
    let mut two = RdpAccountant::default();
    two.compose(&a).unwrap().compose(&b).unwrap();
    for (x, y) in one.rdp().iter().zip(two.rdp()) {
        assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0));
    }
    // q = 0 and count = 0 contribute nothing.
    let mut acc = RdpAccountant::default();
    acc.compose(&DpEvent::dp_sgd(1.0, 0.0, 100).unwrap())
        .unwrap();
    acc.compose(&DpEvent::self_composed(DpEvent::gaussian(0.1).unwrap(), 0))
        .unwrap();
    assert!(acc.rdp().iter().all(|&r| r == 0.0));
    assert_eq!(acc.epsilon(delta(1e-5)).unwrap().epsilon, 0.0);
    let mut pld = PldAccountant::default();
    pld.compose(&DpEvent::dp_sgd(1.0, 0.0, 100).unwrap())
        .unwrap();
    assert_eq!(pld.epsilon(delta(1e-5)), 0.0);
    // q = 1 is the plain Gaussian in both accountants.
    let mut pld = PldAccountant::default();
    pld.compose(&DpEvent::dp_sgd(2.0, 1.0, 4).unwrap()).unwrap();
    let exact = gaussian_delta(noise(1.0), eps(0.5));
    let d = pld.delta(eps(0.5));
    assert!(d >= exact && d - exact < 1e-5);
    // A composition of Gaussians on one Poisson sample is one Gaussian.
    let pair = DpEvent::Composed(vec![
        DpEvent::gaussian(2.0).unwrap(),
        DpEvent::gaussian(2.0).unwrap(),
    ]);
    let mut x = RdpAccountant::default();
    x.compose(&DpEvent::poisson_sampled(0.1, pair).unwrap())
        .unwrap();
    let mut y = RdpAccountant::default();
    y.compose(&DpEvent::poisson_sampled(0.1, DpEvent::gaussian(2f64.sqrt()).unwrap()).unwrap())
        .unwrap();
    for (u, v) in x.rdp().iter().zip(y.rdp()) {
        assert!((u - v).abs() <= 1e-12 * u.abs().max(1e-300));
    }
    // Count overflow is reported, not a panic.
    let huge = DpEvent::self_composed(
        DpEvent::self_composed(DpEvent::gaussian(1.0).unwrap(), u64::MAX),
        2,
    );
    assert!(matches!(
        RdpAccountant::default().compose(&huge),
        Err(DpError::CountOverflow)
    ));
}

#[test]
fn reports_serialise() {
    fn assert_serialize<T: serde::Serialize>(_: &T) {}
    let mut acc = RdpAccountant::default();
    acc.compose(&DpEvent::dp_sgd(1.1, 0.01, 100).unwrap())
        .unwrap();
    let r = acc.report(delta(1e-5)).unwrap();
    assert_eq!(r.accountant, "rdp");
    assert!(r.order.is_some());
    assert_serialize(&r);
    let r = AccountantKind::Pld(PldOptions::new(1e-3).unwrap())
        .report(&DpEvent::dp_sgd(1.1, 0.01, 100).unwrap(), delta(1e-5))
        .unwrap();
    assert_eq!(r.accountant, "pld");
    assert_eq!(r.order, None);
}

#[test]
fn extreme_parameters_give_numbers_or_clear_errors() {
    let d = delta(1e-5);
    // A tiny noise multiplier: enormous but finite epsilon, never NaN.
    let mut rdp = RdpAccountant::default();
    rdp.compose(&DpEvent::dp_sgd(1e-3, 0.01, 10).unwrap())
        .unwrap();
    let e = rdp.epsilon(d).unwrap().epsilon;
    assert!(e.is_finite() && e > 10.0, "{e}");
    match PldAccountant::default().compose(&DpEvent::dp_sgd(1e-3, 0.01, 10).unwrap()) {
        Ok(p) => {
            let e = p.epsilon(d);
            assert!(!e.is_nan() && e > 1.0, "{e}");
        }
        Err(err) => assert!(matches!(err, DpError::PldTooLarge { .. }), "{err}"),
    }
    // Noise so small that every RDP value overflows: the guarantee is infinite, and so is
    // epsilon (delta is then 1), not NaN and not an error.
    let mut rdp = RdpAccountant::default();
    rdp.compose(&DpEvent::dp_sgd(1e-200, 1.0, 1).unwrap())
        .unwrap();
    assert_eq!(rdp.epsilon(d).unwrap().epsilon, f64::INFINITY);
    assert_eq!(rdp.delta(eps(1.0)).unwrap().delta, 1.0);
    // Very many steps: RDP stays finite and grows with the steps; PLD either answers or
    // says the distribution is too large to hold.
    let steps = [1_000_000u64, 1_000_000_000, 1_000_000_000_000];
    let mut last = 0.0;
    for t in steps {
        let mut rdp = RdpAccountant::default();
        rdp.compose(&DpEvent::dp_sgd(1.1, 0.01, t).unwrap())
            .unwrap();
        let e = rdp.epsilon(d).unwrap().epsilon;
        assert!(e.is_finite() && e > last, "{t} steps: {e}");
        last = e;
    }
    match PldAccountant::default().compose(&DpEvent::dp_sgd(1.1, 0.01, 1_000_000_000).unwrap()) {
        Ok(p) => assert!(!p.epsilon(d).is_nan()),
        Err(err) => assert!(matches!(err, DpError::PldTooLarge { .. }), "{err}"),
    }
    // q = 1 with RDP is the plain Gaussian: alpha / (2 sigma^2) at every order.
    let mut rdp = RdpAccountant::default();
    rdp.compose(&DpEvent::dp_sgd(2.0, 1.0, 3).unwrap()).unwrap();
    for (a, r) in rdp.orders().iter().zip(rdp.rdp()) {
        assert!((r - 3.0 * a / 8.0).abs() <= 1e-12 * r);
    }
    // Delta outside (0, 1) is refused with its name in the message.
    for bad in [0.0, 1.0, -1e-5, 1.5, f64::NAN] {
        let err = Delta::new(bad).unwrap_err();
        assert!(err.to_string().contains("delta"), "{err}");
    }
}
