"""Drift of embedding vectors (or any multivariate numeric sample) between two windows.

Per-dimension tests miss what moves embeddings: a shift of the joint distribution that no single
coordinate shows. Two whole-sample methods instead:

- "mmd": the unbiased estimate of the squared maximum mean discrepancy with a Gaussian (RBF)
  kernel, bandwidth by the median heuristic on the pooled sample, and a permutation p-value.
  The pooled kernel matrix is computed once; every permutation is a relabelling, so all of them
  are evaluated with one matrix product (see `_mmd_permutations`).
- "classifier": how well a logistic regression tells the windows apart (5-fold cross-validated
  ROC AUC); 0.5 means indistinguishable. Evidently's default threshold, 0.55, applies.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ValidationError

METHODS: tuple[str, ...] = ("mmd", "classifier")
DEFAULT_THRESHOLDS: dict[str, float] = {"mmd": 0.05, "classifier": 0.55}
MIN_ROWS = 10
CV_FOLDS = 5


@dataclass(frozen=True)
class EmbeddingDrift:
    """The verdict. `score` is the MMD^2 estimate (mmd) or the ROC AUC (classifier); `p_value`
    is the permutation p-value for mmd and None for the classifier."""

    method: str
    score: float
    p_value: float | None
    threshold: float
    drifted: bool
    reference_rows: int
    current_rows: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matrix(values: Any, window: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"The {window} embeddings are not numeric: {exc}.") from exc
    if array.ndim != 2:
        raise ValidationError(
            f"The {window} embeddings must be a 2-D array (rows x dimensions), not "
            f"{array.ndim}-D with shape {array.shape}."
        )
    if array.shape[0] < MIN_ROWS:
        raise ValidationError(
            f"The {window} window has {array.shape[0]} embeddings; at least {MIN_ROWS} are needed "
            f"for a drift test. Choose a wider {window} window."
        )
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise ValidationError(
            f"{bad:,} {window} embeddings contain missing or infinite values; drop or fix them."
        )
    return array


def _check_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValidationError(f"{name} must be a whole number, not {value!r}.")
    if not low <= int(value) <= high:
        raise ValidationError(f"{name} must be between {low:,} and {high:,}, not {value:,}.")
    return int(value)


def _threshold(method: str, threshold: float | None) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLDS[method]
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise ValidationError(f"The threshold must be a number, not {threshold!r}.")
    value = float(threshold)
    if method == "mmd" and not 0 < value < 1:
        raise ValidationError(
            f"Threshold {threshold!r} is out of range for 'mmd' (a p-value): use a number "
            "between 0 and 1 (exclusive), e.g. 0.05."
        )
    if method == "classifier" and not 0.5 <= value < 1:
        raise ValidationError(
            f"Threshold {threshold!r} is out of range for 'classifier' (a ROC AUC): use a number "
            "from 0.5 up to (not including) 1, e.g. 0.55."
        )
    return value


def _subsample(
    array: NDArray[np.float64], max_rows: int, rng: np.random.Generator, window: str
) -> tuple[NDArray[np.float64], str]:
    if array.shape[0] <= max_rows:
        return array, ""
    rows = np.sort(rng.choice(array.shape[0], size=max_rows, replace=False))
    return array[rows], f"{window} subsampled to {max_rows:,} of {array.shape[0]:,} rows"


def _squared_distances(pooled: NDArray[np.float64]) -> NDArray[np.float64]:
    norms = (pooled * pooled).sum(axis=1)
    d2: NDArray[np.float64] = norms[:, None] + norms[None, :] - 2.0 * (pooled @ pooled.T)
    np.maximum(d2, 0.0, out=d2)  # rounding can leave tiny negatives
    np.fill_diagonal(d2, 0.0)
    return d2


def _median_bandwidth(d2: NDArray[np.float64]) -> float:
    """The median heuristic: sigma^2 = median squared distance between distinct pooled points
    (falling back to the mean of the non-zero ones when most points coincide)."""
    upper = d2[np.triu_indices_from(d2, k=1)]
    median = float(np.median(upper))
    if median > 0:
        return median
    positive = upper[upper > 0]
    return float(positive.mean()) if positive.size else 0.0


def _mmd_permutations(
    kernel: NDArray[np.float64], labels: NDArray[np.float64], n: int
) -> NDArray[np.float64]:
    """Unbiased MMD^2 for each labelling (column of `labels`: 1 = reference, 0 = current).

    With a = the 0/1 reference indicator, r = K 1 and T = 1' K 1 (K's diagonal is all ones):
    sum over reference pairs i != j of k = a'Ka - n; over current pairs = T - 2 a'r + a'Ka - m;
    across windows = a'r - a'Ka. So every labelling needs only a'Ka and a'r: one product K A.
    """
    total_rows = kernel.shape[0]
    m = total_rows - n
    row_sums = kernel.sum(axis=1)
    total = float(row_sums.sum())
    aka = np.einsum("ij,ij->j", labels, kernel @ labels)
    ar = labels.T @ row_sums
    within_ref = (aka - n) / (n * (n - 1))
    within_cur = (total - 2.0 * ar + aka - m) / (m * (m - 1))
    across = (ar - aka) / (n * m)
    result = within_ref + within_cur - 2.0 * across
    return np.asarray(result, dtype=np.float64)


def _mmd(
    reference: NDArray[np.float64],
    current: NDArray[np.float64],
    permutations: int,
    rng: np.random.Generator,
) -> tuple[float, float]:
    pooled = np.vstack([reference, current])
    n = reference.shape[0]
    d2 = _squared_distances(pooled)
    bandwidth = _median_bandwidth(d2)
    if bandwidth == 0:
        return 0.0, 1.0  # every point identical: nothing can differ
    kernel = np.exp(-d2 / (2.0 * bandwidth))
    labels = np.zeros((pooled.shape[0], permutations + 1))
    labels[:n, 0] = 1.0
    for column in range(1, permutations + 1):
        labels[rng.permutation(pooled.shape[0])[:n], column] = 1.0
    stats = _mmd_permutations(kernel, labels, n)
    observed = float(stats[0])
    # the observed labelling counts as one of the permutations: p is never 0
    p_value = (1 + int(np.sum(stats[1:] >= observed))) / (1 + permutations)
    return observed, p_value


def _classifier_auc(
    reference: NDArray[np.float64], current: NDArray[np.float64], seed: int
) -> float:
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.model_selection import StratifiedKFold, cross_val_score  # type: ignore[import-untyped]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    features = np.vstack([reference, current])
    target = np.concatenate([np.zeros(reference.shape[0]), np.ones(current.shape[0])])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    scores = cross_val_score(model, features, target, cv=folds, scoring="roc_auc")
    return float(np.mean(scores))


def embedding_drift(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    method: str = "mmd",
    permutations: int = 200,
    threshold: float | None = None,
    max_rows: int = 1000,
    seed: int = 0,
) -> EmbeddingDrift:
    """Whether the current embeddings come from another distribution than the reference ones.

    mmd: drift when the permutation p-value is below `threshold` (default 0.05);
    classifier: drift when the cross-validated ROC AUC is above `threshold` (default 0.55).
    Each window is subsampled (seeded) to `max_rows` rows, since both methods are quadratic or
    worse in the rows and a thousand rows already resolve small shifts.
    """
    if method not in METHODS:
        raise ValidationError(
            f"Unknown embedding drift method '{method}'; valid methods: {', '.join(METHODS)}."
        )
    limit = _threshold(method, threshold)
    permutations = _check_int("permutations", permutations, 1, 100_000)
    max_rows = _check_int("max_rows", max_rows, MIN_ROWS, 100_000)
    seed = _check_int("seed", seed, 0, 2**32 - 1)
    ref = _matrix(reference, "reference")
    cur = _matrix(current, "current")
    if ref.shape[1] != cur.shape[1]:
        raise ValidationError(
            f"The windows' embeddings have different dimensions: reference {ref.shape[1]}, "
            f"current {cur.shape[1]}. Compare embeddings from the same model."
        )
    rng = np.random.default_rng(seed)
    ref, ref_note = _subsample(ref, max_rows, rng, "reference")
    cur, cur_note = _subsample(cur, max_rows, rng, "current")
    note = "; ".join(n for n in (ref_note, cur_note) if n)
    if method == "mmd":
        score, p_value = _mmd(ref, cur, permutations, rng)
        drifted = p_value < limit
        result_p: float | None = p_value
    else:
        score = _classifier_auc(ref, cur, seed)
        drifted = score > limit
        result_p = None
    if not math.isfinite(score):
        raise ValidationError("The embedding drift score is not finite; check the embeddings.")
    return EmbeddingDrift(
        method=method,
        score=score,
        p_value=result_p,
        threshold=limit,
        drifted=drifted,
        reference_rows=int(ref.shape[0]),
        current_rows=int(cur.shape[0]),
        note=note,
    )
