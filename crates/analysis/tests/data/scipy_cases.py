"""Generates crates/analysis/src/stats/scipy_cases.rs: SciPy's and NumPy's answers on fixed data.

Run once, by hand, in a venv with scipy and numpy (the numbers are then committed):

    python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy numpy
    /tmp/scipy-venv/bin/python crates/analysis/tests/data/scipy_cases.py > crates/analysis/src/stats/scipy_cases.rs

Methods are passed explicitly where SciPy has a choice (see crates/analysis/src/stats/mod.rs):
mannwhitneyu uses method="asymptotic"; ks_2samp uses method="auto" (exact up to 10,000 values),
and for the one case above that size the expected p-value is kstwobign.sf(sqrt(en) * d), the
asymptotic distribution we implement (SciPy's own "asymp" value is printed in a comment).
"""

import math

import numpy as np
import scipy
from scipy import stats

rng = np.random.default_rng(20240607)


def arr(values):
    return "&[" + ", ".join(repr(float(v)) for v in values) + "]"


def normal(loc, scale, n, decimals=4):
    return np.round(rng.normal(loc, scale, n), decimals)


def lognormal(mean, sigma, n, decimals=4):
    return np.round(rng.lognormal(mean, sigma, n), decimals)


def integers(low, high, n):
    return rng.integers(low, high, n).astype(float)


def formula(n, mult, mod, offset=0.0):
    # Exact in both languages: an integer sequence, one division, one addition.
    return np.array([(i * mult % mod) / mod + offset for i in range(n)])


out = []
p = out.append
p("//! SciPy's and NumPy's answers on fixed data, generated once by")
p("//! `crates/analysis/tests/data/scipy_cases.py` with scipy %s and numpy %s. Do not edit by hand." % (scipy.__version__, np.__version__))
p("")
p("#![allow(clippy::approx_constant, clippy::excessive_precision, reason = \"generated data\")]")
p("")
p("pub(super) struct MannWhitneyCase { pub(super) name: &'static str, pub(super) x: &'static [f64], pub(super) y: &'static [f64], pub(super) u: f64, pub(super) p_value: f64 }")
p("pub(super) struct KsCase { pub(super) name: &'static str, pub(super) x: &'static [f64], pub(super) y: &'static [f64], pub(super) statistic: f64, pub(super) p_value: f64, pub(super) exact: bool }")
p("pub(super) struct FormulaKsCase { pub(super) name: &'static str, pub(super) x: (usize, u64, u64, f64), pub(super) y: (usize, u64, u64, f64), pub(super) statistic: f64, pub(super) p_value: f64 }")
p("pub(super) struct HodgesLehmannCase { pub(super) name: &'static str, pub(super) x: &'static [f64], pub(super) y: &'static [f64], pub(super) confidence: f64, pub(super) estimate: f64, pub(super) lower: f64, pub(super) upper: f64 }")
p("pub(super) struct PsiCase { pub(super) name: &'static str, pub(super) expected: &'static [f64], pub(super) actual: &'static [f64], pub(super) bins: usize, pub(super) psi: f64 }")
p("pub(super) struct SpreadCase { pub(super) name: &'static str, pub(super) x: &'static [f64], pub(super) y: &'static [f64], pub(super) p_value: f64, pub(super) mad_ratio: f64 }")
p("")

mw_cases = [
    ("small, no ties", normal(10, 2, 10), normal(11, 2, 12)),
    ("with ties", np.round(normal(5, 1, 25), 1), np.round(normal(5.3, 1, 30), 1)),
    ("shifted latency", lognormal(-1.0, 0.3, 40), lognormal(-0.7, 0.3, 35)),
    ("same distribution", normal(0, 1, 60), normal(0, 1, 80)),
    ("heavy ties, integers", integers(0, 5, 200), integers(0, 6, 150)),
    ("far apart, tiny p", normal(0, 1, 50), normal(6, 1, 50)),
]
p("pub(super) const MANN_WHITNEY: &[MannWhitneyCase] = &[")
for name, x, y in mw_cases:
    r = stats.mannwhitneyu(x, y, alternative="two-sided", method="asymptotic")
    p(f"    MannWhitneyCase {{ name: {name!r}, x: {arr(x)}, y: {arr(y)}, u: {float(r.statistic)!r}, p_value: {float(r.pvalue)!r} }},".replace("'", '"'))
p("];")
p("")

ks_cases = [
    ("equal sizes", normal(0, 1, 20), normal(0.8, 1, 20)),
    ("unequal sizes", normal(0, 1, 30), normal(0.5, 1.5, 45)),
    ("ties", np.round(normal(0, 1, 40), 1), np.round(normal(0.2, 1, 50), 1)),
    ("identical", np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])),
    ("prediction scores", np.round(rng.beta(2, 5, 300), 3), np.round(rng.beta(2.4, 5, 250), 3)),
    ("tiny p", normal(0, 1, 100), normal(2, 1, 120)),
    ("coprime sizes", normal(0, 1, 37), normal(0.3, 1, 41)),
]
p("pub(super) const KOLMOGOROV_SMIRNOV: &[KsCase] = &[")
for name, x, y in ks_cases:
    r = stats.ks_2samp(x, y, method="auto")
    exact = max(len(x), len(y)) <= 10000
    p(f"    KsCase {{ name: {name!r}, x: {arr(x)}, y: {arr(y)}, statistic: {float(r.statistic)!r}, p_value: {float(r.pvalue)!r}, exact: {str(exact).lower()} }},".replace("'", '"'))
