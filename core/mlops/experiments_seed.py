"""Demo A/B experiments: one of each kind, in each state the Experiments page can show.

- bike-demand v1 vs v2 (model): finished, past its sample size, v2 clearly better at keeping the
  absolute error under 50 rentals; stopped with the decision to promote v2. When the demo seeder
  passes the two versions' real outcomes (`real`: every hour of July and August 2012, each
  served by the version its hash picks), those are the observations; otherwise simulated rates.
- the knowledge-base answer prompt (prompt): running, a quarter of the way to its sample size,
  so the advice is to keep running.
- gpt-4o-mini vs claude-haiku latency (LLM provider, lower is better): a sequential experiment
  whose always-valid test is already significant below the planned sample size.

Units are assigned with `ab_stats.assign` and the experiment's salt, exactly as the service does,
so every stored variant is the one the hash gives. Written straight into the caller's session
(the demo seeder's transaction); no actor checks and no audit entries, as for other seeders.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.orm import Session

from core.mlops.ab_stats import assign, plan_sample_size
from core.mlops.models import Experiment, ExperimentObservation

SEEDED_BY = "system:demo-seed"


@dataclass(frozen=True)
class _Plan:
    key: str
    name: str
    kind: str
    description: str
    variants: list[tuple[str, str]]  # (key, label); equal weights
    metric_name: str
    metric_kind: str
    higher_is_better: bool
    baseline: float
    mde: float
    baseline_sd: float | None
    sequential: bool
    units: int
    unit_prefix: str
    start_days_ago: int  # observations from here...
    end_days_ago: int  # ...to here
    # the truth per variant: (rate, 0) for a proportion, log-normal (mu, sigma) for a mean
    truth: dict[str, tuple[float, float]] = field(default_factory=dict)
    decision: str = ""  # stopped experiments only


def _outcomes(rng: random.Random, plan: _Plan, variant: str, count: int) -> list[float]:
    """A variant's outcomes. Rates are met exactly (so the demo's verdicts do not depend on the
    demo seed), in shuffled order; latencies are log-normal seconds, to the millisecond."""
    first, second = plan.truth[variant]
    if plan.metric_kind == "proportion":
        ones = round(first * count)
        values = [1.0] * ones + [0.0] * (count - ones)
        rng.shuffle(values)
        return values
    return [round(rng.lognormvariate(first, second), 3) for _ in range(count)]


PLANS: list[_Plan] = [
    _Plan(
        "bike-demand-v1-v2",
        "bike-demand v1 vs v2",
        "model",
        "Does the retrained demand model (v2, trained through June 2012) keep more hourly "
        "forecasts within 50 rentals of the actual count than v1? Unit: an hour of July and "
        "August 2012, served by the version its hash picks.",
        [("v1", "bike-demand v1 (champion)"), ("v2", "bike-demand v2 (challenger)")],
        "abs_error_under_50",
        "proportion",
        True,
        0.40,
        0.08,
        None,
        False,
        1300,
        "ride-hour",
        35,
        14,
        {"v1": (0.41, 0), "v2": (0.69, 0)},
        "Promote v2 to champion: significantly more forecasts within 50 rentals.",
    ),
    _Plan(
        "kb-answer-prompt-v3",
        "Knowledge-base answer prompt: v2 vs v3",
        "prompt",
        "v3 asks the model to cite the retrieved passages; metric: thumbs-up on the answer.",
        [("v2", "answer prompt v2 (current)"), ("v3", "answer prompt v3 (cite sources)")],
        "helpful",
        "proportion",
        True,
        0.55,
        0.05,
        None,
        False,
        760,
        "kb-session",
        9,
        0,
        {"v2": (0.55, 0), "v3": (0.59, 0)},
    ),
    _Plan(
        "llm-provider-latency",
        "LLM provider: gpt-4o-mini vs claude-haiku",
        "llm_provider",
        "End-to-end latency of the chat-small route per request; sequential, so the team may "
        "look every day and stop as soon as it is significant.",
        [("gpt-4o-mini", "OpenAI gpt-4o-mini"), ("claude-haiku", "Anthropic claude-haiku")],
        "latency_s",
        "mean",
        False,
        1.2,
        0.1,
        0.5,
        True,
        600,
        "llm-request",
        6,
        0,
        # means 1.20 s (sd 0.45) and 0.95 s (sd 0.37)
        {"gpt-4o-mini": (0.1165, 0.3628), "claude-haiku": (-0.1255, 0.3853)},
    ),
]


# outcomes measured elsewhere: unit id -> (when, {variant: value})
RealOutcomes = Mapping[str, tuple[datetime, Mapping[str, float]]]


def seed_experiments(
    session: Session,
    rng: random.Random,
    anchor: datetime,
    real: Mapping[str, RealOutcomes] | None = None,
) -> str:
    """Write the demo experiments and their observations into `session`; returns a summary.
    `real` maps an experiment key to measured outcomes, which replace the simulated ones."""
    total = 0
    for plan in PLANS:
        measured = (real or {}).get(plan.key)
        if measured:
            total += _seed_measured(session, rng, plan, measured)
            continue
        variants = [(key, 1 / len(plan.variants)) for key, _ in plan.variants]
        start = anchor - timedelta(days=plan.start_days_ago)
        span = (plan.start_days_ago - plan.end_days_ago) * 86_400
        exp = _experiment(
            session,
            plan,
            rng,
            created_at=start - timedelta(hours=2),
            stopped_at=anchor - timedelta(days=plan.end_days_ago - 1),
        )
        units = [f"{plan.unit_prefix}-{number:05d}" for number in range(plan.units)]
        assigned = [assign(exp.salt, unit, variants) for unit in units]
        outcomes = {
            key: iter(_outcomes(rng, plan, key, assigned.count(key))) for key, _ in plan.variants
        }
        rows = [
            {
                "experiment_id": exp.id,
                "unit_id": unit,
                "variant": variant,
                "value": next(outcomes[variant]),
                "ts": start + timedelta(seconds=rng.randrange(span)),
            }
            for unit, variant in zip(units, assigned, strict=True)
        ]
        session.execute(insert(ExperimentObservation), rows)
        total += len(rows)
    return f"{len(PLANS)} experiments, {total:,} observations"


def _experiment(
    session: Session,
    plan: _Plan,
    rng: random.Random,
    *,
    created_at: datetime,
    stopped_at: datetime,
) -> Experiment:
    """The experiment's row, added and flushed (its id is needed for the observations)."""
    variants = [(key, 1 / len(plan.variants)) for key, _ in plan.variants]
    exp = Experiment(
        key=plan.key,
        name=plan.name,
        kind=plan.kind,
        description=plan.description,
        variants_json=json.dumps(
            [
                {"key": key, "label": label, "weight": weight}
                for (key, label), (_, weight) in zip(plan.variants, variants, strict=True)
            ]
        ),
        metric_name=plan.metric_name,
        metric_kind=plan.metric_kind,
        higher_is_better=plan.higher_is_better,
        baseline=plan.baseline,
        baseline_sd=plan.baseline_sd,
        mde=plan.mde,
        alpha=0.05,
        power=0.8,
        sample_size=plan_sample_size(
            plan.metric_kind,
            plan.baseline,
            plan.mde,
            baseline_sd=plan.baseline_sd,
            higher_is_better=plan.higher_is_better,
            variants=len(variants),
        ),
        sequential=plan.sequential,
        salt=f"{rng.getrandbits(64):016x}",
        status="stopped" if plan.decision else "running",
        decision=plan.decision,
        created_by=SEEDED_BY,
        created_at=created_at,
        stopped_at=stopped_at if plan.decision else None,
    )
    session.add(exp)
    session.flush()
    return exp


def _seed_measured(
    session: Session, rng: random.Random, plan: _Plan, measured: RealOutcomes
) -> int:
    """An experiment whose outcomes were measured: each unit gets the value of the variant its
    hash assigns, at its own time."""
    first = min(when for when, _ in measured.values())
    last = max(when for when, _ in measured.values())
    exp = _experiment(
        session,
        plan,
        rng,
        created_at=first - timedelta(hours=2),
        stopped_at=last + timedelta(days=1),
    )
    variants = [(key, 1 / len(plan.variants)) for key, _ in plan.variants]
    rows = []
    for unit, (when, values) in sorted(measured.items()):
        variant = assign(exp.salt, unit, variants)
        rows.append(
            {
                "experiment_id": exp.id,
                "unit_id": unit,
                "variant": variant,
                "value": float(values[variant]),
                "ts": when,
            }
        )
    session.execute(insert(ExperimentObservation), rows)
    return len(rows)
