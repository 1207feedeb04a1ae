//! Calibration: the smallest noise multiplier for a target (epsilon, delta), and the most
//! DP-SGD steps within a budget.
//!
//! Both searches rely on monotonicity: epsilon decreases as the noise multiplier grows and
//! increases with the number of steps (composition). They bracket the answer by doubling
//! and then bisect, as `dp_accounting`'s `mechanism_calibration.calibrate_dp_mechanism`
//! does. The returned noise is always one whose computed epsilon meets the target (the
//! upper end of the final bracket), and the returned step count is always one whose
//! computed epsilon meets it. With the PLD accountant, a parameter whose distribution would
//! be too large to hold ([`DpError::PldTooLarge`]) is treated as exceeding the target, which
//! can only make the answer more conservative.

use crate::{
    Delta, DpError, DpEvent, Epsilon, EpsilonReport, NoiseMultiplier, PldAccountant, PldOptions,
    PrivacyLossDistribution, RdpAccountant, SamplingRate,
};

/// Which accountant a calibration (or a one-shot epsilon) uses.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum AccountantKind {
    /// RDP with `dp_accounting`'s default orders and the improved conversion.
    #[default]
    Rdp,
    /// PLD with the given options.
    Pld(PldOptions),
    /// RDP at the integer orders of the default set only ([`integer_orders`]): the orders at
    /// which the guarantee of discrete Gaussian noise is proven ([`crate::discrete`]), what
    /// Veil's DP-SGD adds.
    RdpIntegerOrders,
}

/// The integer orders among [`crate::rdp::default_orders`]: 2 to 63, 128, 256, 512 and 1024.
pub fn integer_orders() -> Vec<f64> {
    crate::rdp::default_orders()
        .into_iter()
        .filter(|a| a.fract() == 0.0)
        .collect()
}

impl AccountantKind {
    /// The epsilon of `event` at `delta` with this accountant.
    pub fn epsilon(&self, event: &DpEvent, delta: Delta) -> Result<f64, DpError> {
        Ok(self.report(event, delta)?.epsilon)
    }

    /// The epsilon of `event` at `delta` as a serialisable report.
    pub fn report(&self, event: &DpEvent, delta: Delta) -> Result<EpsilonReport, DpError> {
        match self {
            AccountantKind::Rdp => {
                let mut acc = RdpAccountant::default();
                acc.compose(event)?;
                acc.report(delta)
            }
            AccountantKind::RdpIntegerOrders => {
                let mut acc = RdpAccountant::new(integer_orders())?;
                acc.compose(event)?;
                acc.report(delta)
            }
            AccountantKind::Pld(options) => {
                let mut acc = PldAccountant::with_options(*options);
                acc.compose(event)?;
                Ok(acc.report(delta))
            }
        }
    }
}

/// Epsilon of `steps` DP-SGD steps (Poisson rate `q`, noise multiplier `noise`) at `delta`.
pub fn dp_sgd_epsilon(
    noise: NoiseMultiplier,
    q: SamplingRate,
    steps: u64,
    delta: Delta,
    accountant: &AccountantKind,
) -> Result<f64, DpError> {
    accountant.epsilon(&dp_sgd_event(noise, q, steps), delta)
}

fn dp_sgd_event(noise: NoiseMultiplier, q: SamplingRate, steps: u64) -> DpEvent {
    DpEvent::self_composed(
        DpEvent::PoissonSampled {
            q,
            event: Box::new(DpEvent::Gaussian {
                noise_multiplier: noise,
            }),
        },
        steps,
    )
}

