"""The statistics of A/B experiments, pure and database-free: deterministic assignment, sample
sizes, the fixed-horizon tests, an always-valid sequential test and the recommendation.

Conventions: variant A is the control, B the treatment; an effect is B - A in the metric's units
(a difference of rates for proportions, of means for mean metrics), and the relative lift is
(B - A) / A. Sample sizes are per variant.

Formulas and references:

- Assignment: u = int(SHA-256(f"{salt}:{unit_id}")[:8]) / 2**64 is uniform on [0, 1) and is cut
  by the cumulative normalised weights. Same salt and unit: same variant, on any machine.
- Sample size, two proportions p1 = baseline, p2 = baseline +/- mde (Fleiss, Levin & Paik,
  "Statistical Methods for Rates and Proportions", 3rd ed. 2003, eq. 4.14 without continuity
  correction; R's `power.prop.test`):
      n = [z_a * sqrt(2 pbar qbar) + z_b * sqrt(p1 q1 + p2 q2)]^2 / (p2 - p1)^2,
  pbar = (p1 + p2) / 2 (variance pooled under H0). `pooled=False` uses the unpooled variance in
  both terms: n = (z_a + z_b)^2 (p1 q1 + p2 q2) / (p2 - p1)^2. z_a = z(1 - alpha/2) two-sided,
  z(1 - alpha) one-sided; z_b = z(power). Example: 0.10 -> 0.12, alpha 0.05, power 0.8:
  3,840.8 -> 3,841 per group (R: power.prop.test(p1=.1, p2=.12, power=.8) gives 3840.847).
- Sample size, two means with a common sd (normal approximation plus Guenther's small-sample
  correction for the t test; Guenther, "Sample size formulas for normal theory T tests",
  The American Statistician 35(4), 1981):
      n = 2 (z_a + z_b)^2 sd^2 / mde^2 + z_a^2 / 4.
  Example: sd 1, mde 0.5: 62.8 + 0.96 = 63.8 -> 64 (R: power.t.test(delta=.5, power=.8) gives
  63.77; Cohen 1988, table 2.4.1: 64).
- Two-proportion z test: z = (pB - pA) / sqrt(p (1 - p) (1/nA + 1/nB)), p pooled; two-sided
  p-value 2 (1 - Phi(|z|)). The confidence interval for the difference uses the unpooled (Wald)
  standard error sqrt(pA qA / nA + pB qB / nB), since under the alternative the rates differ.
  A single rate's interval is the Wilson score interval (Wilson 1927).
- Welch's t test: se^2 = sA^2/nA + sB^2/nB, Welch-Satterthwaite degrees of freedom
  df = se^4 / ((sA^2/nA)^2 / (nA - 1) + (sB^2/nB)^2 / (nB - 1)); t = (mB - mA) / se; p-value and
  interval from Student's t with df (Welch 1947).
- Sequential test: the mixture SPRT of Johari, Koomen, Pekelis & Walsh ("Peeking at A/B tests",
  KDD 2017; "Always valid inference", Operations Research 70(3), 2022), as in Optimizely's stats
  engine. With the difference estimate D_n, its variance V_n = sA^2/nA + sB^2/nB (plug-in
  variances; pA qA for rates) and a normal mixing distribution N(theta0, tau^2):
      Lambda_n = sqrt(V_n / (V_n + tau^2)) * exp(tau^2 (D_n - theta0)^2 / (2 V_n (V_n + tau^2))).
  The always-valid p-value is p_n = min(1, min_{m <= n} 1 / Lambda_m); the confidence sequence
  is the running intersection of {theta0 : Lambda_n(theta0) < 1/alpha}, i.e.
      D_n +/- sqrt(2 V_n (V_n + tau^2) / tau^2 * (log(1/alpha) + log((V_n + tau^2) / V_n) / 2)).
  Because P(sup_n Lambda_n >= 1/alpha) <= alpha under H0 (Ville's inequality), looking after
  every unit, and stopping whenever it is significant, keeps the false positive rate <= alpha.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]

from core.errors import ValidationError

_NORMAL = NormalDist()
_TWO_64 = float(2**64)
METRIC_KINDS = ("proportion", "mean")
MAX_VARIANTS = 6
MAX_SAMPLE_SIZE = 100_000_000  # per variant: beyond this the MDE is not measurable in practice
DEFAULT_MIN_SEQUENTIAL_N = 30  # per variant before the plug-in variances are trusted

FloatArray = npt.NDArray[np.float64]


# --- assignment ---------------------------------------------------------------------------------


def normalise_weights(variants: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The variants with weights that sum to 1; at least two, unique keys, positive weights."""
    if len(variants) < 2:
        raise ValidationError("An experiment needs at least two variants (a control and one more).")
    keys = [key for key, _ in variants]
    if len(set(keys)) != len(keys):
        raise ValidationError("Variant keys must be unique.")
    weights = [float(w) for _, w in variants]
    if any(not math.isfinite(w) or w <= 0 for w in weights):
        raise ValidationError("Every variant needs a weight greater than 0 (e.g. 50 and 50).")
    total = math.fsum(weights)
    return [(key, w / total) for key, w in zip(keys, weights, strict=True)]


