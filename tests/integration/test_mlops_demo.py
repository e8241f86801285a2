"""The issue's journey on the seeded demo tenant: an ML engineer opens the bike-demand model,
sees 2012's drift flagged with the features responsible, promotes version 2 to champion with a
reason (MLflow's alias moves, the history and the audit log keep who and why), reads the A/B
test's result, and rolls back; the refusals around alias moves; and `omni mlops` from the shell,
feeding new predictions to a monitor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.audit.models import AuditEntry
from core.auth.actor import Actor
from core.auth.roles import Role
from core.cli import app
from core.db import dispose_engines, unit_of_work
from core.errors import Conflict, DatabaseUnavailable, NotFound, PermissionDenied, ValidationError
from core.mlops import aliases, bike, experiments, model_views, monitor_views, monitors
from core.mlops.tracking import configure_mlflow
from tests.conftest import SeededDemo, copy_seeded_demo

ML = Actor("demo-ml", Role.ML_ENGINEER)
FINANCE = Actor("demo-finance", Role.FINANCE)
MODEL = bike.MODEL_NAME


@pytest.fixture
def demo(sqlite_db: str, seeded_demo: SeededDemo) -> None:
    dispose_engines()
    copy_seeded_demo(seeded_demo, Path(sqlite_db.removeprefix("sqlite:///")).parent)


def _champion() -> str:
    model = next(m for m in model_views.models(ML) if m.name == MODEL)
    return model.aliases["champion"]


def test_drift_found_then_v2_promoted_with_a_reason_and_rolled_back(demo: None) -> None:
    model = next(m for m in model_views.models(ML) if m.name == MODEL)
    assert model.aliases == {"champion": "1", "challenger": "2"}

    weekly = next(m for m in monitors.list_monitors(ML) if m.target == MODEL)
    weeks = monitor_views.results_frame(ML, weekly.id)
    assert len(weeks) == 53 and weeks["window_start"].min().year == 2012
    # the model's error rises through 2012 (the business grew); its alert names the limit
    assert weeks["mae"].median() > weeks["reference_mae"].iloc[0] * 3
    kinds = {a.kind: a for a in monitor_views.list_alerts(ML, monitor_id=weekly.id)}
    assert {"data_drift", "performance"} <= set(kinds)
    drift = kinds["data_drift"]
    assert "yr" in drift.details["features"] and "temp" in drift.message
    assert len(drift.details["windows"]) == int(weeks["dataset_drift"].sum())
    summer = monitor_views.window_detail(ML, weekly.id, weeks["window_start"].iloc[28])
    by_feature = {c["column"]: c for c in summer.columns}
    assert by_feature["temp"]["drifted"] and by_feature["temp"]["severity"] > 1
    assert not by_feature["hr"]["drifted"]  # every hour of the day, every week

    ab = experiments.results(ML, "bike-demand-v1-v2")
    assert ab.recommendation.code == "ship_b"

    reason = "v2 halves the 2012 H2 error; the A/B test says ship it"
    change = aliases.set_alias(ML, MODEL, "champion", "2", reason)
    assert (change.action, change.version, change.previous_version) == ("promote", "2", "1")
    assert _champion() == "2"
    history = aliases.alias_history(ML, MODEL, "champion")
    assert [(h.version, h.reason, h.actor) for h in history[:1]] == [("2", reason, "demo-ml")]
    with unit_of_work(read_only=True) as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "mlops.alias.promote")
        ).one()
    assert entry.target == f"{MODEL}@champion" and json.loads(entry.summary)["reason"] == reason

    back = aliases.roll_back(ML, MODEL, "champion", "v2 misbehaves on the new stations")
    assert (back.action, back.version, back.previous_version) == ("rollback", "1", "2")
    assert _champion() == "1"
    # a second rollback has nowhere to go (v1 was the first champion), rather than flipping to v2
    with pytest.raises(Conflict, match="no earlier version"):
        aliases.roll_back(ML, MODEL, "champion", "roll back once more, by mistake")
    # a serving process finds the champion by alias
    assert bike.load_version(configure_mlflow(), MODEL, "champion") is not None


def test_alias_moves_are_refused_with_reasons(demo: None) -> None:
    with pytest.raises(PermissionDenied):
        aliases.set_alias(FINANCE, MODEL, "champion", "2", "finance should not do this")
    with pytest.raises(NotFound, match="Versions: 1, 2"):
        aliases.set_alias(ML, MODEL, "champion", "7", "there is no seventh version")
    with pytest.raises(NotFound, match="Registered models: bike-demand"):
        aliases.set_alias(ML, "no-such-model", "champion", "1", "a model that does not exist")
    with pytest.raises(Conflict, match="already points at version 1"):
        aliases.set_alias(ML, MODEL, "champion", "1", "promote what is already champion")
    with pytest.raises(ValidationError, match="reserved"):
        aliases.set_alias(ML, MODEL, "latest", "2", "latest is MLflow's own reference")
    with pytest.raises(ValidationError, match="at least 10 characters"):
        aliases.set_alias(ML, MODEL, "champion", "2", "better")
    with pytest.raises(Conflict, match="no earlier version"):
        aliases.roll_back(ML, MODEL, "challenger", "challenger was never moved")
    assert _champion() == "1"
    with unit_of_work(read_only=True) as session:
        denied = session.scalars(
            select(AuditEntry).where(
                AuditEntry.outcome == "denied", AuditEntry.actor == "demo-finance"
            )
        ).all()
    assert [d.action for d in denied] == ["mlops.alias.set"]


def test_a_failed_commit_puts_the_alias_back(demo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    real = aliases.unit_of_work

    @contextmanager
    def commit_fails(*args: object, **kwargs: object) -> Iterator[object]:
        with real(*args, **kwargs) as session:  # type: ignore[arg-type]
            yield session
            raise DatabaseUnavailable("the database went away at commit")

    monkeypatch.setattr(aliases, "unit_of_work", commit_fails)
    with pytest.raises(DatabaseUnavailable):
        aliases.set_alias(ML, MODEL, "champion", "2", "this move cannot be recorded")
    monkeypatch.undo()
    assert _champion() == "1"  # MLflow moved it, then it was put back
    assert len(aliases.alias_history(ML, MODEL, "champion")) == 1  # only the seeded move


runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_omni_mlops_from_the_shell(demo: None, tmp_path: Path) -> None:
    code, out = _run("mlops", "models")
    assert code == 0 and "bike-demand: 2 versions, latest v2; challenger=v2, champion=v1" in out
    code, out = _run("mlops", "monitors", "list")
    assert code == 0 and "Bike demand, weekly [model, bike-demand, week] 53 windows" in out
    code, out = _run("mlops", "monitors", "run", "--all")
    assert code == 0 and "Bike demand, weekly: 0 windows checked, 0 new alerts" in out

    # a fortnight of new predictions (January 2013, shaped like late December 2012)
    hours = bike.load_hours()
    late = hours[hours["ts"] >= pd.Timestamp("2012-12-17", tz="UTC")].copy()
    late["ts"] = late["ts"] + timedelta(days=21)
    late["prediction"] = 100.0
    csv = tmp_path / "predictions.csv"
    late[["ts", "prediction", *bike.FEATURES]].to_csv(csv, index=False)
    code, out = _run("mlops", "log-predictions", str(csv), "--model", MODEL, "--version", "1")
    assert (code, out) == (0, f"Logged {len(late)} predictions of bike-demand v1.\n")
    code, out = _run("mlops", "monitors", "run", "--all")
    assert code == 0 and "Bike demand, weekly: 3 windows checked" in out

    code, out = _run("mlops", "promote", MODEL, "champion", "2", "--reason", "tiny")
    assert code == 1 and "at least 10 characters" in out
    code, out = _run(
        "mlops", "promote", MODEL, "champion", "2", "--reason", "from the deploy pipeline"
    )
    assert (code, out) == (0, "bike-demand@champion -> v2 (was v1): promote.\n")
    code, out = _run("mlops", "rollback", MODEL, "champion", "--reason", "bad canary numbers")
    assert (code, out) == (0, "bike-demand@champion -> v1 (was v2).\n")

    bad = tmp_path / "bad.csv"
    bad.write_text("ts,prediction\n2013-02-01T00:00:00+00:00,3\n")
    code, out = _run("mlops", "log-predictions", str(bad), "--model", MODEL, "--version", "1")
    assert code == 1 and "lacks columns: season, yr" in out
