//! Agreement with Google's `dp_accounting` over a grid of DP-SGD parameters.
//!
//! `tests/data/dp_accounting_grid.json` holds what `dp_accounting` (the version is recorded
//! in the file) reports for Poisson-subsampled Gaussian DP-SGD over a grid of sampling rates,
//! noise multipliers, step counts and deltas, plus a few plain Gaussian and (Poisson-
//! subsampled) Laplace events; `tests/data/make_dp_accounting_grid.py` regenerates it. The
//! RDP side uses both libraries' default orders, the PLD side a value discretisation
//! interval of `1e-4` (both libraries' default). An infinite epsilon (`null` in the file) must
//! be infinite here too; the tolerances are those of the constants below.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::Deserialize;
use veil_dp::{Delta, DpEvent, Epsilon, PldAccountant, RdpAccountant};

const GRID: &str = include_str!("data/dp_accounting_grid.json");

/// RDP epsilon and delta: relative agreement, with the same optimal order. Both libraries
/// evaluate the same closed forms and series in double precision, so only rounding separates
/// them.
const RDP_REL_TOL: f64 = 1e-6;

/// PLD epsilon: `|eps - eps_ref| <= PLD_EPS_TOL_STEPS * value_discretization_interval`.
///
/// Both libraries discretise each privacy loss pessimistically (connect-the-dots) on the same
/// grid, compose by FFT and truncate the same tail mass, so the discretisation moves both
/// results the same way and they differ only by rounding: a few hundredths of a grid step.
/// The one structural difference is `q = 1`: `veil-dp` analyses `n` unsampled Gaussian steps
/// as one Gaussian of noise `sigma / sqrt(n)`, discretised once, where `dp_accounting`
/// discretises one step and self-composes it `n` times, which accumulates the slack of `n`
/// discretisations: `veil-dp` is then slightly lower (0.03 grid steps at 1000 steps, noise 5;
/// 0.3 at noise 1.1, a run left out of the grid for its size). One grid step covers both:
/// agreement within the discretisation itself.
const PLD_EPS_TOL_STEPS: f64 = 1.0;

/// PLD delta, relative part: `|delta - delta_ref| <= rel * min(delta_ref, 1) + abs`. Same
/// reasoning as for epsilon; the largest relative gaps are the `q = 1` runs above (`3e-6`).
/// `dp_accounting` may report a delta slightly above 1 (`1.00004` at `q = 0.2`, noise 0.5,
/// 1000 steps, outside this grid) where `veil-dp` clamps to 1, hence the `min`.
const PLD_DELTA_REL_TOL: f64 = 1e-5;

/// PLD delta, absolute part: the FFT rounding floor. Each of the (up to ~1e5) probabilities
/// of a composed distribution carries an absolute rounding error of order `1e-17`, and
/// negative rounding is clamped to 0, so deltas below ~1e-13 are rounding noise on both
/// sides (alongside the `1e-15` tail mass each composition moves to infinity).
const PLD_DELTA_ABS_TOL: f64 = 1e-12;

