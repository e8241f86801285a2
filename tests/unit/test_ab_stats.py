"""A/B statistics: assignment (deterministic, uniform, weighted), sample sizes against published
values, the z and Welch tests against scipy and by hand, interval coverage by simulation, the
mSPRT's false positive rate under continuous peeking (and the naive test's, for contrast) and
its power, and the recommendation rules."""

from __future__ import annotations

import hashlib
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from core.errors import ValidationError
from core.mlops import ab_stats as ab
from core.mlops.ab_stats import FixedResult, Recommendation

# --- assignment ---------------------------------------------------------------------------------


def test_assignment_is_deterministic_and_depends_on_the_salt() -> None:
    variants = [("a", 1.0), ("b", 1.0)]
    first = [ab.assign("salt-1", f"user-{i}", variants) for i in range(500)]
    assert first == [ab.assign("salt-1", f"user-{i}", variants) for i in range(500)]
    other = [ab.assign("salt-2", f"user-{i}", variants) for i in range(500)]
    assert 150 < sum(x != y for x, y in zip(first, other, strict=True)) < 350  # independent salts


def test_unit_point_is_the_documented_hash() -> None:
    """SHA-256 of "salt:unit", first 64 bits: any other service can reproduce an assignment."""
    digest = hashlib.sha256(b"exp-salt:unit-42").digest()
    assert ab.unit_point("exp-salt", "unit-42") == int.from_bytes(digest[:8], "big") / 2**64


