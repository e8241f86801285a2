"""The drift tests computed from value counts against scipy on the raw arrays, and against
Evidently 0.7.23's own stattest functions on a fixed data set (values recorded from Evidently,
run in its own environment, since it cannot be installed beside pandas 3)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs
from scipy import stats
from scipy.spatial import distance

from core.mlops.drift import CATEGORICAL, NUMERIC, column_drift
from core.mlops.drift import stattests as st


def counts(values: np.ndarray) -> st.Counts:
    return st.counts_of(values, integer=values.dtype.kind in "iu")


def fixture() -> dict[str, np.ndarray]:
    """Deterministic windows from integer arithmetic (no RNG stream, no libm), so that the
    values recorded from Evidently stay valid on any platform."""
    i, j = np.arange(3000), np.arange(2500)
    ref_table = np.array(list("aaaabbbccd"))
    cur_table = np.array(list("aaabbbbccccdddeeeeee"))
    return {
        "num_ref": ((i * 7919) % 997 + (i * 31) % 211) / 10.0,
        "num_cur": ((j * 104729) % 1013 + (j * 37) % 223) / 10.0 + 3.0,
        "int_ref": (i * 37) % 41,
        "int_cur": (j * 53) % 45,
        "cat_ref": ref_table[(i * 7) % 10],
        "cat_cur": cur_table[(j * 3) % 20],
        "cat_cur4": np.array(list("aaabbbbccd"))[(j * 3) % 10],
        "bin_ref": np.where((i * 13) % 10 < 3, "yes", "no"),
        "bin_cur": np.where((j * 17) % 100 < 34, "yes", "no"),
    }


# (reference, current, kind, test, Evidently's drift_score, Evidently's verdict)
EVIDENTLY = [
    ("num_ref[:800]", "num_cur", NUMERIC, "ks", 0.06849028715528444, False),
    ("num_ref", "num_cur", NUMERIC, "ks", 0.0014572488944286635, True),
    ("num_ref", "num_cur", NUMERIC, "wasserstein", 0.14647597837176857, True),
    ("int_ref", "int_cur", NUMERIC, "wasserstein", 0.1670600497280368, True),
    ("num_ref", "num_cur", NUMERIC, "psi", 0.0510840581570996, False),
    ("int_ref", "int_cur", NUMERIC, "psi", 0.6104544150112567, True),
    ("cat_ref", "cat_cur", CATEGORICAL, "psi", 2.7071367130074653, True),
    ("bin_ref", "bin_cur", CATEGORICAL, "psi", 0.0073601457190775816, False),
    ("int_ref", "int_cur", NUMERIC, "jensenshannon", 0.1783520021048984, True),
    ("num_ref", "num_cur", NUMERIC, "jensenshannon", 0.07785491253779035, False),
    ("cat_ref", "cat_cur", CATEGORICAL, "jensenshannon", 0.37550153033777184, True),
    ("cat_ref", "cat_cur4", CATEGORICAL, "chisquare", 2.086942423736836e-31, True),
    ("bin_ref", "bin_cur", CATEGORICAL, "z", 0.0015175839700345417, True),
]


@pytest.mark.parametrize(("ref", "cur", "kind", "test", "score", "drifted"), EVIDENTLY)
def test_scores_and_verdicts_match_evidently(
    ref: str, cur: str, kind: str, test: str, score: float, drifted: bool
) -> None:
    data = fixture()
    reference = pd.Series(data["num_ref"][:800] if ref == "num_ref[:800]" else data[ref])
    result = column_drift(reference, pd.Series(data[cur]), kind=kind, test=test)
    assert result.score == pytest.approx(score, rel=1e-9)
    assert result.drifted is drifted


def samples(seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "float":
        return rng.normal(0, 1, 3000), rng.normal(0.1, 1.2, 2000)
    if kind == "ties":
        return rng.integers(0, 30, 3000), rng.integers(2, 33, 2000)
    return rng.normal(0, 1, 12_000).round(2), rng.normal(0.02, 1, 15_000).round(2)


@pytest.mark.parametrize("kind", ["float", "ties", "large"])
@pytest.mark.parametrize("seed", [1, 2])
def test_wasserstein_equals_scipy_on_raw_values(kind: str, seed: int) -> None:
    a, b = samples(seed, kind)
    expected = stats.wasserstein_distance(a, b)
    assert st.wasserstein_distance(counts(a), counts(b)) == pytest.approx(expected, rel=1e-12)
    normed = st.wasserstein_norm(counts(a), counts(b))
    assert normed == pytest.approx(expected / np.std(a), rel=1e-12)


@pytest.mark.parametrize("kind", ["float", "ties", "large"])
@pytest.mark.parametrize("seed", [1, 2])
def test_ks_equals_scipy_on_raw_values(kind: str, seed: int) -> None:
    # "large" has more than 10,000 rows a side: scipy's asymptotic branch, computed from counts
    a, b = samples(seed, kind)
    assert st.ks_pvalue(counts(a), counts(b)) == pytest.approx(
        stats.ks_2samp(a, b).pvalue, rel=1e-12, abs=1e-300
    )


@settings(max_examples=60, deadline=None)
@given(
    hs.lists(hs.integers(-5, 5), min_size=1, max_size=40),
    hs.lists(hs.integers(-5, 5), min_size=1, max_size=40),
)
def test_wasserstein_from_counts_is_exact_for_any_ties(left: list[int], right: list[int]) -> None:
    a, b = np.array(left, dtype=float), np.array(right, dtype=float)
    assert st.wasserstein_distance(counts(a), counts(b)) == pytest.approx(
        stats.wasserstein_distance(a, b), rel=1e-12, abs=1e-12
    )


@settings(max_examples=25, deadline=None)
@given(
    hs.integers(0, 2**32 - 1),
    hs.integers(1, 12),
    hs.integers(10_001, 14_000),
    hs.integers(50, 14_000),
)
def test_ks_pvalue_from_counts_matches_scipy_with_ties(
    seed: int, distinct: int, n1: int, n2: int
) -> None:
    # above 10,000 rows a side scipy's asymptotic branch applies: D comes from our counts
    rng = np.random.default_rng(seed)
    a = rng.integers(0, distinct, n1)
    b = rng.integers(0, distinct + 1, n2)
    assert st.ks_pvalue(counts(a), counts(b)) == pytest.approx(
        stats.ks_2samp(a, b).pvalue, rel=1e-9, abs=1e-300
    )


@pytest.mark.parametrize("kind", ["float", "ties"])
def test_sturges_edges_and_histogram_equal_numpy(kind: str) -> None:
    a, b = samples(3, kind)
    pooled = np.concatenate([a, b])
    edges = st.sturges_edges(counts(a), counts(b))
    np.testing.assert_array_equal(edges, np.histogram_bin_edges(pooled, bins="sturges"))
    np.testing.assert_array_equal(st.histogram_counts(counts(a), edges), np.histogram(a, edges)[0])


def test_integer_bins_are_widened_to_one_like_numpy() -> None:
    # 30 distinct integers over 2,000,000 rows: Sturges asks for 22 bins narrower than 1
    a = np.arange(1_000_000) % 30
    b = (np.arange(1_000_000) * 7) % 30
    edges = st.sturges_edges(counts(a), counts(b))
    np.testing.assert_array_equal(edges, np.histogram_bin_edges(np.concatenate([a, b]), "sturges"))
    assert np.all(np.diff(edges) >= 1)


def test_chisquare_equals_scipy_and_handles_new_categories() -> None:
    ref = np.array(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype=object)
    cur = np.array(["a"] * 40 + ["b"] * 45 + ["c"] * 35, dtype=object)
    expected = stats.chisquare([40, 45, 35], np.array([50, 30, 20]) * 120 / 100).pvalue
    assert st.chisquare_pvalue(counts(ref), counts(cur)) == pytest.approx(expected, rel=1e-12)
    with_new = np.concatenate([cur, np.array(["z"], dtype=object)])
    assert st.chisquare_pvalue(counts(ref), counts(with_new)) == 0.0
    same = np.array(["a"] * 10, dtype=object)
    assert st.chisquare_pvalue(counts(same), counts(same)) == 1.0


def test_z_test_is_the_two_proportion_test() -> None:
    ref = np.array([0] * 70 + [1] * 30)
    cur = np.array([0] * 50 + [1] * 50)
    p1, p2, pooled = 0.3, 0.5, 0.4
    z = (p1 - p2) / np.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert st.z_pvalue(counts(ref), counts(cur)) == pytest.approx(2 * stats.norm.sf(abs(z)))
    assert st.z_pvalue(counts(ref), counts(ref)) == pytest.approx(1.0)


def test_jensenshannon_equals_scipy_and_is_zero_not_nan_for_identical_windows() -> None:
    ref = np.array(["a"] * 3 + ["b"] * 5 + ["c"] * 7, dtype=object)
    cur = np.array(["a"] * 6 + ["b"] * 5 + ["d"] * 2, dtype=object)
    expected = distance.jensenshannon([3 / 15, 5 / 15, 7 / 15, 0], [6 / 13, 5 / 13, 0, 2 / 13])
    assert st.jensenshannon(counts(ref), counts(cur), numeric=False) == pytest.approx(expected)
    rng = np.random.default_rng(0)
    values = rng.choice(np.array(list("abcdefg"), dtype=object), 10_001)
    assert st.jensenshannon(counts(values), counts(values), numeric=False) == 0.0


def test_psi_is_zero_for_identical_and_grows_with_shift() -> None:
    rng = np.random.default_rng(4)
    a = rng.normal(0, 1, 5000)
    assert st.psi(counts(a), counts(a), numeric=True) == pytest.approx(0.0, abs=1e-12)
    small = st.psi(counts(a), counts(a + 0.1), numeric=True)
    large = st.psi(counts(a), counts(a + 1.0), numeric=True)
    assert 0 < small < 0.1 < large


def test_constant_reference_gives_a_finite_large_wasserstein_score() -> None:
    ref = np.full(2000, 3.0)
    cur = np.full(2000, 3.5)
    score = st.wasserstein_norm(counts(ref), counts(cur))
    assert np.isfinite(score)
    assert score == pytest.approx(0.5 / st.STD_FLOOR)
    assert st.wasserstein_norm(counts(ref), counts(ref)) == 0.0


def test_psi_fills_empty_buckets_as_evidently_does() -> None:
    # the reference's smallest share (1 in 20,000) is under 0.0001, so its empty bucket gets a
    # millionth of it; the current's smallest share is 0.5, so its empty bucket gets 0.0001
    ref = np.array(["a"] * 19_999 + ["b"], dtype=object)
    cur = np.array(["a"] * 50 + ["c"] * 50, dtype=object)
    r = np.array([19_999 / 20_000, 1 / 20_000, 1 / 20_000 / 10**6])
    c = np.array([0.5, 0.0001, 0.5])
    expected = float(np.sum((r - c) * np.log(r / c)))
    assert st.psi(counts(ref), counts(cur), numeric=False) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(11.859474055973951, rel=1e-12)  # Evidently 0.7.23's value


@settings(max_examples=60, deadline=None)
@given(
    hs.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float64]),
    hs.lists(hs.integers(0, 255), min_size=1, max_size=200),
    hs.integers(-(2**62), 2**62),
)
def test_counts_of_equals_numpy_unique_for_every_dtype(
    dtype: type, offsets: list[int], base: int
) -> None:
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    start = 0 if info is None else max(int(info.min), min(base, int(info.max) - 255))
    values = np.array([start + o for o in offsets]).astype(dtype)
    summary = st.counts_of(values)
    distinct, tally = np.unique(values, return_counts=True)
    np.testing.assert_array_equal(summary.values, distinct)
    np.testing.assert_array_equal(summary.counts, tally)
    assert summary.values.dtype == values.dtype
