//! Pure statistics for comparing a canary with its baseline: Mann-Whitney U, the Hodges-Lehmann
//! shift with its confidence interval, the two-sample Kolmogorov-Smirnov test, the population
//! stability index (PSI) and a rank-based spread test.
//!
//! Every function takes plain slices and returns `None` when the input cannot be judged (an
//! empty sample or a NaN), never panics and does no I/O. Results equal SciPy's to 1e-9 on the
//! cases recorded in `scipy_cases.rs` (generated once by `tests/data/scipy_cases.py`):
//!
//! - [`mann_whitney_u`] is `scipy.stats.mannwhitneyu(x, y, method="asymptotic")`: the normal
//!   approximation with tie and continuity correction. SciPy's default `method="auto"` picks
//!   exactly this whenever both samples have more than 8 values or there are ties; the compare
//!   judge requires at least `min_samples` (default 10) values per side, so it never reaches
//!   SciPy's exact branch.
//! - [`ks_2samp`] is `scipy.stats.ks_2samp(x, y)` with SciPy's own `method="auto"` choice: the
//!   exact lattice-path probability while the larger sample has at most 10,000 values, else the
//!   asymptotic Kolmogorov distribution. One documented difference: for the asymptotic branch
//!   SciPy evaluates `kstwo.sf(d, round(en))`, the finite-n distribution, while we evaluate
//!   Smirnov's limit `kstwobign.sf(sqrt(en) * d)`; both are approximations of the same exact
//!   value and agree to about 1e-3 at those sizes.
//! - [`hodges_lehmann`] (no SciPy equivalent) equals NumPy's median of all pairwise differences
//!   and their order statistics, computed without materialising the `n1 × n2` differences, by a
//!   sampling selection in the implicit sorted matrix (Monahan 1984, "Fast computation of the
//!   Hodges-Lehmann location estimator", ACM TOMS 10(3); Floyd and Rivest 1975, "Expected time
//!   bounds for selection", CACM 18(3); Johnson and Mizoguchi 1978 for the matrix view).
//!
//! The normal distribution uses `libm::erfc` (musl's implementation) rather than a hand-written
//! approximation: a 1e-9 agreement with SciPy needs a correctly rounded tail.

#[cfg(test)]
mod scipy_cases;

/// Mann-Whitney U test result (two-sided).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MannWhitney {
    /// `U1`: the U statistic of the first sample, as SciPy reports it.
    pub u: f64,
    /// The standardised statistic (continuity-corrected), from `max(U1, U2)`.
    pub z: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Two-sided Mann-Whitney U test of `x` against `y`: normal approximation with tie correction
/// and continuity correction (SciPy's `method="asymptotic"`). `None` if a sample is empty or
/// holds a NaN.
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> Option<MannWhitney> {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return None;
    }
    Some(mann_whitney_sorted(&sorted(x), &sorted(y)))
}

/// [`mann_whitney_u`] on samples already sorted (by [`sorted`]), non-empty and NaN-free.
pub(crate) fn mann_whitney_sorted(x: &[f64], y: &[f64]) -> MannWhitney {
    mann_whitney_with(x, y, below_without_cross_ties(x, y).as_deref())
}

/// [`mann_whitney_sorted`] and [`ks_sorted`] together, sharing their one counting pass.
pub(crate) fn mann_whitney_and_ks_sorted(x: &[f64], y: &[f64]) -> (MannWhitney, KolmogorovSmirnov) {
    let below = below_without_cross_ties(x, y);
    (
        mann_whitney_with(x, y, below.as_deref()),
        ks_with(x, y, below.as_deref()),
    )
}

/// `below`: per `x_i` the number of `y` below it, when no value is in both samples.
fn mann_whitney_with(x: &[f64], y: &[f64], below: Option<&[usize]>) -> MannWhitney {
    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let (rank_sum_x, tie_term) = rank_sum_sorted(x, y, below);
    let u1 = rank_sum_x - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let u = u1.max(u2);
    let n = n1 + n2;
    let mu = n1 * n2 / 2.0;
    let s = (n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    // All values equal: no evidence of a difference at all (SciPy's arithmetic gives z = -inf
    // and clips the p-value to 1 too).
    if s <= 0.0 || s.is_nan() {
        return MannWhitney {
            u: u1,
            z: f64::NEG_INFINITY,
            p_value: 1.0,
        };
    }
    let z = (u - mu - 0.5) / s;
    let p_value = (2.0 * normal_sf(z)).clamp(0.0, 1.0);
    MannWhitney { u: u1, z, p_value }
}

/// The sum of `x`'s ranks in the pooled sample (average ranks for ties) and the tie term
/// `Σ (t³ - t)` over groups of tied values, by merging the two sorted samples: `O(n1 + n2)`.
/// Tie groups are visited in ascending order, so the sums are the same floating-point sums a
/// sort of the pooled sample gives.
fn rank_sum_sorted(x: &[f64], y: &[f64], below: Option<&[usize]>) -> (f64, f64) {
    // Without ties across the samples, `x_i`'s rank is `i + 1 + #{y < x_i}` and ties within one
    // sample do not change the sum of its ranks; every term is an integer, so the sum is exact
    // and equals the merge's. The tie term then comes from each sample's own runs.
    if let Some(below) = below {
        let ranks: u64 = below
            .iter()
            .enumerate()
            .map(|(i, b)| (i + 1 + b) as u64)
            .sum();
        return (ranks as f64, run_tie_term(x) + run_tie_term(y));
    }
    merge_rank_sum(x, y)
}

/// [`rank_sum_sorted`] by merging, for samples with values in common.
fn merge_rank_sum(x: &[f64], y: &[f64]) -> (f64, f64) {
    let mut rank_sum_x = 0.0;
    let mut tie_term = 0.0;
    let (mut i, mut j) = (0usize, 0usize);
    while i < x.len() || j < y.len() {
        let value = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.min(*b),
            (Some(a), None) => *a,
            (None, Some(b)) => *b,
            (None, None) => break,
        };
        let start = i + j;
        let from_x = i;
        // -0.0 and 0.0 are the same value for ranking, as in NumPy.
        while i < x.len() && x[i] == value {
            i += 1;
        }
        while j < y.len() && y[j] == value {
            j += 1;
        }
        let end = i + j;
        let ties = (end - start) as f64;
        // Ranks start + 1 ..= end, averaged.
        let rank = (start + 1 + end) as f64 / 2.0;
        rank_sum_x += rank * (i - from_x) as f64;
        tie_term += ties * ties * ties - ties;
    }
    (rank_sum_x, tie_term)
}