def test_assignment_is_uniform_on_100k_ids() -> None:
    """Chi-square goodness of fit: equal thirds, and a 10/30/60 split."""
    ids = [f"u{i}" for i in range(100_000)]
    equal = Counter(ab.assign("chi", u, [("a", 1), ("b", 1), ("c", 1)]) for u in ids)
    _, p_equal = stats.chisquare([equal["a"], equal["b"], equal["c"]])
    assert p_equal > 0.001
    weighted = Counter(ab.assign("chi2", u, [("a", 10), ("b", 30), ("c", 60)]) for u in ids)
    observed = [weighted["a"], weighted["b"], weighted["c"]]
    _, p_weighted = stats.chisquare(observed, [10_000, 30_000, 60_000])
    assert p_weighted > 0.001
    # and the points themselves are uniform on [0, 1) (Kolmogorov-Smirnov)
    points = [ab.unit_point("ks", u) for u in ids[:20_000]]
    assert stats.kstest(points, "uniform").pvalue > 0.001


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ([("a", 1.0)], "at least two"),
        ([("a", 1.0), ("a", 1.0)], "unique"),
        ([("a", 1.0), ("b", 0.0)], "greater than 0"),
        ([("a", 1.0), ("b", -1.0)], "greater than 0"),
        ([("a", 1.0), ("b", math.nan)], "greater than 0"),
    ],
)
def test_weights_are_validated(variants: list[tuple[str, float]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ab.assign("s", "u", variants)


def test_weights_are_normalised() -> None:
    assert ab.normalise_weights([("a", 2), ("b", 6)]) == [("a", 0.25), ("b", 0.75)]


# --- sample sizes -------------------------------------------------------------------------------


def _by_hand(p1: float, p2: float, power: float) -> int:
    z_a, z_b = stats.norm.ppf(0.975), stats.norm.ppf(power)
    pbar = (p1 + p2) / 2
    root = z_a * math.sqrt(2 * pbar * (1 - pbar)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil(root**2 / (p2 - p1) ** 2)


def test_sample_size_for_proportions_matches_published_values() -> None:
    # R: power.prop.test(p1 = 0.10, p2 = 0.12, power = 0.8) -> n = 3840.847 per group
    assert ab.sample_size_proportions(0.10, 0.02, 0.05, 0.8) == 3841
    # by hand, the unpooled form: (1.959964 + 0.841621)^2 * (0.09 + 0.1056) / 0.02^2 = 3838.1
    assert ab.sample_size_proportions(0.10, 0.02, pooled=False) == 3839
    # by hand: (1.959964 sqrt(2 * .55 * .45) + 1.281552 sqrt(.25 + .24))^2 / 0.1^2 = 518.04
    assert ab.sample_size_proportions(0.5, 0.1, power=0.9) == 519
    # planning a decrease, 0.10 -> 0.08: (1.959964 * 0.40472 + 0.841621 * 0.40448)^2 / 0.02^2
    assert ab.sample_size_proportions(0.10, 0.02, direction=-1) == _by_hand(0.10, 0.08, 0.8)
    # one-sided needs fewer units
    assert ab.sample_size_proportions(0.10, 0.02, two_sided=False) < 3841


def test_sample_size_for_means_matches_published_values() -> None:
    # R: power.t.test(delta = 0.5, sd = 1, power = 0.8) -> n = 63.77; Cohen (1988): 64
    assert ab.sample_size_means(1.0, 0.5, 0.05, 0.8) == 64
    # by hand: 2 (1.959964 + 1.281552)^2 * 4 / 1 + 1.959964^2 / 4 = 84.07 + 0.96 = 85.03
    assert ab.sample_size_means(2.0, 1.0, 0.05, 0.9) == 86
    # the same standardised effect needs the same n whatever the units
    assert ab.sample_size_means(10.0, 5.0) == ab.sample_size_means(1.0, 0.5)


def test_sample_size_by_simulation_gives_the_planned_power() -> None:
    """At the planned n the z test rejects about `power` of the time when the effect is the MDE."""
    n = ab.sample_size_proportions(0.3, 0.05, 0.05, 0.8)
    rng = np.random.default_rng(11)
    a = rng.binomial(n, 0.30, 4000)
    b = rng.binomial(n, 0.35, 4000)
    pooled = (a + b) / (2 * n)
    z = (b - a) / n / np.sqrt(pooled * (1 - pooled) * 2 / n)
    power = float(np.mean(np.abs(z) > stats.norm.ppf(0.975)))
    assert 0.77 < power < 0.83


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ab.sample_size_proportions(0.0, 0.02), "strictly between 0 and 1"),
        (lambda: ab.sample_size_proportions(1.2, 0.02), "strictly between 0 and 1"),
        (lambda: ab.sample_size_proportions(0.95, 0.1), "leaves the range"),
        (lambda: ab.sample_size_proportions(0.1, 0.0), "greater than 0"),
        (lambda: ab.sample_size_proportions(0.1, 0.02, alpha=0.6), "Alpha"),
        (lambda: ab.sample_size_proportions(0.1, 0.02, power=0.4), "Power"),
        (lambda: ab.sample_size_means(0.0, 1.0), "standard deviation"),
        (lambda: ab.sample_size_means(1.0, 1e-6), "more than"),
        (lambda: ab.plan_sample_size("median", 1.0, 0.1), "Unknown metric kind"),
        (lambda: ab.plan_sample_size("mean", 1.0, 0.1), "standard deviation"),
        (lambda: ab.plan_sample_size("proportion", 0.1, 0.02, variants=9), "2 to 6"),
    ],
)
def test_sample_size_inputs_are_checked(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError, match=message):
        call()


def test_planning_several_variants_splits_alpha() -> None:
    two = ab.plan_sample_size("proportion", 0.1, 0.02)
    three = ab.plan_sample_size("proportion", 0.1, 0.02, variants=3)
    assert two == 3841
    assert three == ab.sample_size_proportions(0.1, 0.02, alpha=0.025) > two
    assert ab.plan_sample_size("proportion", 0.1, 0.02, higher_is_better=False) == _by_hand(
        0.10, 0.08, 0.8
    )


# --- fixed-horizon tests ------------------------------------------------------------------------