def unit_point(salt: str, unit_id: str) -> float:
    """The unit's fixed point in [0, 1): the first 64 bits of SHA-256("salt:unit_id")."""
    digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _TWO_64


def assign(salt: str, unit_id: str, variants: Sequence[tuple[str, float]]) -> str:
    """The variant `unit_id` belongs to: deterministic for (salt, unit), with probability
    proportional to each variant's weight."""
    point = unit_point(salt, unit_id)
    cumulative = 0.0
    normalised = normalise_weights(variants)
    for key, weight in normalised:
        cumulative += weight
        if point < cumulative:
            return key
    return normalised[-1][0]  # the sum can fall a rounding error short of 1


# --- sample sizes -------------------------------------------------------------------------------


def _z_alpha(alpha: float, two_sided: bool) -> float:
    return _NORMAL.inv_cdf(1 - alpha / 2 if two_sided else 1 - alpha)


def _check_alpha_power(alpha: float, power: float) -> None:
    if not (math.isfinite(alpha) and 0 < alpha < 0.5):
        raise ValidationError(
            "Alpha (the false positive rate) must lie between 0 and 0.5, e.g. 0.05."
        )
    if not (math.isfinite(power) and 0.5 < power < 1):
        raise ValidationError("Power must lie between 0.5 and 1, e.g. 0.8.")


def _whole(n: float) -> int:
    if not math.isfinite(n) or n > MAX_SAMPLE_SIZE:
        raise ValidationError(
            f"That needs more than {MAX_SAMPLE_SIZE:,} units per variant: choose a larger "
            "minimum detectable effect."
        )
    return max(2, math.ceil(n - 1e-9))


def sample_size_proportions(
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    two_sided: bool = True,
    *,
    pooled: bool = True,
    direction: int = 1,
) -> int:
    """Units per variant to detect a change of `mde` (absolute) from the `baseline` rate.
    `direction` +1 plans for baseline + mde (an increase), -1 for baseline - mde."""
    _check_alpha_power(alpha, power)
    if not (math.isfinite(baseline) and 0 < baseline < 1):
        raise ValidationError("A baseline rate lies strictly between 0 and 1, e.g. 0.10 for 10 %.")
    if not (math.isfinite(mde) and mde > 0):
        raise ValidationError("The minimum detectable effect must be greater than 0.")
    p1 = baseline
    p2 = baseline + (mde if direction >= 0 else -mde)
    if not 0 < p2 < 1:
        raise ValidationError(
            f"Baseline {baseline:g} {'+' if direction >= 0 else '-'} effect {mde:g} leaves the "
            "range 0-1: the effect is absolute (0.02 is two percentage points)."
        )
    z_a, z_b = _z_alpha(alpha, two_sided), _NORMAL.inv_cdf(power)
    spread = p1 * (1 - p1) + p2 * (1 - p2)
    if pooled:
        pbar = (p1 + p2) / 2
        root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(spread)
        return _whole(root**2 / (p2 - p1) ** 2)
    return _whole((z_a + z_b) ** 2 * spread / (p2 - p1) ** 2)