/// The Hodges-Lehmann shift estimate of `x` relative to `y` with its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HodgesLehmann {
    /// The median of all differences `x_i - y_j`.
    pub estimate: f64,
    /// Lower end of the confidence interval.
    pub lower: f64,
    /// Upper end of the confidence interval.
    pub upper: f64,
}

/// The Hodges-Lehmann estimate of the shift `x - y` and its distribution-free confidence
/// interval at `confidence` (e.g. 0.98).
///
/// The estimate is the median of the `n1·n2` pairwise differences (the mean of the two middle
/// ones when their number is even). The interval is Moses' order-statistic interval
/// `[D(k), D(n1·n2 + 1 - k)]` with `k = floor(n1·n2/2 - z·sqrt(n1·n2·(n1 + n2 + 1)/12))`,
/// `z` the normal quantile at `(1 + confidence)/2`, and `k` at least 1. The differences are
/// never materialised: a sampling selection in the implicit matrix of differences finds each
/// order statistic with a few linear counting passes (module docs; `kth_differences`).
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Option<HodgesLehmann> {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return None;
    }
    hodges_lehmann_sorted(&sorted(x), &sorted(y), confidence)
}

/// [`hodges_lehmann`] on samples already sorted (by [`sorted`]), non-empty and NaN-free.
pub(crate) fn hodges_lehmann_sorted(
    x: &[f64],
    y: &[f64],
    confidence: f64,
) -> Option<HodgesLehmann> {
    if x.is_empty() || y.is_empty() || !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    let n1 = x.len() as f64;
    let n2 = y.len() as f64;
    let total = x.len() as u64 * y.len() as u64;
    let first = first_sample(x, y);
    let estimate = if total % 2 == 1 {
        kth_differences(x, y, total / 2 + 1, total / 2 + 1, &first).0
    } else {
        let (low, high) = kth_differences(x, y, total / 2, total / 2 + 1, &first);
        (low + high) / 2.0
    };
    let z = normal_quantile((1.0 + confidence) / 2.0);
    let k = (n1 * n2 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let k = if k < 1.0 { 1 } else { (k as u64).min(total) };
    Some(HodgesLehmann {
        estimate,
        lower: kth_differences(x, y, k, k, &first).0,
        upper: kth_differences(x, y, total + 1 - k, total + 1 - k, &first).0,
    })
}

/// Differences drawn once for the first round of every [`kth_differences`] of one estimate: a
/// systematic sample of [`FIRST_SAMPLE_SIZE`] over the whole matrix, sorted, so the first
/// bracket of each wanted rank is read off by index. Empty when the matrix is small enough to
/// enumerate.
fn first_sample(x: &[f64], y: &[f64]) -> Vec<f64> {
    let (n1, n2) = (x.len() as u64, y.len() as u64);
    let total = n1 * n2;
    if total <= ENUMERATE_LIMIT {
        return Vec::new();
    }
    let spacing = total as f64 / FIRST_SAMPLE_SIZE as f64;
    let drawn: Vec<f64> = (0..FIRST_SAMPLE_SIZE)
        .map(|s| {
            let position = (((s as f64 + 0.5) * spacing) as u64).min(total - 1);
            let (i, j) = (position / n2, position % n2);
            x[i as usize] - y[j as usize]
        })
        .collect();
    sorted(&drawn)
}

/// Candidates at or below this many are enumerated and selected directly.
const ENUMERATE_LIMIT: u64 = 100_000;
/// Candidates an interpolation round aims its bracket at.
const INTERPOLATED: u64 = 40_000;
/// Random candidates drawn per round to bracket the wanted ranks.
const SAMPLE_SIZE: usize = 32_768;
/// Differences in the shared first-round sample (see [`first_sample`]).
const FIRST_SAMPLE_SIZE: usize = 65_536;
/// Half-width of the bracket around the wanted rank, in binomial standard deviations of the
/// sample: the wanted value falls outside it with probability about 5e-4 per side, which only
/// costs another round.
const BRACKET_SD: f64 = 3.5;

/// The `low`-th and `high`-th smallest (1-based, `high` is `low` or `low + 1`) of the
/// differences `x_i - y_j`; both inputs sorted and non-empty, `1 <= low <= high <= n1·n2`.
///
/// A selection in the implicit sorted matrix of differences (row `i` is ascending in `-y`), in
/// the spirit of Monahan's (1984) algorithm for the Hodges-Lehmann estimator and of Floyd and
/// Rivest's (1975) sampling selection: each row keeps a range of candidates; a round draws
/// [`SAMPLE_SIZE`] candidates (a systematic sample from a random start; the first round reads a
/// sample shared by all order statistics of one estimate), takes the two sample order statistics
/// that bracket the wanted rank with high probability, and narrows every row's range to the
/// bracket with one `O(n1 + n2)` counting pass for both ends. Each sampling round keeps about
/// `7/sqrt(m)` of the candidates; once both bounds are known, up to two interpolation rounds
/// aim a bracket of about [`INTERPOLATED`] candidates at the rank's linear interpolation between
/// them, which usually catches it at once. The last candidates (at most [`ENUMERATE_LIMIT`]) are
/// enumerated and selected with `select_nth_unstable`. The answer is exact: the bounds are
/// exact counts and sampling only decides how fast they close. The random stream is seeded, so
/// the work is deterministic too. Should a round make no progress (heavy ties), the exact
/// bit-pattern bisection [`kth_difference_bisect`] finishes the job.
fn kth_differences(x: &[f64], y: &[f64], low: u64, high: u64, first: &[f64]) -> (f64, f64) {
    let (n1, n2) = (x.len(), y.len());
    // Row i's candidates are its `t`-th smallest differences for `t` in `lower[i]..upper[i]`,
    // where the `t`-th smallest is `x[i] - y[n2 - 1 - t]`.
    let mut lower = vec![0usize; n1];
    let mut upper = vec![n2; n1];
    let mut counts = vec![0usize; n1];
    let mut counts_b = vec![0usize; n1];
    let mut rng = SplitMix(0x005e_ed0f_5117_a7a7);
    let mut below: u64 = 0;
    let mut candidates: u64 = n1 as u64 * n2 as u64;
    let value = |i: usize, t: usize| x[i] - y[n2 - 1 - t];
    // The values whose exact counts set the current bounds: every candidate lies in
    // `(floor, ceiling]`. Known on both sides, they allow an interpolation round.
    let (mut floor, mut ceiling) = (f64::NAN, f64::NAN);
    let mut interpolations = 0;
    for round in 0..16 {
        if candidates <= ENUMERATE_LIMIT {
            let mut values = Vec::with_capacity(candidates as usize);
            for i in 0..n1 {
                values.extend((lower[i]..upper[i]).map(|t| value(i, t)));
            }
            let rank = (low - below - 1) as usize;
            if rank >= values.len() {
                break;
            }
            let (_, nth, rest) = values.select_nth_unstable_by(rank, f64::total_cmp);
            let found = *nth;
            let second = if high > low {
                rest.iter().copied().min_by(f64::total_cmp).unwrap_or(found)
            } else {
                found
            };
            return (found, second);
        }
        let rank_low = (low - below) as f64 / candidates as f64;
        let rank_high = (high - below) as f64 / candidates as f64;
        // 1-based positions in a sample of `m` that bracket the wanted ranks.
        let bracket = |m: usize| {
            let mf = m as f64;
            let sd = |q: f64| BRACKET_SD * (mf * q * (1.0 - q)).sqrt() + 1.0;
            let a = (rank_low * mf - sd(rank_low)).floor();
            let b = (rank_high * mf + sd(rank_high)).ceil();
            (
                (a >= 1.0).then_some(a as usize),
                (b <= mf).then_some(b as usize),
            )
        };
        let mut ends = Vec::with_capacity(3);
        if interpolations < 2 && floor.is_finite() && ceiling.is_finite() && floor < ceiling {
            // Regula falsi on the exact counts: the differences between two close bounds are
            // nearly uniform in value, so the wanted rank sits near its linear interpolation;
            // a bracket sized for about `INTERPOLATED` candidates usually catches it in one
            // pass, where a sampling round would need two. A miss still moves one bound.
            interpolations += 1;
            let width = ceiling - floor;
            let at = |rank: f64| floor + width * (rank - 0.5 / candidates as f64);
            let half = width * (INTERPOLATED as f64 / 2.0) / candidates as f64;
            ends.push(at(rank_low) - half);
            ends.push(at(rank_high) + half);
        } else if round == 0 && !first.is_empty() {
            let (a, b) = bracket(first.len());
            ends.extend(a.map(|a| first[a - 1]));
            ends.extend(b.map(|b| first[b - 1]));
        } else {
            // A systematic sample of the candidates in (row, column) order, from a random
            // offset: positions `(s + u)·candidates/m` walked against the rows' running widths,
            // so the sample costs one pass over the rows and no sorting of positions.
            let spacing = candidates as f64 / SAMPLE_SIZE as f64;
            let offset = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            let mut sample = Vec::with_capacity(SAMPLE_SIZE);
            let (mut row, mut before_row) = (0usize, 0u64);
            for s in 0..SAMPLE_SIZE {
                let position = (((s as f64 + offset) * spacing) as u64).min(candidates - 1);
                while row < n1 && before_row + (upper[row] - lower[row]) as u64 <= position {
                    before_row += (upper[row] - lower[row]) as u64;
                    row += 1;
                }
                if row == n1 {
                    break;
                }
                sample.push(value(row, lower[row] + (position - before_row) as usize));
            }
            if sample.len() < SAMPLE_SIZE {
                break;
            }
            let (a, b) = bracket(SAMPLE_SIZE);
            if let Some(a) = a {
                let (_, a, _) = sample.select_nth_unstable_by(a - 1, f64::total_cmp);
                ends.push(*a);
            }
            if let Some(b) = b {
                let (_, b, _) = sample.select_nth_unstable_by(b - 1, f64::total_cmp);
                ends.push(*b);
            }
        }
        if let [a, b] = ends[..]
            && a.total_cmp(&b).is_eq()
        {
            // All of the bracket is one value: also count strictly below it, so a block of
            // ties is either kept whole or dropped whole.
            ends.insert(0, from_order_key(order_key(a).saturating_sub(1)));
        }
        let before = candidates;
        // Two ends are counted in one pass (twice the independent chains to overlap).
        for pair in ends.chunks(2) {
            let mut totals = [(0u64, false); 2];
            let used = if let [a, b] = pair {
                let (total_a, total_b) =
                    counts_at_most_pair(x, y, *a, *b, &mut counts, &mut counts_b);
                totals = [(total_a, false), (total_b, true)];
                2
            } else {
                totals[0] = (counts_at_most(x, y, pair[0], &mut counts), false);
                1
            };
            for (total, second) in totals.into_iter().take(used) {
                let counts = if second { &counts_b } else { &counts };
                let end = pair[usize::from(second)];
                if total < low {
                    floor = if floor.is_nan() { end } else { floor.max(end) };
                } else if total >= high {
                    ceiling = if ceiling.is_nan() {
                        end
                    } else {
                        ceiling.min(end)
                    };
                }
                if total < low {
                    for (bound, count) in lower.iter_mut().zip(counts) {
                        *bound = (*bound).max(*count);
                    }
                } else if total >= high {
                    for (bound, count) in upper.iter_mut().zip(counts) {
                        *bound = (*bound).min(*count);
                    }
                }
            }
        }
        below = lower.iter().map(|l| *l as u64).sum();
        candidates = upper.iter().map(|u| *u as u64).sum::<u64>() - below;
        if candidates == before {
            break;
        }
    }
    (
        kth_difference_bisect(x, y, low),
        kth_difference_bisect(x, y, high),
    )
}

/// Per row `i`, how many differences `x_i - y_j` are `<= v` (into `counts`), and their total.
/// Rounding is monotone, so for sorted inputs the qualifying `j` for each `i` form a suffix of
/// `y` whose start never moves left as `i` grows: one pass over both samples.
fn counts_at_most(x: &[f64], y: &[f64], v: f64, counts: &mut [usize]) -> u64 {
    staircase(x, y, |xi, yj| xi - yj > v, counts);
    let n2 = y.len();
    let mut total = 0u64;
    for count in counts.iter_mut() {
        *count = n2 - *count;
        total += *count as u64;
    }
    total
}

/// [`counts_at_most`] at `a` into `counts_a` and at `b` into `counts_b`, in one pass: the two
/// merges' dependency chains interleave.
fn counts_at_most_pair(
    x: &[f64],
    y: &[f64],
    a: f64,
    b: f64,
    counts_a: &mut [usize],
    counts_b: &mut [usize],
) -> (u64, u64) {
    const LANES: usize = 4;
    let (n1, n2) = (x.len(), y.len());
    let block = n1.div_ceil(LANES).max(1);
    let ends: [usize; LANES] = std::array::from_fn(|lane| ((lane + 1) * block).min(n1));
    let starts: [usize; LANES] = std::array::from_fn(|lane| (lane * block).min(n1));
    let start_col = |v: f64, lane: usize| {
        x.get(starts[lane])
            .map(|first| y.partition_point(|yj| first - yj > v))
            .unwrap_or(0)
    };
    let (mut row_a, mut row_b) = (starts, starts);
    let mut col_a: [usize; LANES] = std::array::from_fn(|lane| start_col(a, lane));
    let mut col_b: [usize; LANES] = std::array::from_fn(|lane| start_col(b, lane));
    let live = |row: &[usize; LANES], col: &[usize; LANES], lane: usize| {
        row[lane] < ends[lane] && col[lane] < n2
    };
    while (0..LANES).all(|lane| live(&row_a, &col_a, lane) && live(&row_b, &col_b, lane)) {
        for lane in 0..LANES {
            let (i, j) = (row_a[lane], col_a[lane]);
            let moves = usize::from(x[i] - y[j] > a);
            counts_a[i] = j;
            col_a[lane] = j + moves;
            row_a[lane] = i + 1 - moves;
            let (i, j) = (row_b[lane], col_b[lane]);
            let moves = usize::from(x[i] - y[j] > b);
            counts_b[i] = j;
            col_b[lane] = j + moves;
            row_b[lane] = i + 1 - moves;
        }
    }
    for (v, row, col, out) in [
        (a, &mut row_a, &mut col_a, &mut *counts_a),
        (b, &mut row_b, &mut col_b, &mut *counts_b),
    ] {
        for lane in 0..LANES {
            while row[lane] < ends[lane] && col[lane] < n2 {
                let (i, j) = (row[lane], col[lane]);
                let moves = usize::from(x[i] - y[j] > v);
                out[i] = j;
                col[lane] = j + moves;
                row[lane] = i + 1 - moves;
            }
            out[row[lane]..ends[lane]].fill(col[lane]);
        }
    }
    let mut totals = (0u64, 0u64);
    for count in counts_a.iter_mut() {
        *count = n2 - *count;
        totals.0 += *count as u64;
    }
    for count in counts_b.iter_mut() {
        *count = n2 - *count;
        totals.1 += *count as u64;
    }
    totals
}

/// For sorted `x` and `y` and a predicate `advance(x_i, y_j)` that holds for a prefix of `y`
/// whose length never shrinks as `i` grows, that prefix's length per row, into `out`.
///
/// A branch-free merge: each step either moves to the next `y` or closes row `i`. One merge
/// is a chain of dependent loads, so the rows are cut into `LANES` blocks merged side by side
/// (each block's start found by binary search) and the processor overlaps the independent
/// chains. Together this is several times faster than the plain nested loop, whose cost was a
/// mispredicted branch per row.
fn staircase(x: &[f64], y: &[f64], advance: impl Fn(f64, f64) -> bool, out: &mut [usize]) {
    const LANES: usize = 4;
    let (n1, n2) = (x.len(), y.len());
    let block = n1.div_ceil(LANES).max(1);
    let mut row = [0usize; LANES];
    let mut end = [0usize; LANES];
    let mut col = [0usize; LANES];
    for lane in 0..LANES {
        row[lane] = (lane * block).min(n1);
        end[lane] = ((lane + 1) * block).min(n1);
        if let Some(first) = x.get(row[lane]) {
            col[lane] = y.partition_point(|yj| advance(*first, *yj));
        }
    }
    let mut step = |lane: usize, row: &mut [usize; LANES], col: &mut [usize; LANES]| {
        let (i, j) = (row[lane], col[lane]);
        let moves = usize::from(advance(x[i], y[j]));
        out[i] = j;
        col[lane] = j + moves;
        row[lane] = i + 1 - moves;
    };
    while (0..LANES).all(|lane| row[lane] < end[lane] && col[lane] < n2) {
        for lane in 0..LANES {
            step(lane, &mut row, &mut col);
        }
    }
    for lane in 0..LANES {
        while row[lane] < end[lane] && col[lane] < n2 {
            step(lane, &mut row, &mut col);
        }
    }
    for lane in 0..LANES {
        let (from, to) = (row[lane], end[lane]);
        out[from..to].fill(col[lane]);
    }
}

/// Per `x_i`, how many `y` lie strictly below it; `None` when some `x_i` equals some `y_j`
/// (a tie across the samples, which the fast paths below leave to the merge).
fn below_without_cross_ties(x: &[f64], y: &[f64]) -> Option<Vec<usize>> {
    let mut below = vec![0usize; x.len()];
    staircase(x, y, |xi, yj| yj < xi, &mut below);
    let tied = x
        .iter()
        .zip(&below)
        .any(|(xi, j)| y.get(*j).is_some_and(|yj| yj == xi));
    (!tied).then_some(below)
}

/// `Σ (t³ - t)` over runs of equal values in sorted `values`.
fn run_tie_term(values: &[f64]) -> f64 {
    let mut term = 0.0;
    let mut start = 0;
    while start < values.len() {
        let mut end = start + 1;
        while end < values.len() && values[end] == values[start] {
            end += 1;
        }
        let ties = (end - start) as f64;
        term += ties * ties * ties - ties;
        start = end;
    }
    term
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny seeded stream for the sampling selection.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The `k`-th smallest (1-based) of the differences `x_i - y_j`, both inputs sorted and
/// non-empty, `1 <= k <= x.len() * y.len()`, by bisection over the total order of `f64` bit
/// patterns for the smallest value `v` with at least `k` differences `<= v`: since every
/// difference is itself an `f64`, that `v` *is* the k-th difference, exactly, after at most 64
/// counting passes. The fallback of [`kth_differences`], and its oracle in tests.
fn kth_difference_bisect(x: &[f64], y: &[f64], k: u64) -> f64 {
    let (Some(x_first), Some(x_last), Some(y_first), Some(y_last)) =
        (x.first(), x.last(), y.first(), y.last())
    else {
        return f64::NAN;
    };
    let mut low = order_key(x_first - y_last);
    let mut high = order_key(x_last - y_first);
    while low < high {
        let mid = low + (high - low) / 2;
        if count_at_most(x, y, from_order_key(mid)) >= k {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    from_order_key(low)
}

/// How many differences `x_i - y_j` are `<= v` (see [`counts_at_most`]).
fn count_at_most(x: &[f64], y: &[f64], v: f64) -> u64 {
    let mut count = 0u64;
    let mut j = 0;
    for xi in x {
        while j < y.len() && xi - y[j] > v {
            j += 1;
        }
        count += (y.len() - j) as u64;
    }
    count
}

/// Maps an `f64` to a `u64` whose unsigned order is the floats' total order.
fn order_key(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

fn from_order_key(key: u64) -> f64 {
    if key >> 63 == 1 {
        f64::from_bits(key & !(1 << 63))
    } else {
        f64::from_bits(!key)
    }
}

/// Two-sample Kolmogorov-Smirnov test result (two-sided).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KolmogorovSmirnov {
    /// The largest distance between the two empirical distribution functions.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Whether the p-value is exact (lattice paths) or asymptotic (Kolmogorov distribution).
    pub exact: bool,
}

/// Largest sample size for the exact p-value, as SciPy's `MAX_AUTO_N`.
const KS_MAX_EXACT: usize = 10_000;

/// Two-sided two-sample Kolmogorov-Smirnov test with SciPy's `method="auto"` choice (see the
/// module docs). `None` if a sample is empty or holds a NaN.
pub fn ks_2samp(x: &[f64], y: &[f64]) -> Option<KolmogorovSmirnov> {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return None;
    }
    Some(ks_sorted(&sorted(x), &sorted(y)))
}

/// [`ks_2samp`] on samples already sorted (by [`sorted`]), non-empty and NaN-free.
pub(crate) fn ks_sorted(x: &[f64], y: &[f64]) -> KolmogorovSmirnov {
    ks_with(x, y, below_without_cross_ties(x, y).as_deref())
}

/// `below` as for [`mann_whitney_with`].
fn ks_with(x: &[f64], y: &[f64], below: Option<&[usize]>) -> KolmogorovSmirnov {
    let n1 = x.len() as u64;
    let n2 = y.len() as u64;
    // D·lcm(n1, n2) is the integer max |k1·n2 - k2·n1| / gcd, with k1, k2 the counts of each
    // sample at or below a pooled value: exact, with no floating-point rounding of the ECDFs.
    let g = gcd(n1, n2);
    let mut widest: u64 = 0;
    let fast = match below {
        Some(below) => {
            // No value in both samples: the ECDFs differ most just after some `x_i` (x ahead)
            // or just before one (y ahead); ties within a sample only lower other candidates.
            for (i, b) in below.iter().enumerate() {
                let (i, b) = (i as u64, *b as u64);
                widest = widest
                    .max(((i + 1) * n2).saturating_sub(b * n1))
                    .max((b * n1).saturating_sub(i * n2));
            }
            true
        }
        None => false,
    };
    let (mut i, mut j) = (0usize, 0usize);
    while !fast && (i < x.len() || j < y.len()) {
        // Step past the next distinct value in both samples at once (ties move together).
        let next = match (x.get(i), y.get(j)) {
            (Some(a), Some(b)) => a.min(*b),
            (Some(a), None) => *a,
            (None, Some(b)) => *b,
            (None, None) => break,
        };
        while i < x.len() && x[i] <= next {
            i += 1;
        }
        while j < y.len() && y[j] <= next {
            j += 1;
        }
        widest = widest.max((i as u64 * n2).abs_diff(j as u64 * n1));
    }
    // One division at the end instead of one per step.
    let widest = widest / g;
    let lcm = (n1 / g) * n2;
    let statistic = widest as f64 / lcm as f64;
    if x.len().max(y.len()) <= KS_MAX_EXACT {
        let p_value = if widest == 0 {
            1.0
        } else {
            ks_outside_probability(n1, n2, g, widest)
        };
        KolmogorovSmirnov {
            statistic,
            p_value: p_value.clamp(0.0, 1.0),
            exact: true,
        }
    } else {
        let (m, n) = (n1.max(n2) as f64, n1.min(n2) as f64);
        let en = m * n / (m + n);
        KolmogorovSmirnov {
            statistic,
            p_value: kolmogorov_sf(en.sqrt() * statistic).clamp(0.0, 1.0),
            exact: false,
        }
    }
}

/// The exact probability that a uniformly random lattice path from (0, 0) to (m, n) touches
/// `|x·n/g - y·m/g| >= h`, i.e. `P(D >= h / lcm)` under the null hypothesis (Hodges 1958).
///
/// Works on the *outside* proportion directly, `g(x, y) = 1` on the boundary and
/// `g(x, y) = (x·g(x-1, y) + y·g(x, y-1)) / (x + y)` inside, so small p-values keep their
/// relative precision instead of being `1 - (1 - p)`.
fn ks_outside_probability(n1: u64, n2: u64, g: u64, h: u64) -> f64 {
    let (m, n) = (n1.max(n2), n1.min(n2));
    let (mg, ng) = (m / g, n / g);
    let outside = |x: u64, y: u64| (x * ng).abs_diff(y * mg) >= h;
    let mut row = vec![0.0f64; n as usize + 1];
    for x in 0..=m {
        for y in 0..=n {
            let idx = y as usize;
            row[idx] = if outside(x, y) {
                1.0
            } else if x == 0 && y == 0 {
                0.0
            } else if x == 0 {
                row[idx - 1]
            } else if y == 0 {
                row[idx]
            } else {
                (x as f64 * row[idx] + y as f64 * row[idx - 1]) / (x + y) as f64
            };
        }
    }
    row[n as usize]
}

/// Survival function of the Kolmogorov distribution (SciPy's `kstwobign.sf`).
pub fn kolmogorov_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    if z <= 0.0 {
        return 1.0;
    }
    if z < 1.0 {
        // The CDF series converges fast for small z: sqrt(2π)/z Σ exp(-(2k-1)²π²/(8z²)).
        let mut sum = 0.0;
        for k in 1..=20 {
            let odd = (2 * k - 1) as f64;
            sum += (-odd * odd * std::f64::consts::PI * std::f64::consts::PI / (8.0 * z * z)).exp();
        }
        1.0 - (2.0 * std::f64::consts::PI).sqrt() / z * sum
    } else {
        // 2 Σ (-1)^(k-1) exp(-2k²z²).
        let mut sum = 0.0;
        for k in 1..=100 {
            let kf = k as f64;
            let term = (-2.0 * kf * kf * z * z).exp();
            if term == 0.0 {
                break;
            }
            sum += if k % 2 == 1 { term } else { -term };
        }
        2.0 * sum
    }
}

/// Population stability index of `actual` against `expected`.
///
/// Bins are the `bins` quantile intervals of `expected` (NumPy's default linear quantiles,
/// `np.quantile(expected, i / bins)`); a value falls in bin `i` when it lies in
/// `[edge_i, edge_(i+1))`, with the outer bins open-ended. Empty bins count as a share of
/// `1e-4` so the logarithm stays finite (the usual convention). Then
/// `PSI = Σ (a_i - e_i) · ln(a_i / e_i)`. Rule of thumb: below 0.1 stable, above 0.2 shifted.
pub fn psi(expected: &[f64], actual: &[f64], bins: usize) -> Option<f64> {
    if expected.is_empty() || actual.is_empty() || bins < 2 || has_nan(expected) || has_nan(actual)
    {
        return None;
    }
    let reference = sorted(expected);
    let inner: Vec<f64> = (1..bins)
        .map(|i| quantile_sorted(&reference, i as f64 / bins as f64))
        .collect();
    let shares = |values: &[f64]| -> Vec<f64> {
        let mut counts = vec![0usize; bins];
        for value in values {
            counts[inner.partition_point(|edge| edge <= value)] += 1;
        }
        counts
            .iter()
            .map(|count| (*count as f64 / values.len() as f64).max(PSI_FLOOR))
            .collect()
    };
    let e = shares(expected);
    let a = shares(actual);
    Some(e.iter().zip(&a).map(|(e, a)| (a - e) * (a / e).ln()).sum())
}

/// The share an empty PSI bin counts as.
const PSI_FLOOR: f64 = 1e-4;

/// A rank-based Brown-Forsythe test: Mann-Whitney U on the absolute deviations of each sample
/// from its own median. A significant result with `x`'s deviations larger means `x` is more
/// spread out, even when both medians agree (the "variance-only" regression Kayenta misses).
///
/// Returns the test on the deviations and the ratio of the median absolute deviations
/// (`MAD(x) / MAD(y)`; infinite when `y`'s MAD is 0 and `x`'s is not, 1 when both are 0).
pub fn spread_test(x: &[f64], y: &[f64]) -> Option<(MannWhitney, f64)> {
    if x.is_empty() || y.is_empty() || has_nan(x) || has_nan(y) {
        return None;
    }
    Some(spread_sorted(&sorted(x), &sorted(y)))
}

/// [`spread_test`] on samples already sorted (by [`sorted`]), non-empty and NaN-free.
pub(crate) fn spread_sorted(x: &[f64], y: &[f64]) -> (MannWhitney, f64) {
    let x_dev = deviations_sorted(x);
    let y_dev = deviations_sorted(y);
    let test = mann_whitney_sorted(&x_dev, &y_dev);
    let (mad_x, mad_y) = (median_sorted(&x_dev), median_sorted(&y_dev));
    let ratio = if mad_y > 0.0 {
        mad_x / mad_y
    } else if mad_x > 0.0 {
        f64::INFINITY
    } else {
        1.0
    };
    (test, ratio)
}

/// The absolute deviations of sorted `values` from their median, sorted, in `O(n)`: below the
/// median they shrink as the values grow, above it they grow, so merging the two runs sorts
/// them (rounding is monotone, so the computed deviations keep that order).
fn deviations_sorted(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let center = median_sorted(values);
    let split = values.partition_point(|v| *v < center);
    // A branch-free merge of the two runs: `below` walks down from the split, `above` up.
    let mut out = vec![0.0; n];
    let (mut below, mut above) = (split, split);
    for slot in out.iter_mut() {
        let has_below = below > 0;
        let has_above = above < n;
        let a = center - values[below.saturating_sub(1)];
        let b = values[above.min(n - 1)] - center;
        let take_below = has_below && (!has_above || a <= b);
        *slot = if take_below { a } else { b };
        below -= usize::from(take_below);
        above += usize::from(!take_below);
    }
    out
}

/// NumPy's median of sorted, non-empty `values`.
pub(crate) fn median_sorted(values: &[f64]) -> f64 {
    quantile_sorted(values, 0.5)
}

/// NumPy's median: the middle value, or the mean of the two middle values. `None` when empty
/// or any value is NaN.
pub fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() || has_nan(values) {
        return None;
    }
    Some(quantile_sorted(&sorted(values), 0.5))
}

/// NumPy's default (linear) quantile of sorted, non-empty `values`.
fn quantile_sorted(values: &[f64], q: f64) -> f64 {
    let last = values.len() - 1;
    let position = q * last as f64;
    let below = position.floor() as usize;
    let above = (below + 1).min(last);
    let fraction = position - below as f64;
    let (low, high) = (values[below], values[above]);
    // NumPy's `_lerp`: exact at both ends.
    let diff = high - low;
    if fraction >= 0.5 {
        high - diff * (1.0 - fraction)
    } else {
        low + diff * fraction
    }
}

/// Standard normal survival function `P(Z > z)` (SciPy's `ndtr(-z)`).
pub fn normal_sf(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// Standard normal quantile (SciPy's `norm.ppf`): Acklam's rational approximation refined by one
/// Halley step against `erfc`, which brings it to full double precision.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const P_LOW: f64 = 0.024_25;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    let mut x = if p < P_LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p <= 1.0 - P_LOW {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    };
    // Halley refinement on the CDF, computed from the tail that keeps precision.
    for _ in 0..2 {
        let cdf = 0.5 * libm::erfc(-x / std::f64::consts::SQRT_2);
        let e = cdf - p;
        let u = e * (2.0 * std::f64::consts::PI).sqrt() * (x * x / 2.0).exp();
        x -= u / (1.0 + x * u / 2.0);
    }
    x
}

fn has_nan(values: &[f64]) -> bool {
    values.iter().any(|v| v.is_nan())
}

/// `values` in ascending total order (`f64::total_cmp`), NaN-free input assumed by callers.
///
/// Above a few hundred values this is an LSD radix sort on the order-preserving bit keys
/// (six passes of 11 bits, skipping digits every key shares): two samples of 100,000 values sort
/// in a fraction of a comparison sort's time, which matters because the comparison judge sorts
/// each side once and runs every test on the sorted samples.
pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    const SMALL: usize = 256;
    const BITS: u32 = 11;
    const BUCKETS: usize = 1 << BITS;
    if values.len() <= SMALL {
        let mut out = values.to_vec();
        out.sort_unstable_by(f64::total_cmp);
        return out;
    }
    let mut keys: Vec<u64> = values.iter().map(|v| order_key(*v)).collect();
    let mut scratch = vec![0u64; keys.len()];
    let passes = 64u32.div_ceil(BITS) as usize;
    let mut histograms = vec![[0usize; BUCKETS]; passes];
    for key in &keys {
        for (pass, histogram) in histograms.iter_mut().enumerate() {
            histogram[((key >> (pass as u32 * BITS)) as usize) & (BUCKETS - 1)] += 1;
        }
    }
    for (pass, histogram) in histograms.iter_mut().enumerate() {
        if histogram.contains(&keys.len()) {
            continue;
        }
        let mut offset = 0;
        for count in histogram.iter_mut() {
            let here = *count;
            *count = offset;
            offset += here;
        }
        for key in &keys {
            let digit = ((key >> (pass as u32 * BITS)) as usize) & (BUCKETS - 1);
            scratch[histogram[digit]] = *key;
            histogram[digit] += 1;
        }
        std::mem::swap(&mut keys, &mut scratch);
    }
    keys.into_iter().map(from_order_key).collect()
}