#[derive(Debug, Deserialize)]
struct Grid {
    dp_accounting_version: String,
    pld_value_discretization_interval: f64,
    rdp: Vec<RdpRecord>,
    pld: Vec<PldRecord>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Event {
    DpSgd { q: f64, sigma: f64, steps: u64 },
    Gaussian { sigma: f64, count: u64 },
    Laplace { scale: f64, count: u64 },
    PoissonLaplace { q: f64, scale: f64, count: u64 },
}

impl Event {
    fn to_dp_event(self) -> DpEvent {
        match self {
            Event::DpSgd { q, sigma, steps } => DpEvent::dp_sgd(sigma, q, steps).unwrap(),
            Event::Gaussian { sigma, count } => {
                DpEvent::self_composed(DpEvent::gaussian(sigma).unwrap(), count)
            }
            Event::Laplace { scale, count } => {
                DpEvent::self_composed(DpEvent::laplace(scale).unwrap(), count)
            }
            Event::PoissonLaplace { q, scale, count } => DpEvent::self_composed(
                DpEvent::poisson_sampled(q, DpEvent::laplace(scale).unwrap()).unwrap(),
                count,
            ),
        }
    }
}

#[derive(Debug, Deserialize)]
struct EpsilonAt {
    delta: f64,
    /// `None`: infinite.
    epsilon: Option<f64>,
    order: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct DeltaAt {
    epsilon: f64,
    delta: f64,
    order: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct RdpRecord {
    event: Event,
    epsilons: Vec<EpsilonAt>,
    deltas: Vec<DeltaAt>,
}

#[derive(Debug, Deserialize)]
struct PldRecord {
    event: Event,
    epsilons: Vec<EpsilonAt>,
    deltas: Vec<DeltaAt>,
}

fn grid() -> Grid {
    serde_json::from_str(GRID).expect("tests/data/dp_accounting_grid.json parses")
}

fn rel_err(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        ((got - want) / want).abs()
    }
}

fn want_epsilon(e: &EpsilonAt) -> f64 {
    e.epsilon.unwrap_or(f64::INFINITY)
}

#[test]
fn grid_is_the_expected_one() {
    let g = grid();
    assert!(g.dp_accounting_version.starts_with("0."));
    assert_eq!(g.pld_value_discretization_interval, 1e-4);
    assert!(g.rdp.len() >= 120, "{}", g.rdp.len());
    assert!(g.pld.len() >= 80, "{}", g.pld.len());
}

#[test]
fn rdp_matches_dp_accounting() {
    let g = grid();
    let mut failures = Vec::new();
    let (mut max_eps_err, mut max_delta_err, mut checked) = (0.0f64, 0.0f64, 0usize);
    for rec in &g.rdp {
        let mut acc = RdpAccountant::default();
        acc.compose(&rec.event.to_dp_event()).unwrap();
        for e in &rec.epsilons {
            let got = acc.epsilon(Delta::new(e.delta).unwrap()).unwrap();
            let want = want_epsilon(e);
            checked += 1;
            let err = rel_err(got.epsilon, want);
            if want.is_infinite() || got.epsilon.is_infinite() {
                if got.epsilon != want {
                    failures.push(format!(
                        "{:?} delta {}: {got:?} vs {want}",
                        rec.event, e.delta
                    ));
                }
                continue;
            }
            max_eps_err = max_eps_err.max(err);
            if err > RDP_REL_TOL || e.order.is_some_and(|o| o != got.order) {
                failures.push(format!(
                    "{:?} delta {}: epsilon {} at order {} vs {} at {:?} (rel {err:.2e})",
                    rec.event, e.delta, got.epsilon, got.order, want, e.order
                ));
            }
        }
        for d in &rec.deltas {
            let got = acc.delta(Epsilon::new(d.epsilon).unwrap()).unwrap();
            checked += 1;
            let err = rel_err(got.delta, d.delta);
            max_delta_err = max_delta_err.max(err);
            if err > RDP_REL_TOL || d.order.is_some_and(|o| o != got.order) {
                failures.push(format!(
                    "{:?} epsilon {}: delta {} at order {} vs {} at {:?} (rel {err:.2e})",
                    rec.event, d.epsilon, got.delta, got.order, d.delta, d.order
                ));
            }
        }
    }
    eprintln!(
        "RDP, dp_accounting {}: {checked} values, max relative error epsilon {max_eps_err:.3e}, \
         delta {max_delta_err:.3e}",
        g.dp_accounting_version
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Compares one PLD record; returns the largest epsilon difference, the largest relative
/// delta error (over deltas above the rounding floor), and pushes any failure.
fn check_pld_record(rec: &PldRecord, interval: f64, failures: &mut Vec<String>) -> (f64, f64) {
    let mut acc = PldAccountant::new(interval).unwrap();
    acc.compose(&rec.event.to_dp_event()).unwrap();
    let (mut max_eps_diff, mut max_delta_err) = (0.0f64, 0.0f64);
    for e in &rec.epsilons {
        let got = acc.epsilon(Delta::new(e.delta).unwrap());
        let want = want_epsilon(e);
        if want.is_infinite() || got.is_infinite() {
            if got != want {
                failures.push(format!(
                    "{:?} delta {}: {got} vs {want}",
                    rec.event, e.delta
                ));
            }
            continue;
        }
        let diff = (got - want).abs();
        max_eps_diff = max_eps_diff.max(diff);
        if diff > PLD_EPS_TOL_STEPS * interval {
            failures.push(format!(
                "{:?} delta {}: epsilon {got} vs {want} ({:.3} grid steps)",
                rec.event,
                e.delta,
                diff / interval
            ));
        }
    }
    for d in &rec.deltas {
        let got = acc.delta(Epsilon::new(d.epsilon).unwrap());
        let want = d.delta.min(1.0);
        let diff = (got - want).abs();
        if want > PLD_DELTA_ABS_TOL {
            max_delta_err = max_delta_err.max(diff / want);
        }
        if diff > PLD_DELTA_REL_TOL * want + PLD_DELTA_ABS_TOL {
            failures.push(format!(
                "{:?} epsilon {}: delta {got} vs {} (rel {:.2e})",
                rec.event,
                d.epsilon,
                d.delta,
                diff / want
            ));
        }
    }
    (max_eps_diff, max_delta_err)
}

#[test]
fn pld_matches_dp_accounting() {
    let g = grid();
    let interval = g.pld_value_discretization_interval;
    // The records are independent: spread them over the available cores.
    let next = AtomicUsize::new(0);
    let results = Mutex::new((Vec::new(), 0.0f64, 0.0f64));
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(rec) = g.pld.get(i) else { break };
                let mut failures = Vec::new();
                let (e, d) = check_pld_record(rec, interval, &mut failures);
                let mut r = results.lock().unwrap();
                r.0.extend(failures);
                r.1 = r.1.max(e);
                r.2 = r.2.max(d);
            });
        }
    });
    let (failures, max_eps_diff, max_delta_err) = results.into_inner().unwrap();
    eprintln!(
        "PLD, dp_accounting {}: {} records, max epsilon difference {max_eps_diff:.3e} \
         ({:.3} grid steps), max relative delta error (delta > {PLD_DELTA_ABS_TOL:e}) \
         {max_delta_err:.3e}",
        g.dp_accounting_version,
        g.pld.len(),
        max_eps_diff / interval
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
