"""Embedding drift: the vectorised MMD against a direct computation, verdicts on same and shifted
distributions for both methods, subsampling and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ValidationError
from core.mlops.drift import EmbeddingDrift, embedding_drift
from core.mlops.drift.embedding import _mmd_permutations


def vectors(seed: int, rows: int = 200, dims: int = 16, shift: float = 0.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(shift, 1.0, (rows, dims))


def direct_mmd2(x: np.ndarray, y: np.ndarray, sigma2: float) -> float:
    """Unbiased MMD^2 written out term by term, the textbook way."""

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=2)
        return np.exp(-d2 / (2 * sigma2))

    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
        + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        - 2 * kxy.mean()
    )


def test_vectorised_permutation_statistic_equals_the_direct_formula() -> None:
    x, y = vectors(1, 30, 4), vectors(2, 25, 4, shift=0.3)
    pooled = np.vstack([x, y])
    d2 = ((pooled[:, None, :] - pooled[None, :, :]) ** 2).sum(axis=2)
    sigma2 = float(np.median(d2[np.triu_indices(len(pooled), k=1)]))
    kernel = np.exp(-d2 / (2 * sigma2))
    rng = np.random.default_rng(0)
    labels = np.zeros((len(pooled), 4))
    labels[:30, 0] = 1
    perms = [rng.permutation(len(pooled))[:30] for _ in range(3)]
    for column, chosen in enumerate(perms, start=1):
        labels[chosen, column] = 1
    got = _mmd_permutations(kernel, labels, 30)
    assert got[0] == pytest.approx(direct_mmd2(x, y, sigma2), rel=1e-10)
    for column, chosen in enumerate(perms, start=1):
        rest = np.setdiff1d(np.arange(len(pooled)), chosen)
        expected = direct_mmd2(pooled[chosen], pooled[rest], sigma2)
        assert got[column] == pytest.approx(expected, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_same_distribution_is_not_flagged_by_either_method(seed: int) -> None:
    ref, cur = vectors(seed), vectors(seed + 50)
    mmd = embedding_drift(ref, cur, method="mmd")
    assert not mmd.drifted and mmd.p_value is not None and mmd.p_value >= 0.05
    classifier = embedding_drift(ref, cur, method="classifier")
    assert not classifier.drifted and classifier.score <= 0.55 and classifier.p_value is None


def test_shifted_mean_is_flagged_by_both_methods() -> None:
    ref, cur = vectors(3), vectors(4, shift=0.4)
    mmd = embedding_drift(ref, cur, method="mmd", permutations=100)
    assert mmd.drifted and mmd.p_value == pytest.approx(1 / 101)
    classifier = embedding_drift(ref, cur, method="classifier")
    assert classifier.drifted and classifier.score > 0.8


def test_results_are_reproducible_and_serialisable() -> None:
    ref, cur = vectors(5), vectors(6, shift=0.05)
    first = embedding_drift(ref, cur, permutations=50, seed=7)
    assert embedding_drift(ref, cur, permutations=50, seed=7) == first
    data = first.to_dict()
    assert data["method"] == "mmd" and data["reference_rows"] == 200
    assert EmbeddingDrift(**data) == first


def test_large_windows_are_subsampled_and_noted() -> None:
    result = embedding_drift(
        vectors(7, rows=1500, dims=4), vectors(8, rows=300, dims=4), max_rows=400
    )
    assert result.reference_rows == 400 and result.current_rows == 300
    assert result.note == "reference subsampled to 400 of 1,500 rows"


def test_identical_points_do_not_divide_by_zero() -> None:
    same = np.ones((20, 3))
    result = embedding_drift(same, same.copy())
    assert result.score == 0.0 and not result.drifted


def test_bad_input_is_refused_with_a_clear_message() -> None:
    ref = vectors(9, rows=50, dims=8)
    with pytest.raises(ValidationError, match="current window has 9 embeddings; at least 10"):
        embedding_drift(ref, vectors(10, rows=9, dims=8))
    with pytest.raises(ValidationError, match="different dimensions: reference 8, current 6"):
        embedding_drift(ref, vectors(10, rows=50, dims=6))
    with pytest.raises(ValidationError, match="must be a 2-D array"):
        embedding_drift(ref[:, 0], ref[:, 1])
    broken = ref.copy()
    broken[3, 2] = np.nan
    with pytest.raises(ValidationError, match="1 reference embeddings contain missing"):
        embedding_drift(broken, ref)
    with pytest.raises(ValidationError, match="valid methods: mmd, classifier"):
        embedding_drift(ref, ref, method="kl")
    with pytest.raises(ValidationError, match="out of range for 'classifier'"):
        embedding_drift(ref, ref, method="classifier", threshold=0.4)
    with pytest.raises(ValidationError, match="permutations must be between 1"):
        embedding_drift(ref, ref, permutations=0)
