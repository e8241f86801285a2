"""The drift tests, computed from each window's distinct values and their counts.

Every test Evidently applies by default is a function of the two empirical distributions, not of
the row order, so a window of a million rows with a few hundred distinct values is summarised
once (`Counts`) and every statistic is then computed on that summary. The results are the same
statistics scipy computes on the raw arrays (the unit tests check this), only the work per test
drops from the number of rows to the number of distinct values.

Binning and the zero-share replacement follow Evidently 0.7
(`evidently/legacy/calculations/stattests/utils.py:get_binned_data`) so that verdicts agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats  # type: ignore[import-untyped]

# scipy's ks_2samp computes the exact p-value up to this sample size ('auto' mode) and switches
# to Smirnov's asymptotic distribution above it; the same split keeps our p-values identical.
KS_EXACT_MAX_ROWS = 10_000
# Evidently bins a numeric column (Sturges' rule over both windows) for PSI and Jensen-Shannon
# only when its reference has more distinct values than this; otherwise each value is a bucket.
BIN_ABOVE_DISTINCT = 20
# Evidently divides the Wasserstein distance by the reference's standard deviation, floored here
# so that a constant reference yields a large (not infinite) score when the current one moves.
STD_FLOOR = 0.001
# integers spanning at most this many values (or as many as there are rows) are tallied by
# bincount rather than sorted
BINCOUNT_MIN_SPAN = 1 << 16


@dataclass(frozen=True, eq=False)
class Counts:
    """A window's non-null values as sorted distinct values and how often each occurs.

    `values` is float64 / int64 / bool for numbers, an object array of strings otherwise;
    `integer` records that the source column had an integer dtype, which changes numpy's
    automatic bin width (and so Evidently's PSI bins).
    """

    values: NDArray[np.generic]
    counts: NDArray[np.int64]
    integer: bool = False

    @property
    def rows(self) -> int:
        return int(self.counts.sum())

    @property
    def numeric(self) -> bool:
        kind = self.values.dtype.kind
        return kind in "iuf"


def counts_of(values: NDArray[np.generic], *, integer: bool = False) -> Counts:
    """Distinct values and counts of a 1-D array without missing values.

    Integers in a narrow range (hours, counts of rentals, codes) are tallied with `np.bincount`,
    one pass and no sort. Everything else goes through `np.unique`, whose SIMD sort (about 15 ms
    for a million distinct floats, less for few distinct values) beats pandas' hash table once
    values are mostly distinct and is never much slower when they are not.
    """
    if values.dtype.kind in "iu" and values.size:
        low, high = int(values.min()), int(values.max())
        if high - low <= max(BINCOUNT_MIN_SPAN, values.size):
            # widen small signed types first: int8 127 - (-128) does not fit in int8
            offsets: NDArray[np.integer[Any]]
            if values.dtype.kind == "i":
                offsets = values.astype(np.int64, copy=False) - low
            else:
                offsets = values.astype(np.uint64, copy=False) - np.uint64(low)
            tally = np.bincount(offsets, minlength=high - low + 1)
            present = np.flatnonzero(tally)
            distinct = present.astype(values.dtype) + values.dtype.type(low)
            return Counts(distinct, tally[present].astype(np.int64, copy=False), integer)
    distinct, counts = np.unique(values, return_counts=True)
    return Counts(distinct, counts.astype(np.int64, copy=False), integer)


def align(
    reference: Counts, current: Counts
) -> tuple[NDArray[np.generic], NDArray[np.int64], NDArray[np.int64]]:
    """The union of both windows' values (sorted) and each window's counts over it (0 where
    a value does not occur in that window)."""
    keys = np.union1d(reference.values, current.values)
    ref = np.zeros(keys.size, dtype=np.int64)
    cur = np.zeros(keys.size, dtype=np.int64)
    ref[np.searchsorted(keys, reference.values)] = reference.counts
    cur[np.searchsorted(keys, current.values)] = current.counts
    return keys, ref, cur


def _as_float(counts: Counts) -> NDArray[np.float64]:
    return np.asarray(counts.values, dtype=np.float64)


def _cdf_gap(reference: Counts, current: Counts) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """F_ref - F_cur just after each value of either window, in merged sorted order.

    Both value arrays are sorted, so a stable argsort of their concatenation is a merge (numpy's
    timsort finds the two runs). The CDFs are (integer cumulative count) / rows, the very
    fractions scipy forms from `searchsorted(sorted_raw, x, 'right') / n`, so the statistics
    built on them match scipy's. Where a value occurs in both windows, the first of the pair
    carries a partial sum; callers either weight it by a zero-width step (Wasserstein) or skip
    it (`_last_of_runs`, for KS).
    """
    values = np.concatenate((_as_float(reference), _as_float(current)))
    order = np.argsort(values, kind="stable")
    points = values[order]
    gap_rows = reference.values.size
    ref_steps = np.zeros(values.size, dtype=np.int64)
    ref_steps[:gap_rows] = reference.counts
    cur_steps = np.zeros(values.size, dtype=np.int64)
    cur_steps[gap_rows:] = current.counts
    ref_cdf = np.cumsum(ref_steps[order]) / reference.rows
    cur_cdf = np.cumsum(cur_steps[order]) / current.rows
    return points, ref_cdf - cur_cdf


def _last_of_runs(points: NDArray[np.float64]) -> NDArray[np.bool_]:
    keep = np.ones(points.size, dtype=bool)
    keep[:-1] = points[1:] != points[:-1]
    return keep


def ks_pvalue(reference: Counts, current: Counts) -> float:
    """Two-sided two-sample Kolmogorov-Smirnov p-value, as `scipy.stats.ks_2samp` (auto mode).

    Small samples go to scipy itself (its exact distribution); above `KS_EXACT_MAX_ROWS` the
    statistic comes from the counts and the p-value from the same asymptotic formula scipy uses.
    """
    n1, n2 = reference.rows, current.rows
    if max(n1, n2) <= KS_EXACT_MAX_ROWS:
        raw1 = np.repeat(_as_float(reference), reference.counts)
        raw2 = np.repeat(_as_float(current), current.counts)
        return float(stats.ks_2samp(raw1, raw2).pvalue)
    points, gap = _cdf_gap(reference, current)
    diffs = gap[_last_of_runs(points)]
    d = max(float(np.clip(-diffs.min(), 0, 1)), float(diffs.max()))
    m, n = sorted([float(n1), float(n2)], reverse=True)
    prob = float(stats.kstwo.sf(d, np.round(m * n / (m + n))))
    return min(max(prob, 0.0), 1.0)


def wasserstein_distance(reference: Counts, current: Counts) -> float:
    """The Wasserstein-1 distance between the two empirical distributions: the integral of
    |F_ref - F_cur|, which is what `scipy.stats.wasserstein_distance` computes on raw values."""
    points, gap = _cdf_gap(reference, current)
    if points.size < 2:
        return 0.0
    return float(np.dot(np.abs(gap[:-1]), np.diff(points)))


def weighted_std(counts: Counts) -> float:
    """Population standard deviation (ddof 0, as `np.std`) of the window the counts describe."""
    values = _as_float(counts)
    weights = counts.counts.astype(np.float64)
    total = weights.sum()
    mean = float(np.dot(values, weights) / total)
    return math.sqrt(max(float(np.dot(weights, (values - mean) ** 2) / total), 0.0))


def wasserstein_norm(reference: Counts, current: Counts) -> float:
    """Evidently's "Wasserstein distance (normed)": the distance in reference standard
    deviations, the deviation floored at `STD_FLOOR`."""
    return wasserstein_distance(reference, current) / max(weighted_std(reference), STD_FLOOR)


def chisquare_pvalue(reference: Counts, current: Counts) -> float:
    """Pearson's chi-square goodness of fit of the current counts to the reference shares
    (scaled to the current size), as Evidently's `chisquare` test.

    A category the reference never had has expected count 0: the statistic is infinite and the
    p-value 0 (scipy would return the same with a warning). A single category shared by both
    windows has no degrees of freedom; nothing can have moved, so the p-value is 1.
    """
    _, ref, cur = align(reference, current)
    if ref.size == 1:
        return 1.0
    if np.any(ref == 0):
        return 0.0
    expected = ref * (current.rows / reference.rows)
    return float(stats.chisquare(cur.astype(np.float64), expected).pvalue)


def z_pvalue(reference: Counts, current: Counts) -> float:
    """Two-proportion z-test on the share of the first category (in sorted order) against all
    others, two-sided, as Evidently's `z` test for binary columns."""
    keys, ref, cur = align(reference, current)
    if keys.size == 1:
        return 1.0
    n1, n2 = reference.rows, current.rows
    p1 = (n1 - int(ref[0])) / n1
    p2 = (n2 - int(cur[0])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2)
    if spread <= 0:
        return 1.0
    z = (p1 - p2) / math.sqrt(spread)
    # sf rather than Evidently's 1 - cdf: the same value, without rounding to 0 for |z| > 8
    return float(min(1.0, 2 * stats.norm.sf(abs(z))))


def sturges_edges(reference: Counts, current: Counts) -> NDArray[np.float64]:
    """`np.histogram_bin_edges(concat(reference, current), bins="sturges")` from counts alone:
    Sturges' rule needs only the pooled size and range (numpy widens integer bins to 1)."""
    low = min(reference.values[0], current.values[0])
    high = max(reference.values[-1], current.values[-1])
    integer = reference.integer and current.integer
    first, last = (int(low), int(high)) if integer else (float(low), float(high))
    if first == last:
        return np.array([first - 0.5, last + 0.5], dtype=np.float64)
    width = (last - first) / (math.log2(reference.rows + current.rows) + 1.0)
    if integer and width < 1:
        width = 1
    bins = math.ceil((last - first) / width)
    return np.linspace(first, last, bins + 1, endpoint=True, dtype=np.float64)


def histogram_counts(counts: Counts, edges: NDArray[np.float64]) -> NDArray[np.float64]:
    """`np.histogram(raw, edges)[0]` from counts. numpy bins explicit edges by searching them in
    the sorted data (left side, the last edge inclusive); the distinct values are sorted
    already, so the same search over them, with cumulative counts, gives the same bins without
    numpy's re-sort of the values."""
    values = _as_float(counts)
    cumulative = np.concatenate(([0], np.cumsum(counts.counts)))
    bounds = np.concatenate(
        (values.searchsorted(edges[:-1], "left"), values.searchsorted(edges[-1:], "right"))
    )
    return np.diff(cumulative[bounds]).astype(np.float64)


def binned_shares(
    reference: Counts, current: Counts, *, numeric: bool
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Share of each window per bucket, as Evidently's `get_binned_data` (before zero filling):
    Sturges bins over both windows for numeric columns whose reference has more than
    `BIN_ABOVE_DISTINCT` distinct values, otherwise one bucket per value."""
    if (
        numeric
        and reference.numeric
        and current.numeric
        and reference.values.size > BIN_ABOVE_DISTINCT
    ):
        edges = sturges_edges(reference, current)
        ref = histogram_counts(reference, edges)
        cur = histogram_counts(current, edges)
    else:
        _, ref_int, cur_int = align(reference, current)
        ref, cur = ref_int.astype(np.float64), cur_int.astype(np.float64)
    return ref / reference.rows, cur / current.rows


def _fill_zeroes(shares: NDArray[np.float64]) -> NDArray[np.float64]:
    """Evidently's replacement of empty buckets before a logarithm: a millionth of the smallest
    non-empty share when that is at most 0.0001, else 0.0001."""
    filled = shares.copy()
    empty = filled == 0
    if empty.any():
        smallest = float(filled[~empty].min())
        filled[empty] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return filled


def psi(reference: Counts, current: Counts, *, numeric: bool) -> float:
    """Population stability index, sum((ref - cur) * ln(ref / cur)) over Evidently's buckets."""
    ref, cur = binned_shares(reference, current, numeric=numeric)
    ref, cur = _fill_zeroes(ref), _fill_zeroes(cur)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def jensenshannon(reference: Counts, current: Counts, *, numeric: bool) -> float:
    """Jensen-Shannon distance (natural log) of the bucket shares, as
    `scipy.spatial.distance.jensenshannon`, clamped at 0: rounding can make the divergence of two
    identical distributions a hair negative, and its square root NaN."""
    ref, cur = binned_shares(reference, current, numeric=numeric)
    p, q = ref / ref.sum(), cur / cur.sum()
    m = (p + q) / 2.0
    divergence = (float(np.sum(special.rel_entr(p, m))) + float(np.sum(special.rel_entr(q, m)))) / 2
    return math.sqrt(max(divergence, 0.0))