def sample_size_means(
    sd: float, mde: float, alpha: float = 0.05, power: float = 0.8, two_sided: bool = True
) -> int:
    """Units per variant to detect a change of `mde` in a mean whose standard deviation is `sd`."""
    _check_alpha_power(alpha, power)
    if not (math.isfinite(sd) and sd > 0):
        raise ValidationError("The metric's standard deviation must be greater than 0.")
    if not (math.isfinite(mde) and mde > 0):
        raise ValidationError("The minimum detectable effect must be greater than 0.")
    z_a, z_b = _z_alpha(alpha, two_sided), _NORMAL.inv_cdf(power)
    return _whole(2 * (z_a + z_b) ** 2 * sd**2 / mde**2 + z_a**2 / 4)


def plan_sample_size(
    metric_kind: str,
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    *,
    baseline_sd: float | None = None,
    higher_is_better: bool = True,
    variants: int = 2,
) -> int:
    """Units per variant an experiment needs. With more than two variants every treatment is
    compared with the control at alpha / (variants - 1) (Bonferroni). A proportion is planned
    for the improvement: baseline + mde when higher is better, baseline - mde otherwise."""
    if metric_kind not in METRIC_KINDS:
        raise ValidationError(
            f"Unknown metric kind {metric_kind[:20]!r}: {', '.join(METRIC_KINDS)}."
        )
    if not 2 <= variants <= MAX_VARIANTS:
        raise ValidationError(f"An experiment has 2 to {MAX_VARIANTS} variants.")
    _check_alpha_power(alpha, power)
    per_comparison = alpha / (variants - 1)
    if metric_kind == "proportion":
        direction = 1 if higher_is_better else -1
        return sample_size_proportions(baseline, mde, per_comparison, power, direction=direction)
    if baseline_sd is None:
        raise ValidationError("A mean metric needs its standard deviation (from past data).")
    if not math.isfinite(baseline):
        raise ValidationError("The baseline mean must be a number.")
    return sample_size_means(baseline_sd, mde, per_comparison, power)


# --- fixed-horizon tests ------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """One variant's sample: size, mean (the rate for 0/1 values) and standard deviation."""

    n: int
    mean: float
    sd: float


def summarize(values: Sequence[float] | FloatArray) -> Summary:
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    return Summary(n, float(data.mean()), float(data.std(ddof=1)) if n > 1 else 0.0)


@dataclass(frozen=True)
class FixedResult:
    """A comparison of B against A. `significant`: p_value < alpha."""

    method: str
    effect: float  # B - A
    ci_low: float
    ci_high: float
    p_value: float
    statistic: float
    relative_lift: float | None  # (B - A) / A; None when A is 0
    alpha: float
    df: float | None = None  # Welch's degrees of freedom

    @property
    def significant(self) -> bool:
        return self.p_value < self.alpha


def _lift(effect: float, base: float) -> float | None:
    return effect / base if base != 0 and math.isfinite(base) else None


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """The Wilson score interval for a rate (good near 0 and 1, unlike the Wald one)."""
    if n <= 0:
        return (math.nan, math.nan)
    z = _NORMAL.inv_cdf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(summary: Summary, alpha: float = 0.05) -> tuple[float, float]:
    """Student's t interval for one variant's mean."""
    if summary.n < 2:
        return (math.nan, math.nan)
    half = float(stats.t.ppf(1 - alpha / 2, summary.n - 1)) * summary.sd / math.sqrt(summary.n)
    return (summary.mean - half, summary.mean + half)


def z_test_proportions(
    successes_a: int, n_a: int, successes_b: int, n_b: int, alpha: float = 0.05
) -> FixedResult:
    """Two-sided two-proportion z test of B against A (pooled SE for the test, unpooled for the
    interval)."""
    if n_a <= 0 or n_b <= 0:
        raise ValidationError("Both variants need at least one observation to be compared.")
    if not (0 <= successes_a <= n_a and 0 <= successes_b <= n_b):
        raise ValidationError("Successes must lie between 0 and the number of units.")
    p_a, p_b = successes_a / n_a, successes_b / n_b
    effect = p_b - p_a
    pooled = (successes_a + successes_b) / (n_a + n_b)
    se_test = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se_test > 0:
        z = effect / se_test
        p_value = 2 * (1 - _NORMAL.cdf(abs(z)))
    else:  # every unit a success, or none: no evidence of a difference
        z, p_value = 0.0, 1.0
    se_ci = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    half = _NORMAL.inv_cdf(1 - alpha / 2) * se_ci
    return FixedResult(
        "two-proportion z test",
        effect,
        effect - half,
        effect + half,
        min(1.0, p_value),
        z,
        _lift(effect, p_a),
        alpha,
    )


