"""A/B experiments through the service: planning, hashing units into variants, recording (calls
and CSV, all or nothing), results with the recommendation, stopping; the audit trail; refusals
for roles without the experiment permission; and the demo seeder's experiments."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from core.audit.service import AuditFilter, search
from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.mlops import ab_stats
from core.mlops import experiments as ex
from core.mlops.experiments_seed import seed_experiments
from core.mlops.models import Experiment, ExperimentObservation
from tests.helpers import ADMIN

ML = Actor("ml-eng", Role.ML_ENGINEER)
FINANCE = Actor("fin", Role.FINANCE)
COMPLIANCE = Actor("comp", Role.COMPLIANCE_OFFICER)
PROMPT_VARIANTS = [("control", "Prompt v1", 50), ("cite", "Prompt v2 (cite sources)", 50)]


def _create_prompt_test(key: str = "kb-prompt", **overrides: object) -> ex.ExperimentView:
    options: dict[str, object] = {
        "baseline": 0.10,
        "mde": 0.02,
        "description": "Does citing sources help?",
    }
    options.update(overrides)
    return ex.create_experiment(
        ML,
        key,
        "KB answer prompt",
        "prompt",
        PROMPT_VARIANTS,
        "helpful",
        "proportion",
        **options,  # type: ignore[arg-type]
    )


def _count(key: str) -> int:
    with unit_of_work(read_only=True) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(ExperimentObservation)
                .join(Experiment)
                .where(Experiment.key == key)
            )
            or 0
        )


def test_create_record_results_and_stop(db_url: str) -> None:
    created = _create_prompt_test()
    assert created.sample_size == 3841  # the textbook value for 10 % -> 12 %
    assert [v.weight for v in created.variants] == [0.5, 0.5]
    assert created.status == "running" and created.created_by == "ml-eng"
    assert ex.get_experiment(ML, "KB-PROMPT").key == "kb-prompt"

    # assignment: a hash, the same answer every time, and the one recording files under
    assert ex.assign_unit(ML, "kb-prompt", "user-7") == ex.assign_unit(ML, "kb-prompt", "user-7")
    rows = [(f"user-{i}", 1 if i % 7 == 0 else 0, None) for i in range(1000)]
    report = ex.record_observations(ML, "kb-prompt", rows)
    assert report.rows == 1000 and sum(report.by_variant.values()) == 1000
    assert 400 < report.by_variant["control"] < 600
    with unit_of_work(read_only=True) as session:
        stored = dict(
            session.execute(
                select(ExperimentObservation.unit_id, ExperimentObservation.variant).limit(50)
            ).all()
        )
    assert all(ex.assign_unit(ML, "kb-prompt", unit) == v for unit, v in stored.items())

    result = ex.results(ML, "kb-prompt")
    control, cite = result.variants
    assert control.n + cite.n == 1000 and result.observations == 1000
    assert control.ci_low < control.mean < control.ci_high
    assert result.progress == pytest.approx(min(control.n, cite.n) / 3841)
    [comparison] = result.comparisons
    assert comparison.fixed is not None and comparison.sequential is None
    assert comparison.fixed.effect == pytest.approx(cite.mean - control.mean)
    assert result.recommendation.code == "keep_running"
    assert result.recommendation.more_units > 5000  # both variants are far below 3,841

    # a unit counts once: a batch with one known unit is refused whole
    with pytest.raises(Conflict, match="user-3"):
        ex.record_observations(ML, "kb-prompt", [("new-1", 1, None), ("user-3", 0, None)])
    with pytest.raises(ValidationError, match=r"row 2: helpful is a proportion"):
        ex.record_observations(ML, "kb-prompt", [("new-1", 1, None), ("new-2", 0.5, None)])
    with pytest.raises(ValidationError, match=r"row 2: unit 'new-1' appears twice"):
        ex.record_observations(ML, "kb-prompt", [("new-1", 1), ("new-1", 0)])
    with pytest.raises(ValidationError, match="no time zone"):
        ex.record_observations(ML, "kb-prompt", [("new-1", 1, datetime(2026, 1, 1))])
    future = utcnow() + timedelta(days=1)
    with pytest.raises(ValidationError, match="in the future"):
        ex.record_observations(ML, "kb-prompt", [("new-1", 1, future)])
    assert _count("kb-prompt") == 1000

    with pytest.raises(ValidationError, match="decision"):
        ex.stop_experiment(ML, "kb-prompt", "")
    stopped = ex.stop_experiment(ML, "kb-prompt", "Not worth it: keep prompt v1.")
    assert (stopped.status, stopped.decision) == ("stopped", "Not worth it: keep prompt v1.")
    assert stopped.stopped_at is not None
    with pytest.raises(Conflict, match="stopped"):
        ex.record_observations(ML, "kb-prompt", [("late", 1, None)])
    with pytest.raises(Conflict, match="already stopped"):
        ex.stop_experiment(ML, "kb-prompt", "again")

    actions = ["mlops.experiment.create", "mlops.experiment.observe", "mlops.experiment.stop"]
    entries = search(ADMIN, AuditFilter(actions=actions))
    by_action = {e.action: e for e in entries}
    assert set(by_action) == {
        "mlops.experiment.create",
        "mlops.experiment.observe",
        "mlops.experiment.stop",
    }
    assert (
        len([e for e in entries if e.action == "mlops.experiment.observe"]) == 1
    )  # refusals: none
    assert all(e.target == "experiment:kb-prompt" and e.actor == "ml-eng" for e in entries)
    assert '"sample_size":3841' in by_action["mlops.experiment.create"].summary.replace(" ", "")
    assert "keep_running" in by_action["mlops.experiment.stop"].summary


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"key": "1bad"}, "Experiment key"),
        ({"kind": "dataset"}, "Unknown experiment kind"),
        ({"variants": [("a", "A", 1)]}, "at least two variants"),
        ({"variants": [("a", "A", 1), ("A", "again", 1)]}, "unique"),
        ({"variants": [("a", "A", 1), ("b", "B", 0)]}, "greater than 0"),
        ({"variants": [("a", "A", 1), ("b b", "B", 1)]}, "Variant key"),
        ({"variants": [("a", "A", 1), ("b", "B", "lots")]}, "not a number"),
        ({"metric_name": "  "}, "Name the metric"),
        ({"metric_kind": "median"}, "Unknown metric kind"),
        ({"baseline": 1.5}, "strictly between 0 and 1"),
        ({"baseline": 0.99, "mde": 0.02}, "leaves the range"),
        ({"mde": 0}, "greater than 0"),
        ({"alpha": 0.5}, "Alpha"),
        ({"power": 1.0}, "Power"),
        ({"metric_kind": "mean", "baseline": 1.2}, "standard deviation"),
        ({"metric_kind": "mean", "baseline": 1.2, "baseline_sd": -1}, "standard deviation"),
    ],
)
def test_planning_mistakes_get_clear_messages(
    sqlite_db: str, overrides: dict[str, object], message: str
) -> None:
    args: dict[str, object] = {
        "key": "exp-1",
        "name": "n",
        "kind": "model",
        "variants": [("v1", "v1", 1), ("v2", "v2", 1)],
        "metric_name": "hit",
        "metric_kind": "proportion",
        "baseline": 0.5,
        "mde": 0.05,
    }
    args.update(overrides)
    with pytest.raises(ValidationError, match=message):
        ex.create_experiment(ML, **args)  # type: ignore[arg-type]
    assert ex.list_experiments(ML) == []


def test_duplicate_key_and_unknown_experiment(sqlite_db: str) -> None:
    _create_prompt_test()
    with pytest.raises(Conflict, match="already exists"):
        _create_prompt_test()
    for call in (
        lambda: ex.results(ML, "nope"),
        lambda: ex.get_experiment(ML, "nope"),
        lambda: ex.assign_unit(ML, "nope", "u"),
        lambda: ex.record_observations(ML, "nope", [("u", 1, None)]),
        lambda: ex.import_observations_csv(ML, "nope", b"unit_id,value\nu,1\n"),
        lambda: ex.stop_experiment(ML, "nope", "done here"),
        lambda: ex.lift_over_time(ML, "nope"),
    ):
        with pytest.raises(NotFound, match="No experiment with the key 'nope'"):
            call()


def test_roles_without_the_experiment_permission_are_refused(sqlite_db: str) -> None:
    with pytest.raises(PermissionDenied, match=r"mlops\.experiment"):
        ex.create_experiment(
            FINANCE, "fin-test", "n", "model", PROMPT_VARIANTS, "m", "proportion",
            baseline=0.1, mde=0.02,
        )  # fmt: skip
    _create_prompt_test()
    for call in (
        lambda: ex.record_observations(FINANCE, "kb-prompt", [("u", 1, None)]),
        lambda: ex.import_observations_csv(FINANCE, "kb-prompt", b"unit_id,value\nu,1\n"),
        lambda: ex.stop_experiment(FINANCE, "kb-prompt", "finance says stop"),
        lambda: ex.results(FINANCE, "kb-prompt"),  # finance cannot read experiments either
        lambda: ex.list_experiments(COMPLIANCE),
        lambda: ex.assign_unit(COMPLIANCE, "kb-prompt", "u"),
    ):
        with pytest.raises(PermissionDenied):
            call()
    assert _count("kb-prompt") == 0 and ex.get_experiment(ML, "kb-prompt").status == "running"
    denied = search(ADMIN, AuditFilter(outcomes=["denied"]))
    assert {e.action for e in denied} >= {
        "mlops.experiment.create",
        "mlops.experiment.observe",
        "mlops.experiment.stop",
        "mlops.experiment.read",
    }


def test_csv_import_is_all_or_nothing(sqlite_db: str) -> None:
    _create_prompt_test()
    bad = (
        "unit_id,value,ts\n"
        "u1,1,2026-01-01T10:00:00Z\n"
        "u2,yes,2026-01-01T10:00:00Z\n"
        "\n"
        "u3,0,2026-01-01 10:00\n"
        "u4,0,not a time\n"
        "u1,0,\n"
    )
    with pytest.raises(ValidationError) as refused:
        ex.import_observations_csv(ML, "kb-prompt", bad.encode())
    message = refused.value.message
    assert message.startswith("Nothing was recorded; fix these and import the file again")
    assert "line 3: value 'yes' is not a finite number" in message
    assert "line 5: ts has no time zone" in message  # the blank line 4 is counted
    assert "line 6: ts 'not a time'" in message
    assert "line 7: unit 'u1' appears twice" in message
    assert _count("kb-prompt") == 0

    with pytest.raises(ValidationError, match="lacks the column"):
        ex.import_observations_csv(ML, "kb-prompt", b"user,outcome\nu1,1\n")
    with pytest.raises(ValidationError, match="UTF-8"):
        ex.import_observations_csv(ML, "kb-prompt", b"unit_id,value\n\xff\xfe,1\n")
    with pytest.raises(ValidationError, match="no observations"):
        ex.import_observations_csv(ML, "kb-prompt", b"unit_id,value\n")
    with pytest.raises(ValidationError, match="limit is 20 MB"):
        ex.import_observations_csv(ML, "kb-prompt", b"x" * (ex.MAX_IMPORT_BYTES + 1))

    good = "\ufeffunit_id,value,ts\n" + "".join(
        f"u{i},{i % 3 == 0:d},2026-01-0{1 + i % 5}T12:00:00+00:00\n" for i in range(300)
    )
    report = ex.import_observations_csv(ML, "kb-prompt", good.encode())
    assert report.rows == 300 == _count("kb-prompt")
    # the same file again: every unit is known, so nothing is added
    with pytest.raises(Conflict, match="300 unit"):
        ex.import_observations_csv(ML, "kb-prompt", good.encode())
    lift = ex.lift_over_time(ML, "kb-prompt")
    assert list(lift["day"].astype(str)) == [f"2026-01-0{d}" for d in range(1, 6)]
    assert list(lift["n_control"] + lift["n_variant"]) == [60, 120, 180, 240, 300]
    assert lift["seq_p_value"].isna().all()  # not a sequential experiment


def test_mean_metric_with_three_variants(sqlite_db: str) -> None:
    view = ex.create_experiment(
        ML,
        "router-latency",
        "Router latency",
        "llm_provider",
        [("openai", "OpenAI", 2), ("anthropic", "Anthropic", 1), ("local", "Local", 1)],
        "latency_s",
        "mean",
        higher_is_better=False,
        baseline=1.2,
        baseline_sd=0.5,
        mde=0.1,
        sequential=True,
    )
    assert [v.weight for v in view.variants] == [0.5, 0.25, 0.25]
    # Bonferroni: two comparisons with the control, each at alpha 0.025
    assert view.sample_size == ab_stats.sample_size_means(0.5, 0.1, alpha=0.025)
    rng = np.random.default_rng(1)
    means = {"openai": 1.2, "anthropic": 0.9, "local": 1.6}
    units = [f"req-{i}" for i in range(1200)]
    rows = [
        (u, float(rng.normal(means[ex.assign_unit(ML, "router-latency", u)], 0.4)), None)
        for u in units
    ]
    ex.record_observations(ML, "router-latency", rows)
    result = ex.results(ML, "router-latency")
    assert [c.variant for c in result.comparisons] == ["anthropic", "local"]
    anthropic, local = result.comparisons
    assert anthropic.fixed is not None and anthropic.fixed.method == "Welch t test"
    assert anthropic.fixed.alpha == 0.025
    assert anthropic.sequential is not None and anthropic.sequential.significant
    assert anthropic.recommendation.code == "ship_b"
    assert local.recommendation.code == "keep_a"
    assert result.recommendation.code == "ship_b" and "Anthropic" in result.recommendation.text
    lift = ex.lift_over_time(ML, "router-latency")
    assert set(lift["variant"]) == {"anthropic", "local"}
    assert lift["seq_p_value"].notna().all()


def test_demo_seed_writes_three_experiments_with_the_intended_verdicts(sqlite_db: str) -> None:
    anchor = datetime(2026, 11, 1, tzinfo=UTC)
    with unit_of_work() as session:
        summary = seed_experiments(session, random.Random("demo:experiments"), anchor)
    assert summary == "3 experiments, 2,660 observations"
    by_key = {r.experiment.key: r for r in ex.list_experiments(ML)}
    bike, prompt, llm = (
        by_key["bike-demand-v1-v2"],
        by_key["kb-answer-prompt-v3"],
        by_key["llm-provider-latency"],
    )
    assert bike.experiment.status == "stopped" and bike.progress == 1.0
    assert bike.recommendation.code == "ship_b" and "v2" in bike.recommendation.text
    assert bike.comparisons[0].fixed is not None and bike.comparisons[0].fixed.p_value < 0.001
    assert prompt.experiment.status == "running" and prompt.progress < 0.5
    assert prompt.recommendation.code == "keep_running"
    assert llm.experiment.sequential and not llm.experiment.higher_is_better
    assert llm.progress < 1 and llm.recommendation.code == "ship_b"
    assert "claude-haiku" in llm.recommendation.text
    assert all(r.last_ts is not None and r.last_ts <= anchor for r in by_key.values())
    # every stored variant is the hash's
    with unit_of_work(read_only=True) as session:
        salts = dict(session.execute(select(Experiment.id, Experiment.salt)).all())
        exps = {e.id: e for e in session.scalars(select(Experiment))}
        for obs in session.scalars(select(ExperimentObservation)):
            variants = ex.variants_of(exps[obs.experiment_id])
            assert ab_stats.assign(salts[obs.experiment_id], obs.unit_id, variants) == obs.variant
