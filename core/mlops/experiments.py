"""A/B experiments between model versions, prompts or LLM providers.

An experiment is planned up front: its metric (a 0/1 proportion or a mean), the baseline, the
minimum detectable effect, alpha and power fix the sample size per variant when it is created,
and that size never changes (moving it after peeking would void the test). Units are assigned by
hashing their id with the experiment's random salt (`ab_stats.assign`), so any service can ask
which variant a unit gets without a write, and recorded outcomes are filed under the variant the
hash gives, never one a caller claims. The first variant is the control; every other variant is
compared with it, at alpha / (variants - 1) when there are several (Bonferroni). The statistics
live in `core.mlops.ab_stats`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, ValidationError
from core.mlops import ab_stats
from core.mlops.ab_stats import (
    FixedResult,
    FloatArray,
    Recommendation,
    SequentialResult,
    plan_sample_size,
)
from core.mlops.models import Experiment, ExperimentObservation
from core.text import clean_text

KINDS = {"model": "Model versions", "prompt": "Prompts", "llm_provider": "LLM providers"}
MAX_VARIANTS = ab_stats.MAX_VARIANTS
METRIC_KINDS = ab_stats.METRIC_KINDS
MAX_ROWS = 1_000_000  # observations per call
MAX_IMPORT_BYTES = 20 * 1024 * 1024
CSV_COLUMNS = ("unit_id", "value")  # and optionally ts
CLOCK_SKEW = timedelta(minutes=5)
_KEY = re.compile(r"^[a-z][a-z0-9_\-]{1,63}$")
_VARIANT_KEY = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,31}$")
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    weight: float  # share of the traffic; the weights sum to 1


@dataclass(frozen=True)
class ExperimentView:
    key: str
    name: str
    kind: str
    description: str
    variants: list[Variant]
    metric_name: str
    metric_kind: str
    higher_is_better: bool
    baseline: float
    baseline_sd: float | None
    mde: float
    alpha: float
    power: float
    sample_size: int
    sequential: bool
    status: str
    decision: str
    created_by: str
    created_at: datetime
    stopped_at: datetime | None

    @property
    def comparison_alpha(self) -> float:
        """alpha per comparison with the control (Bonferroni over the treatments)."""
        return self.alpha / max(1, len(self.variants) - 1)


def _view(exp: Experiment) -> ExperimentView:
    variants = [
        Variant(v["key"], v["label"], float(v["weight"])) for v in json.loads(exp.variants_json)
    ]
    return ExperimentView(
        exp.key, exp.name, exp.kind, exp.description, variants, exp.metric_name, exp.metric_kind,
        exp.higher_is_better, exp.baseline, exp.baseline_sd, exp.mde, exp.alpha, exp.power,
        exp.sample_size, exp.sequential, exp.status, exp.decision, exp.created_by,
        exp.created_at, exp.stopped_at,
    )  # fmt: skip


# --- planning -----------------------------------------------------------------------------------


def check_key(value: str) -> str:
    key = value.strip().lower()
    if not _KEY.fullmatch(key):
        raise ValidationError(
            f"Experiment key {value[:40]!r} is not valid: 2-64 characters, lower-case letters, "
            "digits, '_' or '-', starting with a letter (e.g. kb-prompt-v3)."
        )
    return key


def _check_variants(variants: Sequence[tuple[str, str, float]]) -> list[Variant]:
    if len(variants) < 2:
        raise ValidationError("An experiment needs at least two variants (a control and one more).")
    if len(variants) > MAX_VARIANTS:
        raise ValidationError(f"An experiment has at most {MAX_VARIANTS} variants.")
    checked = []
    for key, label, weight in variants:
        vkey = key.strip().lower()
        if not _VARIANT_KEY.fullmatch(vkey):
            raise ValidationError(
                f"Variant key {key[:40]!r} is not valid: 1-32 lower-case letters, digits, '.', '_' "
                "or '-' (e.g. v2, gpt-4o-mini)."
            )
        try:
            number = float(weight)
        except (TypeError, ValueError):
            raise ValidationError(f"Variant {vkey}: weight {weight!r} is not a number.") from None
        checked.append((vkey, clean_text(label, 80) or vkey, number))
    normalised = ab_stats.normalise_weights([(k, w) for k, _, w in checked])
    return [Variant(k, label, w) for (k, w), (_, label, _) in zip(normalised, checked, strict=True)]


def _load(session: Session, key: str) -> Experiment:
    exp = session.scalar(select(Experiment).where(Experiment.key == key.strip().lower()))
    if exp is None:
        raise NotFound(f"No experiment with the key {key[:64]!r}.")
    return exp


def create_experiment(
    actor: Actor,
    key: str,
    name: str,
    kind: str,
    variants: Sequence[tuple[str, str, float]],
    metric_name: str,
    metric_kind: str,
    *,
    baseline: float,
    mde: float,
    higher_is_better: bool = True,
    baseline_sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    sequential: bool = False,
    description: str = "",
) -> ExperimentView:
    """Plan and start an experiment. `variants`: (key, label, weight), the control first;
    `mde` is absolute (0.02 = two percentage points for a rate)."""
    require(actor, Permission.MLOPS_EXPERIMENT, action="mlops.experiment.create")
    key = check_key(key)
    if kind not in KINDS:
        raise ValidationError(f"Unknown experiment kind {kind[:20]!r}: {', '.join(KINDS)}.")
    checked = _check_variants(variants)
    metric = clean_text(metric_name, 64)
    if not metric:
        raise ValidationError("Name the metric the experiment decides on (e.g. helpful).")
    sd = baseline_sd if metric_kind == "mean" else None
    better, count = higher_is_better, len(checked)
    sample_size = plan_sample_size(
        metric_kind,
        baseline,
        mde,
        alpha,
        power,
        baseline_sd=sd,
        higher_is_better=better,
        variants=count,
    )
    with unit_of_work() as session:
        if session.scalar(select(Experiment.id).where(Experiment.key == key)) is not None:
            raise Conflict(f"An experiment with the key {key!r} already exists; choose another.")
        exp = Experiment(
            key=key,
            name=clean_text(name, 200) or key,
            kind=kind,
            description=clean_text(description, 1000),
            variants_json=json.dumps([v.__dict__ for v in checked]),
            metric_name=metric,
            metric_kind=metric_kind,
            higher_is_better=higher_is_better,
            baseline=float(baseline),
            baseline_sd=sd,
            mde=float(mde),
            alpha=float(alpha),
            power=float(power),
            sample_size=sample_size,
            sequential=sequential,
            salt=secrets.token_hex(8),
            status="running",
            created_by=actor.username,
            created_at=utcnow(),
        )
        session.add(exp)
        session.flush()
        summary: dict[str, object] = {"kind": kind, "metric": metric, "sequential": sequential}
        summary |= {"variants": [v.key for v in checked], "sample_size": sample_size}
        record(session, actor, "mlops.experiment.create", f"experiment:{key}", summary)
        return _view(exp)


def get_experiment(actor: Actor, key: str) -> ExperimentView:
    require(actor, Permission.MLOPS_READ, action="mlops.experiment.read")
    with unit_of_work(read_only=True) as session:
        return _view(_load(session, key))


def variants_of(exp: Experiment) -> list[tuple[str, float]]:
    return [(v["key"], float(v["weight"])) for v in json.loads(exp.variants_json)]


def assign_unit(actor: Actor, key: str, unit_id: str) -> str:
    """The variant `unit_id` gets (a hash: no write, same answer every time)."""
    require(actor, Permission.MLOPS_READ, action="mlops.experiment.read")
    unit = clean_text(unit_id, 128)
    if not unit:
        raise ValidationError("Give a unit id (a user, session or request id).")
    with unit_of_work(read_only=True) as session:
        exp = _load(session, key)
        return ab_stats.assign(exp.salt, unit, variants_of(exp))


# --- observations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordReport:
    rows: int
    by_variant: dict[str, int]


# (unit_id, value) or (unit_id, value, ts): ts a UTC-aware datetime, ISO 8601 text, or None (now)
Row = tuple[str, float | int | str] | tuple[str, float | int | str, datetime | str | None]


def _parse_ts(given: object, now: datetime) -> datetime:
    value = given
    if isinstance(given, str) and given.strip():
        try:
            value = datetime.fromisoformat(given.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts {given[:30]!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        return now
    if value.tzinfo is None:
        raise ValueError("ts has no time zone (use ISO 8601 with Z or +00:00)")
    if value > now + CLOCK_SKEW:
        raise ValueError("ts is in the future")
    return value


def _check_rows(
    rows: Iterable[Row], exp: Experiment, now: datetime, lines: Sequence[int] | None = None
) -> list[dict[str, object]]:
    """The rows, validated, with their variant from the hash; or a ValidationError naming the
    first problems by row number (by `lines`, the file's line numbers, for a CSV file)."""
    checked: list[dict[str, object]] = []
    problems: list[str] = []
    seen: set[str] = set()
    variants = variants_of(exp)
    for index, row in enumerate(rows):
        try:
            unit_id, raw_value, ts = (*row, None)[:3]
            unit = clean_text(str(unit_id), 200)
            if not unit or len(unit) > 128:
                raise ValueError("unit_id must be 1-128 characters")
            if unit in seen:
                raise ValueError(f"unit {unit[:40]!r} appears twice")
            seen.add(unit)
            try:
                value = float(raw_value)
            except (TypeError, ValueError):
                value = math.nan
            if not math.isfinite(value) or abs(value) > 1e12:
                raise ValueError(f"value {str(raw_value)[:20]!r} is not a finite number")
            if exp.metric_kind == "proportion" and value not in (0.0, 1.0):
                raise ValueError(f"{exp.metric_name} is a proportion: value must be 0 or 1")
            when = _parse_ts(ts, now)
        except (ValueError, TypeError) as exc:
            problems.append(f"line {lines[index]}: {exc}" if lines else f"row {index + 1}: {exc}")
            if len(problems) >= 5:
                break
            continue
        if len(checked) >= MAX_ROWS:
            raise ValidationError(f"At most {MAX_ROWS:,} observations at once; split the data.")
        variant = ab_stats.assign(exp.salt, unit, variants)
        checked.append(
            dict(experiment_id=exp.id, unit_id=unit, variant=variant, value=value, ts=when)
        )
    if problems:
        again = "import the file again" if lines else "send them again"
        raise ValidationError(
            f"Nothing was recorded; fix these and {again}: " + "; ".join(problems)
        )
    if not checked:
        raise ValidationError("There are no observations to record.")
    return checked


def _record(
    session: Session, actor: Actor, exp: Experiment, checked: list[dict[str, object]], source: str
) -> RecordReport:
    if exp.status != "running":
        raise Conflict(
            f"Experiment {exp.key} was stopped ({exp.decision or 'no decision given'}); its data "
            "is final. Start a new experiment to test again."
        )
    units = [str(r["unit_id"]) for r in checked]
    known: list[str] = []
    for i in range(0, len(units), 1000):
        known.extend(
            session.scalars(
                select(ExperimentObservation.unit_id).where(
                    ExperimentObservation.experiment_id == exp.id,
                    ExperimentObservation.unit_id.in_(units[i : i + 1000]),
                )
            )
        )
    if known:
        shown = ", ".join(repr(u[:40]) for u in sorted(known)[:5])
        raise Conflict(
            f"Nothing was recorded: {len(known):,} unit(s) already have an outcome in {exp.key} "
            f"({shown}{', ...' if len(known) > 5 else ''}); a unit counts once. Leave them out."
        )
    session.execute(insert(ExperimentObservation), checked)
    by_variant = {key: 0 for key, _ in variants_of(exp)}
    for row in checked:
        by_variant[str(row["variant"])] += 1
    summary = {"rows": len(checked), "by_variant": by_variant, "source": source}
    record(session, actor, "mlops.experiment.observe", f"experiment:{exp.key}", summary)
    return RecordReport(len(checked), by_variant)


def record_observations(actor: Actor, key: str, rows: Iterable[Row]) -> RecordReport:
    """Record outcomes (unit_id, value, ts or None for now): all of them or none. A unit counts
    once per experiment; its variant is the one the hash assigns."""
    require(actor, Permission.MLOPS_EXPERIMENT, action="mlops.experiment.observe")
    with unit_of_work() as session:
        exp = _load(session, key)
        return _record(session, actor, exp, _check_rows(rows, exp, utcnow()), "api")


def _csv_rows(data: bytes) -> tuple[list[Row], list[int]]:
    """The file's rows and their line numbers (the header is line 1)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text; export it as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise ValidationError(
            f"The file lacks the column(s) {', '.join(missing)}; it needs unit_id and value "
            "(and optionally ts, ISO 8601 with a time zone)."
        )
    rows: list[Row] = []
    lines: list[int] = []  # where each row ends (blank lines are skipped but counted)
    for raw in reader:
        cells = {(k or "").strip(): v for k, v in raw.items() if isinstance(v, str)}
        rows.append((cells.get("unit_id", ""), cells.get("value", ""), cells.get("ts")))
        lines.append(reader.line_num)
    return rows, lines


def import_observations_csv(actor: Actor, key: str, data: bytes) -> RecordReport:
    """Observations from CSV (unit_id, value[, ts]): every row or none; problems are reported
    by line number (the header is line 1)."""
    require(actor, Permission.MLOPS_EXPERIMENT, action="mlops.experiment.observe")
    if len(data) > MAX_IMPORT_BYTES:
        raise ValidationError(
            f"The file is {len(data) / 1e6:.0f} MB; the limit is "
            f"{MAX_IMPORT_BYTES // (1024 * 1024)} MB. Split it into several files."
        )
    with unit_of_work() as session:
        exp = _load(session, key)
        rows, lines = _csv_rows(data)
        checked = _check_rows(rows, exp, utcnow(), lines)
        return _record(session, actor, exp, checked, "csv")


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VariantStats:
    key: str
    label: str
    weight: float
    n: int
    mean: float  # the rate for a proportion
    sd: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class Comparison:
    """One treatment against the control."""

    variant: str
    label: str
    fixed: FixedResult | None  # None until both variants have enough units
    sequential: SequentialResult | None  # sequential experiments only
    recommendation: Recommendation


@dataclass(frozen=True)
class ExperimentResults:
    experiment: ExperimentView
    variants: list[VariantStats]
    comparisons: list[Comparison]
    observations: int
    first_ts: datetime | None
    last_ts: datetime | None
    progress: float  # the smallest variant's n / sample size, at most 1
    recommendation: Recommendation


@dataclass(frozen=True)
class _Data:
    """An experiment's observations in arrival order (ts, then id)."""

    variants: npt.NDArray[np.object_]
    values: FloatArray
    ts: list[datetime]


def _observations(session: Session, exp: Experiment) -> _Data:
    rows = session.execute(
        select(ExperimentObservation.variant, ExperimentObservation.value, ExperimentObservation.ts)
        .where(ExperimentObservation.experiment_id == exp.id)
        .order_by(ExperimentObservation.ts, ExperimentObservation.id)
    ).all()
    return _Data(
        np.array([r[0] for r in rows], dtype=object),
        np.array([r[1] for r in rows], dtype=float),
        [r[2] for r in rows],
    )


def _variant_stats(view: ExperimentView, data: _Data) -> list[VariantStats]:
    out = []
    for v in view.variants:
        values = data.values[data.variants == v.key]
        s = ab_stats.summarize(values)
        low, high = ab_stats.variant_interval(view.metric_kind, values, view.alpha)
        out.append(VariantStats(v.key, v.label, v.weight, s.n, s.mean, s.sd, low, high))
    return out


def _sequential(
    view: ExperimentView, is_b: BoolArray, values: FloatArray
) -> SequentialResult | None:
    if not view.sequential:
        return None
    tau2 = ab_stats.default_tau2(view.mde)
    return ab_stats.msprt(is_b, values, tau2=tau2, alpha=view.comparison_alpha)


def _pair(view: ExperimentView, data: _Data, treatment: Variant) -> tuple[FloatArray, BoolArray]:
    """The control's and the treatment's observations in arrival order, and which are B."""
    control = view.variants[0].key
    in_pair = (data.variants == control) | (data.variants == treatment.key)
    return data.values[in_pair], np.asarray(data.variants[in_pair] == treatment.key, dtype=bool)


def _compare(view: ExperimentView, data: _Data, treatment: Variant) -> Comparison:
    control = view.variants[0]
    values, is_b = _pair(view, data, treatment)
    alpha = view.comparison_alpha
    fixed = ab_stats.fixed_test(view.metric_kind, values[~is_b], values[is_b], alpha)
    sequential = _sequential(view, is_b, values)
    recommendation = ab_stats.recommend(
        fixed,
        n_a=int((~is_b).sum()),
        n_b=int(is_b.sum()),
        sample_size=view.sample_size,
        higher_is_better=view.higher_is_better,
        sequential=sequential if sequential is not None and sequential.looks else None,
        weights=(control.weight, treatment.weight),
        labels=(control.label, treatment.label),
        rates=view.metric_kind == "proportion",
    )
    return Comparison(treatment.key, treatment.label, fixed, sequential, recommendation)


def _best_effect(c: Comparison) -> float:
    """The effect the comparison's verdict rests on (sequential when that decided it)."""
    result = c.sequential if c.sequential is not None and c.sequential.significant else c.fixed
    return result.effect if result is not None else 0.0


def _results(session: Session, exp: Experiment) -> ExperimentResults:
    view = _view(exp)
    data = _observations(session, exp)
    stats = _variant_stats(view, data)
    comparisons = [_compare(view, data, t) for t in view.variants[1:]]
    progress = min(1.0, min(s.n for s in stats) / view.sample_size)
    overall = ab_stats.overall_recommendation(
        [(c.recommendation, _best_effect(c)) for c in comparisons],
        view.variants[0].label,
        view.higher_is_better,
    )
    first, last = (data.ts[0], data.ts[-1]) if data.ts else (None, None)
    return ExperimentResults(view, stats, comparisons, len(data.ts), first, last, progress, overall)


def results(actor: Actor, key: str) -> ExperimentResults:
    """Per-variant figures, each treatment's test against the control, progress and advice."""
    require(actor, Permission.MLOPS_READ, action="mlops.experiment.read")
    with unit_of_work(read_only=True) as session:
        return _results(session, _load(session, key))


def list_experiments(actor: Actor) -> list[ExperimentResults]:
    """Every experiment with its results, newest first (the list shows progress and advice)."""
    require(actor, Permission.MLOPS_READ, action="mlops.experiment.read")
    with unit_of_work(read_only=True) as session:
        exps = session.scalars(select(Experiment).order_by(Experiment.created_at.desc()))
        return [_results(session, e) for e in exps]


def stop_experiment(actor: Actor, key: str, decision: str) -> ExperimentView:
    """Stop collecting and write down what was decided (the data stays, read-only)."""
    require(actor, Permission.MLOPS_EXPERIMENT, action="mlops.experiment.stop")
    text = clean_text(decision, 500)
    if len(text) < 3:
        raise ValidationError("Write down the decision (e.g. 'ship v2 to everyone').")
    with unit_of_work() as session:
        exp = _load(session, key)
        if exp.status != "running":
            raise Conflict(f"Experiment {exp.key} is already stopped: {exp.decision}")
        advice = _results(session, exp).recommendation
        exp.status, exp.decision, exp.stopped_at = "stopped", text, utcnow()
        summary = {"decision": text, "recommendation": advice.code}
        record(session, actor, "mlops.experiment.stop", f"experiment:{exp.key}", summary)
        return _view(exp)


# --- over time ----------------------------------------------------------------------------------

LIFT_COLUMNS = [
    "day", "variant", "label", "n_control", "n_variant", "effect", "ci_low", "ci_high",
    "relative_lift", "seq_ci_low", "seq_ci_high", "seq_p_value",
]  # fmt: skip


def lift_over_time(actor: Actor, key: str) -> pd.DataFrame:
    """For each day with data and each treatment: the cumulative effect against the control up
    to the end of that day, its confidence interval and (sequential experiments) the
    always-valid confidence sequence and p-value. Days are UTC dates."""
    require(actor, Permission.MLOPS_READ, action="mlops.experiment.read")
    with unit_of_work(read_only=True) as session:
        exp = _load(session, key)
        view, data = _view(exp), _observations(session, exp)
    if not data.ts:
        return pd.DataFrame(columns=LIFT_COLUMNS)
    days = np.array([t.date() for t in data.ts], dtype=object)
    control = view.variants[0].key
    out = []
    for treatment in view.variants[1:]:
        values, is_b = _pair(view, data, treatment)
        pair_days = days[(data.variants == control) | (data.variants == treatment.key)]
        seq = _sequential(view, is_b, values)
        for day in sorted(set(pair_days)):
            upto = int(np.searchsorted(pair_days, day, side="right"))
            a, b = values[:upto][~is_b[:upto]], values[:upto][is_b[:upto]]
            fixed = ab_stats.fixed_test(view.metric_kind, a, b, view.comparison_alpha)
            if fixed is None:
                continue
            sequence = (seq.at(upto) if seq else None) or (math.nan, math.nan, math.nan)
            estimate = (fixed.effect, fixed.ci_low, fixed.ci_high, fixed.relative_lift)
            head = (day, treatment.key, treatment.label, a.size, b.size)
            out.append((*head, *estimate, *sequence[1:], sequence[0]))
    return pd.DataFrame(out, columns=LIFT_COLUMNS)
