"""Monitoring page: the demo's weekly bike-demand monitor with 2012's drift flagged and the
features responsible, a window's tests and distribution overlay, performance against the alert
limit, acknowledging an alert, the knowledge-base embedding monitor, and a new monitor refused
with a clear message when its model has no such feature."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("monitoring")
BIKE = "Bike demand, weekly (bike-demand)"
QUESTIONS = "Knowledge-base questions (*)"


def _table(at: AppTest, column: str) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_only_admins_and_ml_engineers_may_open_it() -> None:
    assert set(ALLOWED) == {Role.ADMIN, Role.ML_ENGINEER}


@pytest.mark.parametrize("role", ALLOWED)
def test_the_2012_drift_is_flagged_with_the_features_responsible(role: Role) -> None:
    at = open_page(signed_in_app(role), "monitoring")
    assert not at.exception
    assert at.selectbox(key="monitoring_selected").value == BIKE
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Windows checked"] == "53"  # every week of 2012
    assert int(metrics["Open alerts"]) >= 1
    assert any("of 53 weeks drifted" in m.value for m in at.markdown)
    weeks = _table(at, "drifted_features")
    assert weeks["dataset_drift"].sum() >= 40
    # the year the model never saw, and the seasonal weather, are what moved
    responsible = weeks["drifted_features"].str.split(", ").explode().value_counts()
    assert responsible["yr"] == 53
    assert {"temp", "atemp", "season"} <= set(responsible.index)
    # the selected window (the last that drifted): its tests, most severe first
    tests = _table(at, "Feature")
    assert tests.iloc[0]["Drifted"]
    assert set(tests["Test"]) <= {"wasserstein", "jensenshannon", "ks", "chisquare", "z"}
    assert "new categories: 1" in tests.set_index("Feature").loc["yr", "Note"]
    # the overlay chart of the first feature, then of another one
    assert len(at.get("plotly_chart")) >= 3  # heatmap, overlay, performance
    at.selectbox(key="mon_feature").set_value("temp").run()
    assert not at.exception


def test_alerts_are_listed_and_a_run_finds_nothing_new() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "monitoring")
    assert int({m.label: m.value for m in at.metric}["Open alerts"]) >= 1
    # one alert per kind, the later weeks listed in it (acknowledging: test_drift_monitoring.py)
    assert any("[still so in" in str(v) for d in at.dataframe for v in d.value.get("Message", []))
    at.button(key="mon_run").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Bike demand, weekly: 0 windows checked, 0 new alerts")


def test_embedding_monitor_shows_the_topic_shift() -> None:
    at = open_page(signed_in_app(Role.ADMIN), "monitoring")
    at.selectbox(key="monitoring_selected").set_value(QUESTIONS).run()
    assert not at.exception
    windows = _table(at, "p-value")
    assert len(windows) == 6
    assert list(windows["Drifted"]) == [False, False, False, False, True, True]


def test_a_new_monitor_with_an_unknown_feature_is_refused() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "monitoring")
    fields = {t.label: t for t in at.text_input}
    fields["Monitor name"].input("bike with a typo")
    fields["Registered model (or collection name, * for all, for embeddings)"].input("bike-demand")
    fields["Features (comma-separated; empty: from the signature)"].input("temp, tmep")
    next(b for b in at.button if b.label == "Create monitor").click().run()
    assert not at.exception
    assert at.error[0].value.startswith("bike-demand v1 has no input tmep; its inputs are season")
    assert at.selectbox(key="monitoring_selected").options == [BIKE, QUESTIONS]
