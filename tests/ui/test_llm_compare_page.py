from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.auth.roles import Role
from core.llm import gateway
from core.llm.config import default_config_text
from core.llm.local.loader import cache_dir
from core.llm.providers import PROVIDERS
from tests import scripted_provider as sp
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

SCRIPTED = """
deployments:
  alpha: {provider: scripted, model: m-alpha, max_retries: 0}
  beta: {provider: scripted, model: m-beta, max_retries: 0}
aliases:
  chat: {deployments: [alpha, beta]}
"""


@pytest.fixture
def scripted_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.scripted_provider:ScriptedProvider")
    sp.reset()
    gateway.save_router_config(ADMIN, SCRIPTED, "ui test")
    yield
    gateway.save_router_config(ADMIN, default_config_text(), "restore default")


@pytest.fixture
def local_model(ui_home: Path, local_model_home: Path) -> None:
    """The run's one loaded local model (tests/conftest.py): the UI home's model cache becomes a
    link to it, so the page's `get_local_model` (keyed by the resolved cache directory) finds the
    model loaded instead of converting the GGUF and loading it again (20-30 s, more when busy)."""
    link = cache_dir(ui_home)
    if not link.exists():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(cache_dir(local_model_home), target_is_directory=True)


@pytest.mark.parametrize("role", roles_allowed("llm_compare"))
def test_renders_with_the_local_model_offered_twice(role: Role) -> None:
    at = open_page(signed_in_app(role), "llm_compare")
    assert not at.exception
    assert at.title[0].value == "Compare LLMs"
    assert any(b.label == "Compare" for b in at.button)
    targets = next(d.value for d in at.dataframe if "deployment" in d.value.columns)
    assert list(targets["deployment"]) == ["local-smollm2", "local-smollm2"]
    assert list(targets["temperature"]) == [0.2, 1.0]


def test_compare_streams_saves_and_lists_the_run(scripted_router: None) -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "llm_compare")
    at.text_area(key="cmp_prompt").input("Say hello")
    at.text_area(key="cmp_reference").input("ok from m-alpha")
    at.button(key="cmp_run").click().run()
    assert not at.exception
    assert at.success[0].value.startswith("Saved as run")
    answers = [m.value for m in at.markdown]
    assert "ok from m-alpha" in answers and "ok from m-beta" in answers
    scores = next(d.value for d in at.dataframe if "Reference similarity" in d.value.columns)
    assert list(scores["Deployment"]) == ["alpha", "beta"]
    assert scores["Reference similarity"][0] == pytest.approx(1.0, abs=1e-3)
    assert scores["Reference similarity"][1] < 1.0


def test_an_empty_prompt_gets_a_clear_error(scripted_router: None) -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "llm_compare")
    at.button(key="cmp_run").click().run()
    assert at.error[0].value == "Write a prompt (or attach a file) to compare."


def test_an_image_is_offered_only_to_deployments_that_can_see(scripted_router: None) -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), "llm_compare")
    at.file_uploader(key="cmp_file").upload("chart.png", b"\x89PNG\r\n\x1a\n", "image/png").run()
    assert "No configured deployment can take image input" in at.warning[0].value
    gateway.save_router_config(ADMIN, SCRIPTED.replace("m-beta", "m-beta-vision"), "vision")
    at.run()
    assert at.info[0].value == "This image can go to: beta."
    at.text_area(key="cmp_prompt").input("What does the chart show?")
    at.button(key="cmp_run").click().run()
    assert "cannot take vision" in at.error[0].value  # alpha is text-only: said, not sent
    assert "ok from m-beta-vision" in [m.value for m in at.markdown]


def test_with_no_keys_the_local_model_is_compared_with_itself(local_model: None) -> None:
    """The issue's first 'done when': no keys at all, the bundled model at two temperatures."""
    at = open_page(signed_in_app(Role.ML_ENGINEER), "llm_compare")
    at.text_area(key="cmp_prompt").input("Name one colour.")
    at.slider(key="cmp_max_tokens").set_value(16)
    at.button(key="cmp_run").click().run(timeout=240)
    assert not at.exception
    assert at.success[0].value.startswith("Saved as run")
    assert not at.error
    captions = [c.value for c in at.caption if "tokens" in c.value and " ms" in c.value]
    assert len(captions) == 2  # latency, tokens and cost under each of the two answers
