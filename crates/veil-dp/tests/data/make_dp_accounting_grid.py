#!/usr/bin/env python3
"""Reference grid from Google's `dp_accounting` for `tests/dp_accounting_grid.rs`.

For a grid of DP-SGD parameters (Poisson rate q, noise multiplier sigma, steps) and deltas,
this records what `dp_accounting` reports:

- RDP (`RdpAccountant()` with its default orders): `get_epsilon_and_optimal_order(delta)`
  and `get_delta_and_optimal_order(epsilon)` for
  `SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(sigma)), steps)`;
- PLD (`PLDAccountant(value_discretization_interval=1e-4)`, the default of both
  `dp_accounting` and `veil_dp::PldAccountant::default()`): `get_epsilon(delta)` and
  `get_delta(epsilon)` for the same events, on a smaller grid (PLD composition is far more
  expensive than RDP);
- a few plain Gaussian, Laplace and Poisson-subsampled Laplace events.

An infinite epsilon is written as `null`.

Re-run (Python 3.11):

    python3 -m venv venv && venv/bin/pip install dp_accounting==0.6.0
    venv/bin/python make_dp_accounting_grid.py > dp_accounting_grid.json

With `--time`, it instead prints `dp_accounting`'s wall-clock time (median of a few runs)
for q = 256/60000, sigma = 1.1, 100 000 steps, delta = 1e-5, with RDP and with PLD.
"""

import argparse
import importlib.metadata
import json
import logging
import math
import statistics
import sys
import time

import dp_accounting
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

# dp_accounting logs a warning for every fractional order whose series does not converge.
logging.disable(logging.WARNING)

VERSION = importlib.metadata.version("dp_accounting")
PLD_INTERVAL = 1e-4

QS = [0.001, 256 / 60000, 0.01, 0.05, 0.2, 1.0]
SIGMAS = [0.5, 0.8, 1.1, 2.0, 5.0]
RDP_STEPS = [1, 10, 1000, 100_000]
DELTAS = [1e-5, 1e-7]
RDP_EPSILONS = [1.0, 8.0]

# PLD: far more expensive than RDP (and its cost grows with the privacy loss), so a smaller
# grid: every q with sigma >= 0.8 and 1, 10 or 1000 steps, except the runs whose epsilon is
# above 50 (no practical use, and the widest distributions); sigma = 0.5 for a single step
# only; 100 000 steps for a few realistic settings.
PLD_SIGMAS = [0.8, 1.1, 2.0, 5.0]
PLD_STEPS = [1, 10, 1000]
PLD_SKIP = {
    (0.2, 0.8, 1000),  # epsilon ~ 96
    (0.2, 1.1, 1000),  # epsilon ~ 51
    (1.0, 0.8, 1000),  # epsilon > 700
    (1.0, 1.1, 1000),  # epsilon ~ 535
    (1.0, 2.0, 1000),  # epsilon ~ 192
}
PLD_EXTRA_RUNS = [(q, 0.5, 1) for q in QS] + [
    (0.001, 2.0, 100_000),
    (0.001, 5.0, 100_000),
    (256 / 60000, 1.1, 100_000),
    (256 / 60000, 2.0, 100_000),
    (0.01, 5.0, 100_000),
]
PLD_EPSILONS = [1.0]


def finite_or_none(x):
    x = float(x)
    return x if math.isfinite(x) else None


def dp_sgd(q, sigma, steps):
    return dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )


def event_json(kind, **params):
    return {"kind": kind, **params}


def rdp_record(event_desc, event):
    acc = rdp_privacy_accountant.RdpAccountant()
    acc.compose(event)
    epsilons = []
    for delta in DELTAS:
        eps, order = acc.get_epsilon_and_optimal_order(delta)
        epsilons.append(
            {"delta": delta, "epsilon": finite_or_none(eps), "order": float(order)}
        )
    deltas = []
    for eps in RDP_EPSILONS:
        delta, order = acc.get_delta_and_optimal_order(eps)
        deltas.append({"epsilon": eps, "delta": float(delta), "order": float(order)})
    return {"event": event_desc, "epsilons": epsilons, "deltas": deltas}


def pld_record(event_desc, event):
    acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=PLD_INTERVAL)
    acc.compose(event)
    epsilons = [
        {"delta": d, "epsilon": finite_or_none(acc.get_epsilon(d))} for d in DELTAS
    ]
    deltas = [{"epsilon": e, "delta": float(acc.get_delta(e))} for e in PLD_EPSILONS]
    return {"event": event_desc, "epsilons": epsilons, "deltas": deltas}