def test_z_test_by_hand() -> None:
    result = ab.z_test_proportions(100, 1000, 130, 1000)
    pooled = 230 / 2000
    z = 0.03 / math.sqrt(pooled * (1 - pooled) * 2 / 1000)
    assert result.effect == pytest.approx(0.03)
    assert result.statistic == pytest.approx(z)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(z))
    assert result.relative_lift == pytest.approx(0.3)
    half = stats.norm.ppf(0.975) * math.sqrt(0.1 * 0.9 / 1000 + 0.13 * 0.87 / 1000)
    assert (result.ci_low, result.ci_high) == pytest.approx((0.03 - half, 0.03 + half))
    assert result.significant and result.df is None


def test_z_test_is_symmetric_and_handles_degenerate_rates() -> None:
    ab_, ba = ab.z_test_proportions(80, 900, 120, 1100), ab.z_test_proportions(120, 1100, 80, 900)
    assert ab_.effect == pytest.approx(-ba.effect)
    assert ab_.p_value == pytest.approx(ba.p_value)
    assert (ab_.ci_low, ab_.ci_high) == pytest.approx((-ba.ci_high, -ba.ci_low))
    none = ab.z_test_proportions(0, 50, 0, 60)
    assert (none.p_value, none.relative_lift) == (1.0, None)
    with pytest.raises(ValidationError, match="at least one observation"):
        ab.z_test_proportions(0, 0, 1, 10)


def test_welch_matches_scipy_and_is_symmetric() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 1.0, 25), rng.normal(1.6, 3.0, 40)
    result = ab.welch_t_test(a, b)
    reference = stats.ttest_ind(b, a, equal_var=False)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.df == pytest.approx(reference.df)
    interval = reference.confidence_interval(0.95)
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    # from summaries, the same
    summary = ab.welch_t_test(ab.summarize(a), ab.summarize(b))
    assert summary.p_value == pytest.approx(result.p_value)
    flipped = ab.welch_t_test(b, a)
    assert flipped.effect == pytest.approx(-result.effect)
    assert flipped.p_value == pytest.approx(result.p_value)


def test_welch_by_hand_from_summaries() -> None:
    # two samples: mean 10, sd 2, n 20 against mean 11, sd 3, n 30
    result = ab.welch_t_test(ab.Summary(20, 10.0, 2.0), ab.Summary(30, 11.0, 3.0))
    va, vb = 4 / 20, 9 / 30
    df = (va + vb) ** 2 / (va**2 / 19 + vb**2 / 29)
    assert result.df == pytest.approx(df)  # 47.98
    assert result.statistic == pytest.approx(1 / math.sqrt(va + vb))
    assert result.p_value == pytest.approx(2 * stats.t.sf(1 / math.sqrt(va + vb), df))
    with pytest.raises(ValidationError, match="at least two"):
        ab.welch_t_test([1.0], [1.0, 2.0])


def test_confidence_intervals_cover_the_truth_about_95_percent() -> None:
    rng = np.random.default_rng(2024)
    sims = 2000
    # proportions: the Wald interval of the difference, 0.30 against 0.33, 1,000 units each
    a, b = rng.binomial(1000, 0.30, sims), rng.binomial(1000, 0.33, sims)
    covered = 0
    for x, y in zip(a, b, strict=True):
        r = ab.z_test_proportions(int(x), 1000, int(y), 1000)
        covered += r.ci_low <= 0.03 <= r.ci_high
    assert 0.935 < covered / sims < 0.965
    # means with unequal variances and sizes: Welch's interval
    covered = 0
    for _ in range(sims):
        r = ab.welch_t_test(rng.normal(5.0, 1.0, 15), rng.normal(5.5, 3.0, 40))
        covered += r.ci_low <= 0.5 <= r.ci_high
    assert 0.935 < covered / sims < 0.965
    # one rate's Wilson interval
    hits = rng.binomial(200, 0.05, sims)
    covered = sum(lo <= 0.05 <= hi for lo, hi in (ab.wilson_interval(int(h), 200) for h in hits))
    assert 0.93 < covered / sims < 0.97


# --- the mSPRT ----------------------------------------------------------------------------------