/// `Ok(true)` when the epsilon meets the target; too-large PLDs count as not meeting it.
fn meets(eps: Result<f64, DpError>, target: f64) -> Result<bool, DpError> {
    match eps {
        Ok(e) => Ok(e <= target),
        Err(DpError::PldTooLarge { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The smallest noise multiplier (to a relative precision of `1e-7`) for which `steps`
/// DP-SGD steps at Poisson rate `q` are (`target`, `delta`)-DP.
pub fn calibrate_noise(
    target: Epsilon,
    delta: Delta,
    q: SamplingRate,
    steps: u64,
    accountant: &AccountantKind,
) -> Result<NoiseMultiplier, DpError> {
    if steps == 0 || q.get() == 0.0 {
        return Err(DpError::NoSolution(
            "no step touches the data (steps = 0 or q = 0): every noise multiplier meets the \
             target"
                .into(),
        ));
    }
    let t = target.get();
    let ok = |sigma: f64| -> Result<bool, DpError> {
        let noise = NoiseMultiplier::new(sigma)?;
        meets(dp_sgd_epsilon(noise, q, steps, delta, accountant), t)
    };
    let mut hi = 1.0;
    while !ok(hi)? {
        hi *= 2.0;
        if hi > 1e6 {
            return Err(DpError::NoSolution(
                "even a noise multiplier of 1e6 does not meet the target".into(),
            ));
        }
    }
    let mut lo = hi / 2.0;
    while ok(lo)? {
        hi = lo;
        lo /= 2.0;
        if lo < 1e-6 {
            return NoiseMultiplier::new(hi);
        }
    }
    while hi - lo > 1e-7 * hi {
        let mid = 0.5 * (lo + hi);
        if ok(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    NoiseMultiplier::new(hi)
}

/// The largest number of DP-SGD steps (Poisson rate `q`, noise multiplier `noise`) that
/// stays (`target`, `delta`)-DP; 0 when even one step exceeds the target.
pub fn max_steps(
    noise: NoiseMultiplier,
    q: SamplingRate,
    target: Epsilon,
    delta: Delta,
    accountant: &AccountantKind,
) -> Result<u64, DpError> {
    if q.get() == 0.0 {
        return Err(DpError::NoSolution(
            "q = 0 never touches the data: any number of steps meets the target".into(),
        ));
    }
    let t = target.get();
    let step = DpEvent::PoissonSampled {
        q,
        event: Box::new(DpEvent::Gaussian {
            noise_multiplier: noise,
        }),
    };
    // A closure computing "epsilon(steps) <= target", sharing the per-step work.
    let ok: Box<dyn Fn(u64) -> Result<bool, DpError>> = match accountant {
        AccountantKind::Rdp | AccountantKind::RdpIntegerOrders => {
            let base = match accountant {
                AccountantKind::Rdp => RdpAccountant::default(),
                _ => RdpAccountant::new(integer_orders())?,
            };
            let curve = base.event_rdp(&step)?;
            Box::new(move |n: u64| {
                let scaled: Vec<f64> = curve.iter().map(|c| c * n as f64).collect();
                let mut acc = base.clone();
                acc.compose_curve(&scaled)?;
                Ok(acc.epsilon(delta)?.epsilon <= t)
            })
        }
        AccountantKind::Pld(options) => {
            let options = *options;
            if q.get() == 1.0 {
                Box::new(move |n: u64| {
                    let pld = PldAccountant::with_options(options)
                        .event_pld(&DpEvent::self_composed(step.clone(), n))
                        .and_then(|p| p.ok_or_else(|| DpError::NoSolution("empty event".into())))
                        .map(|p| p.epsilon_for_delta(delta));
                    meets(pld, t)
                })
            } else {
                let base = PrivacyLossDistribution::from_gaussian(noise, q, options)?;
                Box::new(move |n: u64| {
                    meets(base.self_compose(n).map(|p| p.epsilon_for_delta(delta)), t)
                })
            }
        }
    };
    if !ok(1)? {
        return Ok(0);
    }
    let mut lo = 1u64;
    let mut hi = 2u64;
    while ok(hi)? {
        lo = hi;
        if hi >= 1 << 62 {
            return Err(DpError::NoSolution(
                "the budget allows more than 2^62 steps".into(),
            ));
        }
        hi *= 2;
    }
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if ok(mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}
