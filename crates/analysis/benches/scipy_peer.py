"""SciPy's side of `cargo xtask bench analysis`: the same statistics on the same samples.

usage: python scipy_peer.py DIR   (DIR holds canary.f64 and stable.f64 from judge_bench)
Prints `name seconds statistic p_value` lines, best of 5 runs, like the Rust side.
"""

import sys
import time

import numpy as np
from scipy import stats

directory = sys.argv[1]
canary = np.fromfile(f"{directory}/canary.f64", dtype="<f8")
stable = np.fromfile(f"{directory}/stable.f64", dtype="<f8")


def timed(f, runs=5):
    out = f()
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        out = f()
        best = min(best, time.perf_counter() - started)
    return best, out


seconds, r = timed(lambda: stats.mannwhitneyu(canary, stable, alternative="two-sided", method="asymptotic"))
print(f"mannwhitneyu {seconds} {float(r.statistic)!r} {float(r.pvalue)!r}")
seconds, r = timed(lambda: stats.ks_2samp(canary, stable))
print(f"ks_2samp {seconds} {float(r.statistic)!r} {float(r.pvalue)!r}")


def spread():
    dx = np.abs(canary - np.median(canary))
    dy = np.abs(stable - np.median(stable))
    return np.median(dx) / np.median(dy), stats.mannwhitneyu(dx, dy, alternative="two-sided", method="asymptotic")


seconds, (ratio, r) = timed(spread)
print(f"spread_test {seconds} {float(ratio)!r} {float(r.pvalue)!r}")
seconds, r = timed(lambda: stats.levene(canary, stable, center="median"))
print(f"levene_median {seconds} {float(r.statistic)!r} {float(r.pvalue)!r}")