def _naive_peeking_rejects(flags: np.ndarray, values: np.ndarray, every: int) -> bool:
    """A two-proportion z test after every `every` units; True when any look is significant."""
    looks = np.arange(every, values.size + 1, every) - 1
    n_b = np.cumsum(flags)[looks]
    n_a = looks + 1 - n_b
    s_b = np.cumsum(values * flags)[looks]
    s_a = np.cumsum(values)[looks] - s_b
    pooled = (s_a + s_b) / (n_a + n_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (s_b / n_b - s_a / n_a) / np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    return bool(np.any(np.abs(np.nan_to_num(z)) > stats.norm.ppf(0.975)))


def test_msprt_keeps_the_false_positive_rate_under_peeking() -> None:
    """Under H0, looking after every 100 units for 5,000 units: the mSPRT stays below alpha,
    a fixed-horizon z test repeated at each look does not."""
    rng = np.random.default_rng(20170101)
    sims, units, alpha = 400, 5000, 0.05
    sequential = naive = 0
    for _ in range(sims):
        flags = rng.random(units) < 0.5
        values = (rng.random(units) < 0.10).astype(float)
        result = ab.msprt(flags, values, tau2=0.02**2, alpha=alpha, every=100)
        sequential += result.significant
        naive += _naive_peeking_rejects(flags, values, 100)
    assert sequential / sims <= alpha
    assert naive / sims > 2 * alpha  # about 0.3 with 50 looks


def test_msprt_false_positive_rate_for_means_looking_at_every_unit() -> None:
    rng = np.random.default_rng(5)
    sims, units = 300, 2000
    rejected = 0
    for _ in range(sims):
        flags = rng.random(units) < 0.5
        result = ab.msprt(flags, rng.normal(1.2, 0.5, units), tau2=0.1**2, alpha=0.05)
        rejected += result.significant
    assert rejected / sims <= 0.05


def test_msprt_finds_a_real_effect_and_its_sequence_covers_it() -> None:
    rng = np.random.default_rng(8)
    found, covered, sims = 0, 0, 200
    for _ in range(sims):
        flags = rng.random(6000) < 0.5
        values = (rng.random(6000) < np.where(flags, 0.13, 0.10)).astype(float)
        result = ab.msprt(flags, values, tau2=0.03**2, every=50)
        found += result.significant
        covered += result.ci_low <= 0.03 <= result.ci_high
        # the p-value path only goes down and the sequence only narrows
        assert np.all(np.diff(result.path_p_value) <= 0)
        assert np.all(np.diff(result.path_ci_high - result.path_ci_low) <= 1e-12)
    assert found / sims > 0.7  # a fixed test at this n has about 0.97; mSPRT pays for peeking
    assert covered / sims >= 0.95


def test_msprt_by_hand_and_its_edge_cases() -> None:
    # one look: Lambda = sqrt(V / (V + tau2)) exp(tau2 D^2 / (2 V (V + tau2)))
    a, b = [0.0, 1.0] * 20, [1.0, 1.0, 1.0, 0.0] * 10
    flags = np.array([False] * 40 + [True] * 40)
    result = ab.msprt(flags, np.array(a + b), tau2=0.04, min_n=2, every=80)
    va, vb = np.var(a, ddof=1) / 40, np.var(b, ddof=1) / 40
    v, d = va + vb, 0.25
    lam = math.sqrt(v / (v + 0.04)) * math.exp(0.04 * d * d / (2 * v * (v + 0.04)))
    assert result.looks == 1
    assert result.p_value == pytest.approx(min(1, 1 / lam))
    half = math.sqrt(2 * v * (v + 0.04) / 0.04 * (math.log(20) + 0.5 * math.log((v + 0.04) / v)))
    assert (result.ci_low, result.ci_high) == pytest.approx((d - half, d + half))
    assert result.at(79) is None and result.at(80) == (
        result.p_value,
        result.ci_low,
        result.ci_high,
    )
    # too few units for a look: no verdict
    early = ab.msprt([True, False] * 5, [1.0, 0.0] * 5, tau2=0.01)
    assert (early.looks, early.p_value, early.significant) == (0, 1.0, False)
    with pytest.raises(ValidationError, match="tau"):
        ab.msprt([True], [1.0], tau2=0)


# --- recommendation -----------------------------------------------------------------------------


def _fixed(effect: float, p_value: float) -> FixedResult:
    return FixedResult("z", effect, effect - 0.01, effect + 0.01, p_value, 2.0, 0.1, 0.05)


def _sequential(effect: float, p_value: float) -> ab.SequentialResult:
    empty = np.zeros(0)
    return ab.SequentialResult(
        effect, p_value, effect - 0.01, effect + 0.01, 0.05, 1e-4, 10,
        np.zeros(0, dtype=np.int64), empty, empty, empty, empty,
    )  # fmt: skip


def test_no_winner_before_the_planned_sample_size() -> None:
    rec = ab.recommend(_fixed(0.05, 0.001), n_a=400, n_b=300, sample_size=1000)
    assert rec.code == "keep_running"
    assert rec.more_units == 1400  # B is 700 short and gets half the traffic
    assert "300 of 1,000" in rec.text


def _at_size(
    fixed: FixedResult | None,
    higher_is_better: bool = True,
    sequential: ab.SequentialResult | None = None,
    n: int = 1000,
) -> str:
    """The recommendation's code with `n` units in each variant and a planned size of 1,000."""
    return ab.recommend(
        fixed,
        n_a=n,
        n_b=n + 10,
        sample_size=1000,
        higher_is_better=higher_is_better,
        sequential=sequential,
    ).code


def test_at_the_sample_size_the_fixed_test_decides() -> None:
    assert _at_size(_fixed(0.05, 0.001)) == "ship_b"
    assert _at_size(_fixed(-0.05, 0.001)) == "keep_a"
    assert _at_size(_fixed(0.05, 0.2)) == "no_difference"
    # lower is better (latency, error): a negative effect wins
    assert _at_size(_fixed(-0.05, 0.001), higher_is_better=False) == "ship_b"
    assert _at_size(_fixed(0.05, 0.001), higher_is_better=False) == "keep_a"
    rates = ab.recommend(_fixed(0.05, 0.001), n_a=1000, n_b=1000, sample_size=1000, rates=True)
    assert "effect +5.00 pp" in rates.text


def test_a_significant_sequential_test_may_stop_early() -> None:
    significant = _sequential(0.04, 0.01)
    assert _at_size(None, sequential=significant, n=100) == "ship_b"
    assert _at_size(None, sequential=significant, n=100, higher_is_better=False) == "keep_a"
    ship = ab.recommend(None, n_a=100, n_b=100, sample_size=1000, sequential=significant)
    assert "always-valid" in ship.text
    waiting = ab.recommend(
        _fixed(0.04, 0.01), n_a=100, n_b=100, sample_size=1000, sequential=_sequential(0.04, 0.2)
    )
    assert waiting.code == "keep_running" and "sequential p = 0.2" in waiting.text


def test_several_treatments_make_one_verdict() -> None:
    ship_b, ship_c = Recommendation("ship_b", "B"), Recommendation("ship_b", "C")
    run = Recommendation("keep_running", "run", 50)
    keep = Recommendation("keep_a", "keep")
    same = Recommendation("no_difference", "same")
    assert ab.overall_recommendation([(ship_b, 0.01), (ship_c, 0.03)], "A", True).text == "C"
    assert ab.overall_recommendation([(ship_b, -0.01), (ship_c, -0.03)], "A", False).text == "C"
    assert ab.overall_recommendation([(run, 0), (keep, 0)], "A", True).code == "keep_running"
    assert ab.overall_recommendation([(keep, 0), (keep, 0)], "A", True).code == "keep_a"
    assert ab.overall_recommendation([(keep, 0), (same, 0)], "A", True).code == "no_difference"
