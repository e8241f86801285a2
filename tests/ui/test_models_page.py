"""Models page: the demo tenant's bike-demand model with its aliases, versions, run details and
alias history; promoting the challenger to champion with a reason, then rolling back."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core.auth.roles import Role
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("models")


def _table(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with that column."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def test_only_admins_and_ml_engineers_may_open_it() -> None:
    assert set(ALLOWED) == {Role.ADMIN, Role.ML_ENGINEER}


@pytest.mark.parametrize("role", ALLOWED)
def test_registry_shows_the_demo_model(role: Role) -> None:
    at = open_page(signed_in_app(role), "models")
    assert not at.exception
    assert at.title[0].value == "Models"
    models = _table(at, "Model").set_index("Model")
    bike = models.loc["bike-demand"]
    assert (bike["Versions"], bike["Champion"], bike["Challenger"]) == (2, "1", "2")
    assert bike["Open drift alerts"] > 0
    assert "open drift alerts for bike-demand" in at.warning[0].value
    versions = _table(at, "Signature")
    assert list(versions["Version"]) == ["2", "1"]
    assert set(versions["Signature"]) == {"yes"}
    # the newest version is selected: its run's parameters, metrics and input datasets
    params = _table(at, "parameter").set_index("parameter")["value"]
    assert params["train_end"] == "2012-06-30" and "yr" in params["features"]
    metrics = _table(at, "metric").set_index("metric")["value"]
    assert 20 < metrics["val_mae"] < 150
    datasets = _table(at, "Context")
    assert set(datasets["Context"]) == {"training", "validation"}
    history = _table(at, "Reason")
    assert set(history["Alias"]) == {"champion", "challenger"}


def test_promote_needs_a_reason_then_moves_the_champion_and_rolls_back() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "models")
    assert at.selectbox(key="version_bike-demand").value.startswith("v2")
    at.text_area[0].set_value("v2 better")
    at.button[0].click().run()  # "Move alias", champion is the default alias
    assert "at least 10 characters" in at.error[0].value
    assert _table(at, "Model").set_index("Model").loc["bike-demand", "Champion"] == "1"

    at.text_area[0].set_value("v2 halves v1's error on 2012 H2; v1 drifts since January")
    at.button[0].click().run()
    assert not at.exception
    assert at.success[0].value == "bike-demand@champion now points at v2 (was v1)."
    assert _table(at, "Model").set_index("Model").loc["bike-demand", "Champion"] == "2"
    latest = _table(at, "Reason").iloc[0]
    assert (latest["Alias"], latest["Action"], latest["Version"], latest["Previous"]) == (
        "champion",
        "promote",
        "v2",
        "v1",
    )
    assert latest["By"] == "ui-ml-engineer"

    # roll back (other UI tests expect the seeded champion)
    next(s for s in at.selectbox if s.label == "Alias to roll back").set_value("champion")
    at.text_area[1].set_value("Rolling back for the UI test's tidy state")
    at.button[1].click().run()
    assert at.success[0].value == "bike-demand@champion rolled back to v1 (was v2)."
    assert _table(at, "Model").set_index("Model").loc["bike-demand", "Champion"] == "1"
    assert _table(at, "Reason").iloc[0]["Action"] == "rollback"