p("];")
p("")

# Above SciPy's exact limit: data from an exact formula so the test need not embed 23,000 values.
fx = (12000, 7919, 10007, 0.0)
fy = (11000, 104729, 10009, 0.01)
x = formula(*fx)
y = formula(*fy)
r = stats.ks_2samp(x, y, method="auto")
m, n = sorted([float(len(x)), float(len(y))], reverse=True)
en = m * n / (m + n)
expected = stats.kstwobign.sf(math.sqrt(en) * r.statistic)
p(f"// scipy.stats.ks_2samp(method='auto') says p = {float(r.pvalue)!r} here (kstwo.sf(d, round(en))).")
p("pub(super) const FORMULA_KS: &[FormulaKsCase] = &[")
p(f"    FormulaKsCase {{ name: \"above the exact limit\", x: {fx!r}, y: {fy!r}, statistic: {float(r.statistic)!r}, p_value: {float(expected)!r} }},")
p("];")
p("")

hl_cases = [
    ("small", normal(10, 2, 10), normal(11, 2, 12), 0.98),
    ("odd count", normal(1, 1, 7), normal(0, 1, 9), 0.95),
    ("ties", np.round(normal(5, 1, 25), 1), np.round(normal(5.3, 1, 30), 1), 0.98),
    ("latency", lognormal(-1.0, 0.3, 40), lognormal(-0.7, 0.3, 35), 0.98),
    ("tiny samples", np.array([1.0, 2.0]), np.array([1.5]), 0.98),
]
p("pub(super) const HODGES_LEHMANN: &[HodgesLehmannCase] = &[")
for name, x, y, conf in hl_cases:
    d = np.sort(np.subtract.outer(x, y).ravel())
    est = np.median(d)
    z = stats.norm.ppf((1 + conf) / 2)
    n1, n2 = len(x), len(y)
    k = math.floor(n1 * n2 / 2 - z * math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12))
    k = min(max(k, 1), len(d))
    lower, upper = d[k - 1], d[len(d) - k]
    p(f"    HodgesLehmannCase {{ name: {name!r}, x: {arr(x)}, y: {arr(y)}, confidence: {conf!r}, estimate: {float(est)!r}, lower: {float(lower)!r}, upper: {float(upper)!r} }},".replace("'", '"'))
p("];")
p("")


def psi(expected, actual, bins):
    inner = np.quantile(expected, np.arange(1, bins) / bins)
    def shares(v):
        counts = np.bincount(np.searchsorted(inner, v, side="right"), minlength=bins)
        return np.maximum(counts / len(v), 1e-4)
    e, a = shares(expected), shares(actual)
    return float(np.sum((a - e) * np.log(a / e)))


psi_cases = [
    ("same distribution", normal(0, 1, 500), normal(0, 1, 400), 10),
    ("shifted", normal(0, 1, 500), normal(0.5, 1, 400), 10),
    ("empty bins", np.round(rng.beta(2, 5, 300), 2), np.round(rng.beta(5, 2, 200), 2), 10),
    ("few bins, ties", integers(0, 4, 100), integers(0, 5, 80), 4),
]
p("pub(super) const PSI: &[PsiCase] = &[")
for name, e, a, bins in psi_cases:
    p(f"    PsiCase {{ name: {name!r}, expected: {arr(e)}, actual: {arr(a)}, bins: {bins}, psi: {psi(e, a, bins)!r} }},".replace("'", '"'))
p("];")
p("")

spread_cases = [
    ("same spread", normal(1, 0.1, 40), normal(1, 0.1, 40)),
    ("three times the variance", normal(1, 0.1 * math.sqrt(3), 40), normal(1, 0.1, 40)),
    ("ties", np.round(normal(5, 2, 50), 0), np.round(normal(5, 1, 50), 0)),
]
p("pub(super) const SPREAD: &[SpreadCase] = &[")
for name, x, y in spread_cases:
    dx = np.abs(x - np.median(x))
    dy = np.abs(y - np.median(y))
    r = stats.mannwhitneyu(dx, dy, alternative="two-sided", method="asymptotic")
    ratio = float(np.median(dx) / np.median(dy))
    p(f"    SpreadCase {{ name: {name!r}, x: {arr(x)}, y: {arr(y)}, p_value: {float(r.pvalue)!r}, mad_ratio: {ratio!r} }},".replace("'", '"'))
p("];")
p("")

zs = [0.0, 0.3, 0.5, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0]
p("pub(super) const KSTWOBIGN_SF: &[(f64, f64)] = &[" + ", ".join(f"({z!r}, {float(stats.kstwobign.sf(z))!r})" for z in zs) + "];")
ps = [1e-12, 1e-6, 0.001, 0.01, 0.02425, 0.1, 0.5, 0.9, 0.975, 0.99, 0.999999]
p("pub(super) const NORM_PPF: &[(f64, f64)] = &[" + ", ".join(f"({q!r}, {float(stats.norm.ppf(q))!r})" for q in ps) + "];")
zz = [-3.0, -1.0, 0.0, 0.5, 1.959963984540054, 3.0, 6.0, 10.0, 20.0]
p("pub(super) const NORM_SF: &[(f64, f64)] = &[" + ", ".join(f"({z!r}, {float(stats.norm.sf(z))!r})" for z in zz) + "];")

print("\n".join(out))
