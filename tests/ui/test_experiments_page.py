"""Experiments page: the demo experiments listed with progress and advice, a finished one's
verdict, a sequential one's always-valid test, the unit lookup (the core's hash), and a new
experiment planned with the live sample-size preview, created, fed from CSV and stopped."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.config import reload_settings
from core.db import dispose_engines
from core.mlops.experiments import assign_unit, results
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

ALLOWED = roles_allowed("experiments")


@pytest.fixture(scope="module")
def ui_home(ui_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the UI suite's home (the demo seeder wrote the experiments), so the experiment
    this module creates does not change the tenant other pages' tests expect."""
    home = tmp_path_factory.mktemp("ui-experiments-home")
    dispose_engines()
    shutil.copytree(ui_home, home, dirs_exist_ok=True)
    reload_settings()
    return home


def _metrics(at) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {m.label: m.value for m in at.metric}


@pytest.mark.parametrize("role", ALLOWED)
def test_demo_experiments_render_with_their_verdicts(role: Role) -> None:
    at = open_page(signed_in_app(role), "experiments")
    assert not at.exception
    assert [t.value for t in at.title] == ["Experiments"]
    listed = at.dataframe[0].value.set_index("Key")
    assert {"bike-demand-v1-v2", "kb-answer-prompt-v3", "llm-provider-latency"} <= set(listed.index)
    assert listed.loc["kb-answer-prompt-v3", "Recommendation"] == "Keep running"
    assert listed.loc["kb-answer-prompt-v3", "Progress"] < 0.5
    assert listed.loc["bike-demand-v1-v2", "Status"] == "stopped"
    assert listed.loc["llm-provider-latency", "Recommendation"] == "Ship it"

    # the sequential LLM experiment: significant before its sample size, on the always-valid test
    at.selectbox(key="exp_selected").set_value("llm-provider-latency").run()
    assert not at.exception
    [callout] = [s.value for s in at.success]
    assert callout.startswith("**Ship it.** Ship Anthropic claude-haiku")
    assert "always-valid" in callout
    metrics = _metrics(at)
    assert metrics["Always-valid p"] == "< 0.0001"
    comparisons = at.dataframe[2].value
    assert list(comparisons["Variant"]) == ["claude-haiku"]
    assert comparisons.loc[0, "Test"] == "Welch t test"
    assert comparisons.loc[0, "Confidence sequence"]

    # the finished model experiment: v2 ships, and a stopped experiment takes no more data
    at.selectbox(key="exp_selected").set_value("bike-demand-v1-v2").run()
    assert not at.exception
    assert at.success[0].value.startswith("**Ship it.** Ship bike-demand v2 (challenger)")
    assert "Stopped with the decision: Promote v2" in at.success[0].value
    variants = at.dataframe[1].value.set_index("Variant")
    assert list(variants.index) == ["v1", "v2"]
    assert variants.loc["v1", "Label"] == "bike-demand v1 (champion) (control)"
    assert variants["Units"].sum() == 31 * 24 * 2  # every hour of July and August 2012
    rates = variants["Rate"].str.rstrip("%").astype(float)
    assert rates["v2"] > rates["v1"] + 15  # measured from the two versions' forecasts
    assert not [b for b in at.button if b.label == "Stop experiment"]

    # which variant gets a unit: the core's hash
    hour = "2012-07-04T17:00:00+00:00"
    at.text_input(key="exp_lookup_unit").input(hour).run()
    actor = Actor("ui", Role.ADMIN)
    expected = assign_unit(actor, "bike-demand-v1-v2", hour)
    assert any(f"gets **{expected}**" in m.value for m in at.markdown)


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page


def test_create_an_experiment_feed_it_from_csv_and_stop_it() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "experiments")
    # the live preview: 10 % -> 12 % at alpha 0.05 and power 0.8 is the textbook 3,841
    assert _metrics(at)["Sample size per variant"] == "3,841"
    at.number_input(key="exp_new_mde_proportion").set_value(0.05).run()
    assert _metrics(at)["Sample size per variant"] == "686"
    at.number_input(key="exp_new_baseline_proportion").set_value(0.99).run()
    assert any("leaves the range 0-1" in w.value for w in at.warning)
    at.number_input(key="exp_new_baseline_proportion").set_value(0.10).run()

    at.text_input(key="exp_new_key").input("ui-prompt-test")
    at.text_input(key="exp_new_name").input("UI prompt test")
    at.text_input(key="exp_new_metric").input("helpful")
    at.selectbox(key="exp_new_kind").set_value("prompt")
    at.button(key="exp_new_create").click().run()
    assert not at.exception
    assert at.success[0].value == (
        "Experiment ui-prompt-test started: 686 units per variant needed."
    )
    assert at.selectbox(key="exp_selected").value == "ui-prompt-test"
    assert at.dataframe[0].value.set_index("Key").loc["ui-prompt-test", "Kind"] == "Prompts"
    assert at.text_input(key="exp_new_key").value == ""  # the form was emptied

    csv = "unit_id,value\n" + "".join(f"user-{i},{int(i % 4 == 0)}\n" for i in range(200))
    at.file_uploader(key="exp_import_file").set_value(("obs.csv", csv.encode(), "text/csv"))
    at.run()  # the upload itself reruns the page; the button is enabled from then on
    at.button(key="exp_import_button").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Recorded 200 observations (control: ")
    assert _metrics(at)["Units"] == "200"

    at.text_input(key="exp_stop_text").input("Too slow to matter; keep the current prompt.")
    at.button(key="exp_stop_button").click().run()
    assert not at.exception
    assert at.success[0].value == "Experiment ui-prompt-test stopped."
    stopped = results(Actor("ui", Role.ADMIN), "ui-prompt-test").experiment
    assert (stopped.status, stopped.decision) == (
        "stopped",
        "Too slow to matter; keep the current prompt.",
    )
