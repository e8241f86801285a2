"""Drift monitors over the inference log, on a synthetic model whose weeks are built to drift or
not: what is stored per window, which alerts are raised (once), what bad input says, and the
webhook delivery. The real demo model's drift is checked in test_mlops_demo.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.auth.actor import Actor
from core.auth.roles import Role
from core.config import reload_settings
from core.db import unit_of_work
from core.errors import NotFound, PermissionDenied, ValidationError
from core.mlops import inference, monitor_views
from core.mlops.models import Alert, DriftResult
from core.mlops.monitor_run import run_monitor
from core.mlops.monitors import create_monitor, list_monitors, update_monitor
from core.mlops.tracking import Tracking, configure_mlflow
from tests.fakes.server import ServerThread
from tests.helpers import ADMIN

ML = Actor("ml", Role.ML_ENGINEER)
FINANCE = Actor("fin", Role.FINANCE)
MODEL = "toy-model"
FEATURES = ["x", "c"]
REF_START = datetime(2024, 1, 1, tzinfo=UTC)
REF_END = datetime(2024, 2, 1, tzinfo=UTC)
WEEK = timedelta(weeks=1)


def _rows(start: datetime, n: int, rng: np.random.Generator, *, shift: float = 0.0) -> pd.DataFrame:
    x = rng.normal(shift, 1.0, n)
    return pd.DataFrame(
        {
            "ts": [start + timedelta(minutes=10 * i) for i in range(n)],
            "x": x,
            "c": rng.choice(["a", "b"], n),
            "prediction": 10 + 2 * x,
            "actual": 10 + 2 * x + rng.normal(0, 0.5 + 3 * shift, n),
        }
    )


@pytest.fixture(scope="module")
def empty_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tracking]:
    """An MLflow store without the toy model: a monitor of a model outside the registry is
    allowed when its features are named (created once: a new store costs seconds)."""
    home = tmp_path_factory.mktemp("toy-mlflow")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMNI_HOME", str(home))
        reload_settings()
        tracking = configure_mlflow()
    reload_settings()
    yield tracking


@pytest.fixture(autouse=True)
def _registry(empty_registry: Tracking, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("core.mlops.tracking.configure_mlflow", lambda *a, **k: empty_registry)


def _log(frame: pd.DataFrame, features: list[str] = FEATURES) -> None:
    inference.log_predictions(ADMIN, MODEL, "1", frame, features)


@pytest.fixture
def toy_log(sqlite_db: str) -> None:
    rng = np.random.default_rng(7)
    _log(_rows(REF_START, 4000, rng))  # the reference month (4,000 ten-minute rows)
    _log(_rows(REF_END, 1000, rng))  # week 1: same distribution
    _log(_rows(REF_END + WEEK, 1000, rng, shift=1.5))  # week 2: x moved by 1.5 sd, worse errors
    week3 = _rows(REF_END + 2 * WEEK, 1000, rng)
    week3.loc[:, "c"] = "z"  # a category never seen in the reference
    _log(week3)
    week4 = _rows(REF_END + 3 * WEEK, 1000, rng).drop(columns=["c"])  # the feature stops coming
    _log(week4, ["x"])
    # week 5: nothing logged; week 6: too few rows to judge
    _log(_rows(REF_END + 5 * WEEK, 4, rng))


def _monitor(**kwargs: Any) -> int:
    defaults: dict[str, Any] = dict(
        name="toy weekly",
        target=MODEL,
        reference_start=REF_START,
        reference_end=REF_END,
        features=FEATURES,
        drift_share=0.5,
        performance_threshold=2.0,
    )
    return create_monitor(ML, **{**defaults, **kwargs}).id


def test_weekly_windows_are_judged_and_alerts_raised_once(toy_log: None) -> None:
    monitor_id = _monitor()
    report = run_monitor(ML, monitor_id, until=REF_END + 7 * WEEK)
    assert report.windows == 4
    assert [line.split(":")[0] for line in report.skipped] == ["2024-02-29", "2024-03-07"]

    frame = monitor_views.results_frame(ML, monitor_id).set_index("window_start")
    weeks = [REF_END + k * WEEK for k in range(4)]
    assert list(frame.index) == weeks
    assert not frame.loc[weeks[0], "dataset_drift"]
    assert frame.loc[weeks[0], "drifted_features"] == ""
    assert frame.loc[weeks[1], "dataset_drift"]
    assert frame.loc[weeks[1], "drifted_features"] == "x"
    assert frame.loc[weeks[1], "prediction_drift"]
    assert frame.loc[weeks[1], "mae"] > 2.0 > frame.loc[weeks[0], "mae"]
    assert frame.loc[weeks[2], "drifted_features"] == "c"  # every value a new category

    # one open alert per kind: week 3's data drift joins the one week 2 raised
    alerts = {a.kind: a for a in monitor_views.list_alerts(ML)}
    assert {k: a.window_start for k, a in alerts.items()} == {
        "data_drift": weeks[1],
        "prediction_drift": weeks[1],
        "performance": weeks[1],
    }
    data_drift = alerts["data_drift"]
    assert data_drift.details["windows"] == [weeks[1].isoformat(), weeks[2].isoformat()]
    assert data_drift.message.endswith("[still so in 1 later windows]")
    assert "x" in data_drift.details["features"]
    # week 4 lacks c: reported as missing, not as drift, and x alone is judged
    detail = monitor_views.window_detail(ML, monitor_id, weeks[3])
    by_column = {c["column"]: c for c in detail.columns}
    assert by_column["c"]["missing"] and "current" in by_column["c"]["note"]
    assert not by_column["x"]["drifted"]
    new = [c for c in monitor_views.window_detail(ML, monitor_id, weeks[2]).columns]
    assert "new categories: z" in next(c for c in new if c["column"] == "c")["note"]

    # a second run finds nothing new; a recompute raises nothing twice
    assert run_monitor(ML, monitor_id, until=REF_END + 7 * WEEK).windows == 0
    again = run_monitor(ML, monitor_id, until=REF_END + 7 * WEEK, recompute=True)
    assert again.windows == 4 and again.alerts == [] and again.updated == 0
    with unit_of_work(read_only=True) as session:
        assert session.query(Alert).count() == 3
        assert session.query(DriftResult).count() == 4

    # a drift that comes back after quiet weeks is a new episode: new alerts, also for the kinds
    # whose earlier alert is still open
    monitor_views.acknowledge(ML, [data_drift.id])
    late = REF_END + 6 * WEEK
    _log(_rows(late, 1000, np.random.default_rng(9), shift=2.0))
    report = run_monitor(ML, monitor_id, until=late + WEEK)
    still_open = monitor_views.list_alerts(ML, open_only=True)
    raised = {a.kind for a in still_open if a.window_start == late}
    assert raised == {"data_drift", "prediction_drift", "performance"}
    assert len(report.alerts) == 3


def test_charts_read_the_stored_results(toy_log: None) -> None:
    monitor_id = _monitor()
    run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    heat = monitor_views.heatmap_frame(ML, monitor_id)
    assert set(heat["column"]) == {"x", "c", "prediction"}
    drifted = heat[heat["drifted"]]
    assert set(drifted["column"]) == {"x", "prediction"}
    assert (drifted["severity"] >= 1).all()
    assert (heat[~heat["drifted"]]["severity"] < 1).all()

    shifted = REF_END + WEEK
    overlay = monitor_views.overlay(ML, monitor_id, shifted, "x")
    assert overlay["reference_share"].sum() == pytest.approx(1)
    assert overlay["current_share"].sum() == pytest.approx(1)
    perf = monitor_views.performance_frame(ML, monitor_id)
    assert {"mae", "rmse", "reference_mae"} <= set(perf.columns)
    with pytest.raises(NotFound):
        monitor_views.overlay(ML, monitor_id, shifted, "not-a-feature")


def test_acknowledging_alerts_is_audited_and_once(toy_log: None) -> None:
    monitor_id = _monitor()
    run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    ids = [a.id for a in monitor_views.list_alerts(ML, open_only=True)]
    assert ids
    assert monitor_views.acknowledge(ML, ids) == len(ids)
    assert monitor_views.list_alerts(ML, open_only=True) == []
    assert list_monitors(ML)[0].open_alerts == 0
    with pytest.raises(PermissionDenied):
        monitor_views.acknowledge(FINANCE, ids)


def test_changed_rules_rejudge_the_windows(toy_log: None) -> None:
    monitor_id = _monitor()
    run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    # a looser threshold for x: the shifted week no longer counts x as drifted
    update_monitor(ML, monitor_id, thresholds={"x": 5.0})
    assert list_monitors(ML)[0].windows_computed == 0
    run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    frame = monitor_views.results_frame(ML, monitor_id)
    assert frame["drifted_features"].tolist() == ["", ""]


def test_bad_configuration_and_empty_reference(toy_log: None) -> None:
    with pytest.raises(ValidationError, match="does not watch"):
        _monitor(thresholds={"nope": 0.2})
    with pytest.raises(ValidationError, match="Unknown test"):
        _monitor(tests={"x": "t-test"})
    with pytest.raises(ValidationError, match="http"):
        _monitor(webhook_url="ftp://example.com/hook")
    with pytest.raises(ValidationError, match="end after"):
        _monitor(reference_end=REF_START)
    with pytest.raises(PermissionDenied):
        create_monitor(
            FINANCE,
            name="nope",
            target=MODEL,
            reference_start=REF_START,
            reference_end=REF_END,
            features=FEATURES,
        )
    empty = _monitor(
        name="empty reference",
        reference_start=datetime(2023, 1, 1, tzinfo=UTC),
        reference_end=datetime(2023, 2, 1, tzinfo=UTC),
    )
    with pytest.raises(ValidationError, match="reference window"):
        run_monitor(ML, empty, until=REF_END + 2 * WEEK)


def test_constant_feature_is_no_false_alarm(sqlite_db: str) -> None:
    rng = np.random.default_rng(3)
    frames = [_rows(REF_START, 1500, rng), _rows(REF_END, 500, rng)]
    for frame in frames:
        frame["flag"] = 1.0  # the same constant in both windows
    for frame in frames:
        _log(frame, [*FEATURES, "flag"])
    monitor_id = _monitor(features=[*FEATURES, "flag"])
    run_monitor(ML, monitor_id, until=REF_END + WEEK)
    detail = monitor_views.window_detail(ML, monitor_id, REF_END)
    flag = next(c for c in detail.columns if c["column"] == "flag")
    assert not flag["drifted"]
    assert not detail.dataset_drift


def test_uploaded_predictions_are_checked_before_anything_is_written(sqlite_db: str) -> None:
    good = _rows(REF_START, 20, np.random.default_rng(1))
    with pytest.raises(ValidationError, match="lacks columns: c"):
        inference.log_predictions(ML, MODEL, "1", good.drop(columns=["c"]), FEATURES)
    naive = good.assign(ts=good["ts"].dt.tz_localize(None))
    with pytest.raises(ValidationError, match="time zone"):
        inference.log_predictions(ML, MODEL, "1", naive, FEATURES)
    bad = good.astype({"prediction": object})
    bad.loc[5, "prediction"] = "twelve"
    with pytest.raises(ValidationError, match="row 6"):
        inference.log_predictions(ML, MODEL, "1", bad, FEATURES)
    with pytest.raises(ValidationError, match="could not be read"):
        inference.read_table(b"\x00\x01not parquet", "upload.parquet")
    with unit_of_work(read_only=True) as session:
        assert inference.summary(session, MODEL).rows == 0
    # actuals attach to the logged instants, all or nothing
    inference.log_predictions(ML, MODEL, "1", good.drop(columns=["actual"]), FEATURES)
    late = pd.DataFrame({"ts": good["ts"][:3], "actual": [1.0, 2.0, 3.0]})
    assert inference.record_actuals(ML, MODEL, late) == 3
    unknown = pd.DataFrame({"ts": [datetime(2030, 1, 1, tzinfo=UTC)], "actual": [1.0]})
    with pytest.raises(ValidationError, match="No prediction"):
        inference.record_actuals(ML, MODEL, unknown)


def _webhook() -> tuple[Starlette, list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    async def hook(request: Request) -> JSONResponse:
        received.append(json.loads(await request.body()))
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/hook", hook, methods=["POST"])]), received


def test_alerts_go_to_the_webhook_and_failures_are_kept(toy_log: None) -> None:
    app, received = _webhook()
    with ServerThread(app) as server:
        monitor_id = _monitor(webhook_url=f"{server.url}/hook")
        report = run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    assert report.delivered == 3 and report.delivery_failures == 0
    assert {r["kind"] for r in received} == {"data_drift", "prediction_drift", "performance"}
    assert all(r["target"] == MODEL and r["monitor"] == "toy weekly" for r in received)
    assert all(a.delivery.startswith("sent (HTTP 200)") for a in monitor_views.list_alerts(ML))

    # the receiver is gone: the run still stores its results and says delivery failed
    dead = _monitor(name="toy dead hook", webhook_url="http://127.0.0.1:9/hook")
    report = run_monitor(ML, dead, until=REF_END + 2 * WEEK)
    assert report.windows == 2 and report.delivery_failures == 3
    failed = monitor_views.list_alerts(ML, monitor_id=dead)
    assert failed and all(a.delivery.startswith("failed") for a in failed)


def test_rechecking_after_acknowledgement_raises_nothing_twice(toy_log: None) -> None:
    monitor_id = _monitor()
    run_monitor(ML, monitor_id, until=REF_END + 4 * WEEK)
    monitor_views.acknowledge(ML, [a.id for a in monitor_views.list_alerts(ML, open_only=True)])
    # a delivery-only change keeps the verdicts; a rule change drops them for a re-check
    update_monitor(ML, monitor_id, webhook_url="", enabled=True, drift_share=0.5)
    assert list_monitors(ML)[0].windows_computed == 4
    update_monitor(ML, monitor_id, drift_share=0.4)
    assert list_monitors(ML)[0].windows_computed == 0
    report = run_monitor(ML, monitor_id, until=REF_END + 4 * WEEK)
    assert report.windows == 4 and report.alerts == [] and report.updated == 0
    assert monitor_views.list_alerts(ML, open_only=True) == []


def test_late_actuals_are_judged_on_the_next_run(sqlite_db: str) -> None:
    rng = np.random.default_rng(5)
    _log(_rows(REF_START, 2000, rng))
    week = _rows(REF_END, 1000, rng).drop(columns=["actual"])
    _log(week)
    monitor_id = _monitor(performance_threshold=1.0)
    run_monitor(ML, monitor_id, until=REF_END + WEEK)
    assert monitor_views.results_frame(ML, monitor_id)["labelled_rows"].tolist() == [0]
    # the outcomes arrive a day later, and they are far from the predictions
    actuals = pd.DataFrame({"ts": week["ts"], "actual": week["prediction"] + 20})
    assert inference.record_actuals(ML, MODEL, actuals) == 1000
    report = run_monitor(ML, monitor_id, until=REF_END + WEEK)
    assert report.windows == 1
    frame = monitor_views.results_frame(ML, monitor_id)
    assert frame["labelled_rows"].tolist() == [1000] and frame["mae"].iloc[0] == pytest.approx(20)
    assert "performance" in {a.kind for a in monitor_views.list_alerts(ML)}


def test_ambiguous_or_repeated_actuals_are_refused(sqlite_db: str) -> None:
    rng = np.random.default_rng(6)
    frame = _rows(REF_START, 3, rng)
    _log(pd.concat([frame, frame.assign(c="b")]))  # two predictions at each instant
    with pytest.raises(ValidationError, match="2 predictions of toy-model"):
        inference.record_actuals(ML, MODEL, frame[["ts", "actual"]])
    twice = pd.concat([frame[["ts", "actual"]]] * 2)
    with pytest.raises(ValidationError, match="twice"):
        inference.record_actuals(ML, MODEL, twice)


def test_one_bad_window_does_not_block_the_others(sqlite_db: str) -> None:
    rng = np.random.default_rng(8)
    _log(_rows(REF_START, 2000, rng))
    _log(_rows(REF_END, 500, rng))
    broken = _rows(REF_END + WEEK, 500, rng).astype({"x": object})
    broken.loc[3, "x"] = "n/a"  # a text value in a numeric feature
    _log(broken)
    _log(_rows(REF_END + 2 * WEEK, 500, rng))
    monitor_id = _monitor()
    report = run_monitor(ML, monitor_id, until=REF_END + 3 * WEEK)
    assert report.windows == 2
    assert len(report.skipped) == 1 and report.skipped[0].startswith("2024-02-08: ")


def test_predictions_files_with_daylight_saving_offsets_or_infinities(sqlite_db: str) -> None:
    frame = _rows(REF_START, 4, np.random.default_rng(2))
    text = frame.assign(ts=["2024-03-30T23:00:00+01:00", "2024-03-31T03:00:00+02:00"] * 2)
    assert inference.log_predictions(ML, MODEL, "1", text, FEATURES) == 4
    with pytest.raises(ValidationError, match="infinite"):
        inference.log_predictions(ML, MODEL, "1", frame.assign(x=np.inf), FEATURES)
    with pytest.raises(ValidationError, match="version number"):
        inference.log_predictions(ML, MODEL, "latest-and-greatest", frame, FEATURES)


def test_failed_deliveries_are_retried_on_the_next_run(toy_log: None) -> None:
    app, received = _webhook()
    with ServerThread(app) as server:
        port = server.port
    # the receiver is down for the first run...
    monitor_id = _monitor(webhook_url=f"http://127.0.0.1:{port}/hook")
    first = run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    assert first.delivery_failures == 3 and received == []
    # ...and back for the next one, which has no new window but delivers what failed
    with ServerThread(app, port=port):
        second = run_monitor(ML, monitor_id, until=REF_END + 2 * WEEK)
    assert second.windows == 0 and second.delivered == 3 and len(received) == 3