/// [`sorted`], for the benchmark's breakdown of the comparison's time.
#[doc(hidden)]
pub fn sorted_for_bench(values: &[f64]) -> Vec<f64> {
    sorted(values)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn close(actual: f64, expected: f64, what: &str) {
        let tolerance = 1e-9 * expected.abs().max(1e-300);
        let ok = (actual - expected).abs() <= tolerance.max(1e-300)
            || (actual == expected)
            || (expected.abs() < 1e-300 && actual.abs() < 1e-300);
        assert!(
            ok,
            "{what}: got {actual:e}, SciPy says {expected:e} (relative error {:e})",
            ((actual - expected) / expected).abs()
        );
    }

    #[test]
    fn matches_scipy_mann_whitney() {
        for case in scipy_cases::MANN_WHITNEY {
            let result = mann_whitney_u(case.x, case.y).expect("valid samples");
            close(result.u, case.u, &format!("{} U", case.name));
            close(result.p_value, case.p_value, &format!("{} p", case.name));
        }
    }

    #[test]
    fn matches_scipy_ks_2samp() {
        for case in scipy_cases::KOLMOGOROV_SMIRNOV {
            let result = ks_2samp(case.x, case.y).expect("valid samples");
            close(
                result.statistic,
                case.statistic,
                &format!("{} D", case.name),
            );
            close(result.p_value, case.p_value, &format!("{} p", case.name));
            assert_eq!(result.exact, case.exact, "{} method", case.name);
        }
        let formula = |(n, mult, modulus, offset): (usize, u64, u64, f64)| -> Vec<f64> {
            (0..n as u64)
                .map(|i| (i * mult % modulus) as f64 / modulus as f64 + offset)
                .collect()
        };
        for case in scipy_cases::FORMULA_KS {
            let result = ks_2samp(&formula(case.x), &formula(case.y)).expect("valid samples");
            close(
                result.statistic,
                case.statistic,
                &format!("{} D", case.name),
            );
            close(result.p_value, case.p_value, &format!("{} p", case.name));
            assert!(!result.exact, "{} is above the exact limit", case.name);
        }
    }

    #[test]
    fn matches_scipy_distributions() {
        for (z, sf) in scipy_cases::KSTWOBIGN_SF {
            close(kolmogorov_sf(*z), *sf, &format!("kstwobign.sf({z})"));
        }
        for (p, x) in scipy_cases::NORM_PPF {
            close(normal_quantile(*p), *x, &format!("norm.ppf({p})"));
        }
        for (z, sf) in scipy_cases::NORM_SF {
            close(normal_sf(*z), *sf, &format!("norm.sf({z})"));
        }
    }

    #[test]
    fn matches_numpy_hodges_lehmann_psi_and_spread() {
        for case in scipy_cases::HODGES_LEHMANN {
            let result = hodges_lehmann(case.x, case.y, case.confidence).expect("valid");
            close(
                result.estimate,
                case.estimate,
                &format!("{} estimate", case.name),
            );
            close(result.lower, case.lower, &format!("{} lower", case.name));
            close(result.upper, case.upper, &format!("{} upper", case.name));
        }
        for case in scipy_cases::PSI {
            let value = psi(case.expected, case.actual, case.bins).expect("valid");
            close(value, case.psi, &format!("{} psi", case.name));
        }
        for case in scipy_cases::SPREAD {
            let (test, ratio) = spread_test(case.x, case.y).expect("valid");
            close(
                test.p_value,
                case.p_value,
                &format!("{} spread p", case.name),
            );
            close(ratio, case.mad_ratio, &format!("{} MAD ratio", case.name));
        }
    }

    #[test]
    fn refuses_what_cannot_be_judged() {
        assert_eq!(mann_whitney_u(&[], &[1.0]), None);
        assert_eq!(mann_whitney_u(&[f64::NAN], &[1.0]), None);
        assert_eq!(ks_2samp(&[1.0], &[]), None);
        assert_eq!(hodges_lehmann(&[1.0], &[1.0], 1.0), None);
        assert_eq!(psi(&[1.0, 2.0], &[1.0], 1), None);
        assert_eq!(median(&[]), None);
        let same = mann_whitney_u(&[1.0; 5], &[1.0; 7]).expect("valid");
        assert_eq!(same.p_value, 1.0, "identical constants carry no evidence");
    }

    #[test]
    fn order_keys_round_trip_and_sort() {
        let values = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            f64::INFINITY,
        ];
        for pair in values.windows(2) {
            assert!(order_key(pair[0]) < order_key(pair[1]), "{pair:?}");
        }
        for value in values {
            assert_eq!(from_order_key(order_key(value)).to_bits(), value.to_bits());
        }
    }

    #[test]
    fn kth_difference_equals_brute_force() {
        // A small xorshift stream with ties and negative values.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state % 41) as f64 - 20.0) / 4.0
        };
        let x: Vec<f64> = sorted(&(0..13).map(|_| next()).collect::<Vec<_>>());
        let y: Vec<f64> = sorted(&(0..9).map(|_| next()).collect::<Vec<_>>());
        let mut all: Vec<f64> = x
            .iter()
            .flat_map(|a| y.iter().map(move |b| a - b))
            .collect();
        all.sort_by(f64::total_cmp);
        for k in 1..=all.len() as u64 {
            assert_eq!(
                kth_difference_bisect(&x, &y, k),
                all[k as usize - 1],
                "k = {k}"
            );
            let (low, high) = kth_differences(&x, &y, k, (k + 1).min(all.len() as u64), &[]);
            assert_eq!(low, all[k as usize - 1], "k = {k}");
            assert_eq!(
                high,
                all[(k as usize).min(all.len() - 1)],
                "k + 1 = {}",
                k + 1
            );
        }
    }

    #[test]
    fn sampling_selection_equals_bisection_on_large_samples() {
        // Large enough for several sampling rounds, with ties (values on a grid) and without.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (n1, n2, grid) in [(3000, 2000, 0.0), (2500, 4000, 0.01), (5000, 5000, 1.0)] {
            let mut draw = |n: usize| -> Vec<f64> {
                let raw: Vec<f64> = (0..n)
                    .map(|_| (next() >> 11) as f64 / (1u64 << 53) as f64 * 10.0)
                    .collect();
                let snapped: Vec<f64> = if grid > 0.0 {
                    raw.iter().map(|v| (v / grid).round() * grid).collect()
                } else {
                    raw
                };
                sorted(&snapped)
            };
            let (x, y) = (draw(n1), draw(n2));
            let total = n1 as u64 * n2 as u64;
            for k in [1, 17, total / 3, total / 2, total / 2 + 1, total - 5, total] {
                let high = (k + 1).min(total);
                let (low_value, high_value) =
                    kth_differences(&x, &y, k, high, &first_sample(&x, &y));
                assert_eq!(
                    low_value,
                    kth_difference_bisect(&x, &y, k),
                    "{n1}x{n2} grid {grid} k {k}"
                );
                assert_eq!(
                    high_value,
                    kth_difference_bisect(&x, &y, high),
                    "{n1}x{n2} grid {grid} k {high}"
                );
            }
        }
    }

    #[test]
    fn fast_rank_sums_equal_the_merge() {
        let mut state = 0x1234_5678_9abc_def1u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // Continuous, ties within each sample only (x on even, y on odd hundredths), and ties
        // across (both on the same grid).
        for (grid_x, grid_y, offset) in [(0.0, 0.0, 0.0), (0.02, 0.02, 0.01), (0.05, 0.05, 0.0)] {
            let mut draw = |n: usize, grid: f64, offset: f64| -> Vec<f64> {
                sorted(
                    &(0..n)
                        .map(|_| {
                            let v = next();
                            if grid > 0.0 {
                                (v / grid).floor() * grid + offset
                            } else {
                                v
                            }
                        })
                        .collect::<Vec<_>>(),
                )
            };
            let x = draw(700, grid_x, 0.0);
            let y = draw(500, grid_y, offset);
            let below = below_without_cross_ties(&x, &y);
            assert_eq!(
                rank_sum_sorted(&x, &y, below.as_deref()),
                merge_rank_sum(&x, &y),
                "grid {grid_x} offset {offset}"
            );
        }
    }

    #[test]
    fn radix_sort_and_sorted_deviations_equal_comparison_sorts() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut values: Vec<f64> = (0..5000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e3
            })
            .collect();
        values.extend([
            0.0,
            -0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1.0,
            1.0,
            -1e-300,
        ]);
        let mut expected = values.clone();
        expected.sort_by(f64::total_cmp);
        let ours = sorted(&values);
        assert!(
            ours.iter()
                .zip(&expected)
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        let finite: Vec<f64> = ours.iter().copied().filter(|v| v.is_finite()).collect();
        let center = median_sorted(&finite);
        let mut deviations: Vec<f64> = finite.iter().map(|v| (v - center).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        assert_eq!(deviations_sorted(&finite), deviations);
    }
}