def welch_t_test(
    a: Summary | Sequence[float] | FloatArray,
    b: Summary | Sequence[float] | FloatArray,
    alpha: float = 0.05,
) -> FixedResult:
    """Two-sided Welch t test of B's mean against A's, from summaries or raw values."""
    sa = a if isinstance(a, Summary) else summarize(a)
    sb = b if isinstance(b, Summary) else summarize(b)
    if sa.n < 2 or sb.n < 2:
        raise ValidationError("Each variant needs at least two observations for a t test.")
    va, vb = sa.sd**2 / sa.n, sb.sd**2 / sb.n
    effect = sb.mean - sa.mean
    se = math.sqrt(va + vb)
    if se == 0:
        p_value = 1.0 if effect == 0 else 0.0
        return FixedResult(
            "Welch t test", effect, effect, effect, p_value, 0.0, _lift(effect, sa.mean), alpha
        )
    df = (va + vb) ** 2 / (va**2 / (sa.n - 1) + vb**2 / (sb.n - 1))
    t = effect / se
    p_value = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - alpha / 2, df)) * se
    return FixedResult(
        "Welch t test",
        effect,
        effect - half,
        effect + half,
        min(1.0, p_value),
        t,
        _lift(effect, sa.mean),
        alpha,
        df,
    )


def fixed_test(
    metric_kind: str, a: FloatArray, b: FloatArray, alpha: float = 0.05
) -> FixedResult | None:
    """The planned test of B's values against A's: the z test for 0/1 values, Welch's t test for
    means; None while a variant has too few values to compare (1 for rates, 2 for means)."""
    if metric_kind == "proportion":
        if a.size == 0 or b.size == 0:
            return None
        return z_test_proportions(int(a.sum()), int(a.size), int(b.sum()), int(b.size), alpha)
    if a.size < 2 or b.size < 2:
        return None
    return welch_t_test(a, b, alpha)


def variant_interval(metric_kind: str, values: FloatArray, alpha: float) -> tuple[float, float]:
    """One variant's interval: Wilson for a rate, Student's t for a mean."""
    if metric_kind == "proportion":
        return wilson_interval(int(values.sum()), int(values.size), alpha)
    return mean_interval(summarize(values), alpha)


# --- always-valid sequential test (mSPRT) -------------------------------------------------------


@dataclass(frozen=True)
class SequentialResult:
    """The mSPRT after the last look. `path_*`: per look (1 after every `every` units) from the
    first look with enough units in both variants: units seen so far, the estimate, the
    always-valid p-value and the confidence sequence (all running)."""

    effect: float
    p_value: float
    ci_low: float
    ci_high: float
    alpha: float
    tau2: float
    looks: int
    path_units: npt.NDArray[np.int64]
    path_effect: FloatArray
    path_p_value: FloatArray
    path_ci_low: FloatArray
    path_ci_high: FloatArray

    @property
    def significant(self) -> bool:
        return self.p_value <= self.alpha

    def at(self, units: int) -> tuple[float, float, float] | None:
        """(p-value, sequence low, high) at the last look with at most `units` units seen."""
        look = int(np.searchsorted(self.path_units, units, side="right")) - 1
        if look < 0:
            return None
        low, high = self.path_ci_low[look], self.path_ci_high[look]
        return float(self.path_p_value[look]), float(low), float(high)