def other_events():
    """(description, event, with RDP?) for the plain Gaussian and Laplace records."""
    gauss = dp_accounting.GaussianDpEvent
    lap = dp_accounting.LaplaceDpEvent
    out = []
    for sigma, count in [(0.8, 1), (2.0, 1), (5.0, 10), (20.0, 1000)]:
        out.append(
            (
                event_json("gaussian", sigma=sigma, count=count),
                dp_accounting.SelfComposedDpEvent(gauss(sigma), count),
                True,
            )
        )
    for scale, count in [(1.0, 1), (2.0, 10), (10.0, 100)]:
        out.append(
            (
                event_json("laplace", scale=scale, count=count),
                dp_accounting.SelfComposedDpEvent(lap(scale), count),
                True,
            )
        )
    for q, scale, count in [(0.01, 1.0, 100), (0.1, 2.0, 10)]:
        out.append(
            (
                event_json("poisson_laplace", q=q, scale=scale, count=count),
                dp_accounting.SelfComposedDpEvent(
                    dp_accounting.PoissonSampledDpEvent(q, lap(scale)), count
                ),
                False,
            )
        )
    return out


def make_grid():
    rdp = []
    for q in QS:
        for sigma in SIGMAS:
            for steps in RDP_STEPS:
                desc = event_json("dp_sgd", q=q, sigma=sigma, steps=steps)
                rdp.append(rdp_record(desc, dp_sgd(q, sigma, steps)))
    pld = []
    runs = [
        (q, s, n)
        for q in QS
        for s in PLD_SIGMAS
        for n in PLD_STEPS
        if (q, s, n) not in PLD_SKIP
    ] + PLD_EXTRA_RUNS
    for q, sigma, steps in runs:
        desc = event_json("dp_sgd", q=q, sigma=sigma, steps=steps)
        pld.append(pld_record(desc, dp_sgd(q, sigma, steps)))
    for desc, event, with_rdp in other_events():
        if with_rdp:
            rdp.append(rdp_record(desc, event))
        pld.append(pld_record(desc, event))
    return {
        "dp_accounting_version": VERSION,
        "generator": "tests/data/make_dp_accounting_grid.py",
        "infinite_epsilon": None,
        "pld_value_discretization_interval": PLD_INTERVAL,
        "rdp": rdp,
        "pld": pld,
    }


def dump(grid):
    """JSON with one record per line (floats as Python's shortest round-trip repr)."""
    lines = ["{"]
    for key in [
        "dp_accounting_version",
        "generator",
        "infinite_epsilon",
        "pld_value_discretization_interval",
    ]:
        lines.append(f"  {json.dumps(key)}: {json.dumps(grid[key])},")
    for i, key in enumerate(["rdp", "pld"]):
        lines.append(f"  {json.dumps(key)}: [")
        records = grid[key]
        for j, rec in enumerate(records):
            sep = "," if j + 1 < len(records) else ""
            lines.append("    " + json.dumps(rec, allow_nan=False) + sep)
        lines.append("  ]" + ("," if i == 0 else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def median_time(f, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def timing(runs):
    event = dp_sgd(256 / 60000, 1.1, 100_000)
    delta = 1e-5

    def rdp():
        acc = rdp_privacy_accountant.RdpAccountant()
        acc.compose(event)
        return acc.get_epsilon(delta)

    def pld():
        acc = pld_privacy_accountant.PLDAccountant(value_discretization_interval=PLD_INTERVAL)
        acc.compose(event)
        return acc.get_epsilon(delta)

    print(f"dp_accounting {VERSION}: q = 256/60000, sigma = 1.1, 100000 steps, delta = 1e-5")
    print(f"  RDP epsilon {rdp():.6f}: median {median_time(rdp, runs) * 1e3:.1f} ms of {runs}")
    print(f"  PLD epsilon {pld():.6f}: median {median_time(pld, runs) * 1e3:.1f} ms of {runs}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--time", action="store_true", help="time dp_accounting instead of writing the grid"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per timing (default 5)")
    args = parser.parse_args()
    if args.time:
        timing(args.runs)
    else:
        sys.stdout.write(dump(make_grid()))


if __name__ == "__main__":
    main()