def msprt_lambda(effect: FloatArray, variance: FloatArray, tau2: float) -> FloatArray:
    """Lambda_n for H0: difference = 0 (see the module docstring), element-wise."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        total = variance + tau2
        exponent = tau2 * effect**2 / (2 * variance * total)
        value = np.sqrt(variance / total) * np.exp(exponent)
    # zero variance: no information unless the difference is non-zero, then certainty
    zero = variance <= 0
    value = np.where(zero & (effect == 0), 0.0, value)
    value = np.where(zero & (effect != 0), np.inf, value)
    return np.asarray(value, dtype=float)


def msprt_half_width(variance: FloatArray, tau2: float, alpha: float) -> FloatArray:
    """Half-width of {theta0 : Lambda_n(theta0) < 1/alpha} around the estimate."""
    with np.errstate(divide="ignore", invalid="ignore"):
        total = variance + tau2
        log_term = math.log(1 / alpha) + 0.5 * np.log(total / variance)
        half = np.sqrt(2 * variance * total / tau2 * log_term)
    return np.asarray(np.where(variance <= 0, 0.0, half), dtype=float)


def msprt(
    is_b: Sequence[bool] | npt.NDArray[np.bool_],
    values: Sequence[float] | FloatArray,
    *,
    tau2: float,
    alpha: float = 0.05,
    every: int = 1,
    min_n: int = DEFAULT_MIN_SEQUENTIAL_N,
) -> SequentialResult:
    """The mixture SPRT over observations in arrival order (`is_b[i]`: unit i is in B), looked at
    after every `every` units once both variants have `min_n`."""
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ValidationError("The sequential test's mixing variance tau^2 must be positive.")
    if not 0 < alpha < 1 or every < 1:
        raise ValidationError("alpha lies in (0, 1) and looks come every 1 or more units.")
    flags = np.asarray(is_b, dtype=bool)
    data = np.asarray(values, dtype=float)
    if flags.shape != data.shape or flags.ndim != 1:
        raise ValidationError("Group flags and values must be two sequences of the same length.")
    looks_at = np.arange(every, data.size + 1, every) - 1
    in_b, in_a = flags.astype(float), (~flags).astype(float)
    n_b, n_a = np.cumsum(in_b)[looks_at], np.cumsum(in_a)[looks_at]
    sum_b, sum_a = np.cumsum(data * in_b)[looks_at], np.cumsum(data * in_a)[looks_at]
    sq_b, sq_a = np.cumsum(data**2 * in_b)[looks_at], np.cumsum(data**2 * in_a)[looks_at]
    ready = (n_a >= max(min_n, 2)) & (n_b >= max(min_n, 2))
    n_a, n_b, sum_a, sum_b = n_a[ready], n_b[ready], sum_a[ready], sum_b[ready]
    sq_a, sq_b, looks_at = sq_a[ready], sq_b[ready], looks_at[ready]
    mean_a, mean_b = sum_a / np.maximum(n_a, 1), sum_b / np.maximum(n_b, 1)
    var_a = np.maximum(sq_a - n_a * mean_a**2, 0) / np.maximum(n_a - 1, 1)
    var_b = np.maximum(sq_b - n_b * mean_b**2, 0) / np.maximum(n_b - 1, 1)
    variance = var_a / np.maximum(n_a, 1) + var_b / np.maximum(n_b, 1)
    effect = mean_b - mean_a
    with np.errstate(divide="ignore"):
        p_now = np.minimum(1.0, 1.0 / msprt_lambda(effect, variance, tau2))
    p_path = np.minimum.accumulate(p_now) if p_now.size else p_now
    half = msprt_half_width(variance, tau2, alpha)
    low = np.maximum.accumulate(effect - half) if effect.size else effect
    high = np.minimum.accumulate(effect + half) if effect.size else effect
    # the intersection can only empty out when the model is wrong (drifting effects): then the
    # current interval is the honest answer
    empty = low > high
    low, high = np.where(empty, effect - half, low), np.where(empty, effect + half, high)
    if not effect.size:
        return SequentialResult(
            math.nan, 1.0, -math.inf, math.inf, alpha, tau2, 0,
            np.zeros(0, dtype=np.int64), effect, p_path, low, high,
        )  # fmt: skip
    return SequentialResult(
        float(effect[-1]),
        float(p_path[-1]),
        float(low[-1]),
        float(high[-1]),
        alpha,
        tau2,
        int(effect.size),
        (looks_at + 1).astype(np.int64),
        effect,
        p_path,
        low,
        high,
    )


def default_tau2(mde: float) -> float:
    """Mixing variance tau^2 = mde^2: the test is most sensitive to effects of about the size the
    experiment was planned for (Johari et al. choose tau from the expected effect sizes)."""
    return mde * mde


# --- recommendation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    code: str  # ship_b, keep_a, no_difference, keep_running
    text: str
    more_units: int = 0  # keep_running: about how many more units (all variants) are needed


def _better(effect: float, higher_is_better: bool) -> bool:
    return effect > 0 if higher_is_better else effect < 0


def p_text(p: float) -> str:
    """A p-value for people: "p < 0.0001" rather than a rounded "p = 0"."""
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.2g}"


def recommend(
    fixed: FixedResult | None,
    *,
    n_a: int,
    n_b: int,
    sample_size: int,
    higher_is_better: bool = True,
    sequential: SequentialResult | None = None,
    weights: tuple[float, float] = (0.5, 0.5),
    labels: tuple[str, str] = ("A", "B"),
    rates: bool = False,
) -> Recommendation:
    """What to do with B against the control A. A fixed-horizon winner is only declared once
    both variants reached the planned sample size; before that only a significant always-valid
    sequential test may stop the experiment. `rates`: show effects in percentage points."""
    a, b = labels

    def show(value: float) -> str:  # effects of rates in percentage points
        return f"{100 * value:+.2f} pp" if rates else f"{value:+.4g}"

    if sequential is not None and sequential.significant:
        effect = sequential.effect
        detail = (
            f"the always-valid sequential test is significant ({p_text(sequential.p_value)}, "
            f"effect {show(effect)}, {100 * (1 - sequential.alpha):.0f} % confidence sequence "
            f"{show(sequential.ci_low)} to {show(sequential.ci_high)})"
        )
        if _better(effect, higher_is_better):
            return Recommendation("ship_b", f"Ship {b}: {detail}.")
        return Recommendation("keep_a", f"Keep {a}: {b} is worse; {detail}.")
    short_a, short_b = max(0, sample_size - n_a), max(0, sample_size - n_b)
    if short_a or short_b or fixed is None:
        # traffic splits by weight: the variant furthest behind sets how much more is needed
        more = max(
            math.ceil(short_a / weights[0]) if short_a else 0,
            math.ceil(short_b / weights[1]) if short_b else 0,
        )
        reached = min(n_a, n_b)
        text = (
            f"Keep running: {reached:,} of {sample_size:,} units in the smaller variant; about "
            f"{more:,} more units are needed before the planned test can decide"
        )
        if sequential is not None:
            text += f" (sequential {p_text(sequential.p_value)}, not yet significant)"
        return Recommendation("keep_running", text + ".", more)
    interval = (
        f"effect {show(fixed.effect)}, {100 * (1 - fixed.alpha):.0f} % CI {show(fixed.ci_low)} "
        f"to {show(fixed.ci_high)}, {p_text(fixed.p_value)}"
    )
    if not fixed.significant:
        return Recommendation(
            "no_difference",
            f"No significant difference at the planned sample size ({interval}): keep {a} "
            f"unless {b} is cheaper or simpler.",
        )
    if _better(fixed.effect, higher_is_better):
        return Recommendation("ship_b", f"Ship {b}: it is significantly better ({interval}).")
    return Recommendation("keep_a", f"Keep {a}: {b} is significantly worse ({interval}).")


def overall_recommendation(
    comparisons: Sequence[tuple[Recommendation, float]], control: str, higher_is_better: bool
) -> Recommendation:
    """One verdict from each treatment's (recommendation, effect) against the control: the best
    treatment to ship if any; else keep running while any comparison needs more units; else keep
    the control (all worse) or no difference."""
    if len(comparisons) == 1:
        return comparisons[0][0]
    sign = 1.0 if higher_is_better else -1.0
    ships = [(r, sign * effect) for r, effect in comparisons if r.code == "ship_b"]
    if ships:
        return max(ships, key=lambda item: item[1])[0]
    running = [r for r, _ in comparisons if r.code == "keep_running"]
    if running:
        return max(running, key=lambda r: r.more_units)
    if all(r.code == "keep_a" for r, _ in comparisons):
        return Recommendation("keep_a", f"Keep {control}: every other variant is worse.")
    return Recommendation(
        "no_difference", f"No variant beats {control} significantly: keep {control}."
    )
