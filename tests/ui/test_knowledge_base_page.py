"""Knowledge base page: ask the seeded GDPR collection, stream a cited answer, rate it, read
the log. Generation goes to a scripted provider (the retrieval and the relevance floor are real)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.auth.service import resolve_session, sign_in
from core.llm import gateway
from core.llm.config import default_config_text
from core.llm.providers import PROVIDERS
from core.rag.answers import query_log
from core.rag.collections import list_collections
from tests import scripted_provider as sp
from tests.helpers import ADMIN, PASSWORD
from tests.ui.conftest import open_page, roles_allowed, signed_in_app, ui_user

PAGE = "knowledge_base"
ACCESS_QUESTION = "How long do we have to answer an access request?"
SCRIPTED = """
deployments:
  kb-model: {provider: scripted, model: m-kb, max_retries: 0}
aliases:
  chat: {deployments: [kb-model]}
"""


@pytest.fixture
def scripted_router(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.scripted_provider:ScriptedProvider")
    sp.reset()
    gateway.save_router_config(ADMIN, SCRIPTED, "ui test")
    yield
    gateway.save_router_config(ADMIN, default_config_text(), "restore default")


def _actor(role: Role) -> Actor:
    return resolve_session(sign_in(ui_user(role), PASSWORD).token)


def _regulations_id() -> int:
    return next(c.id for c in list_collections(_actor(Role.ADMIN)) if c.name == "Regulations")


def _ask(role: Role, question: str):  # type: ignore[no-untyped-def]
    at = open_page(signed_in_app(role), PAGE)
    at.chat_input(key="kb_question").set_value(question).run()
    assert not at.exception
    return at


@pytest.mark.parametrize("role", roles_allowed(PAGE))
def test_renders_with_the_regulations_collection(role: Role) -> None:
    at = open_page(signed_in_app(role), PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Knowledge base"]
    assert any(o.startswith("Regulations · ") for o in at.selectbox(key="kb_collection").options)
    assert at.selectbox(key="kb_mode").options == [
        "hybrid (meaning + exact words)",
        "dense (meaning only)",
        "lexical (exact words, BM25)",
    ]
    assert len(at.chat_input) == 1


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_answer_cites_article_12_3_and_can_be_rated(scripted_router: None) -> None:
    sp.script("m-kb", "You must answer within one month of receiving the request [1].")
    at = _ask(Role.COMPLIANCE_OFFICER, ACCESS_QUESTION)
    labels = [e.label for e in at.expander]
    assert any("GDPR Article 12" in label and "Article 12(3)" in label for label in labels)
    first = next(e for e in at.expander if e.label.startswith("[1] "))
    assert first.label.endswith(" · cited")
    texts = [m.value for m in at.markdown]
    assert any("within one month of receiving the request [1]" in t for t in texts)
    assert any(t.startswith("**Sources:** \\[1\\]") for t in texts)
    metrics = {m.label: m.value for m in at.metric}
    assert set(metrics) == {"Embed", "Search", "Generate", "Cost"}
    assert metrics["Embed"].endswith(" ms")
    assert any("Answered by kb-model (m-kb)" in c.value for c in at.caption)
    assert not at.warning

    qid = int(next(b.key for b in at.button if b.label == "👍 Helpful").rsplit("_", 1)[1])
    at.text_input(key=f"kb_comment_{qid}").input("Exactly what I needed")
    at.button(key=f"kb_up_{qid}").click().run()
    assert not at.exception
    assert at.success[0].value == "Thanks: rated helpful."
    record = next(r for r in query_log(_actor(Role.COMPLIANCE_OFFICER), mine=True) if r.id == qid)
    assert (record.rating, record.rating_comment, record.status) == (
        1,
        "Exactly what I needed",
        "answered",
    )
    assert record.cited == "1"

    at.button(key=f"kb_down_{qid}").click().run()  # changing one's mind replaces the rating
    record = next(r for r in query_log(_actor(Role.COMPLIANCE_OFFICER), mine=True) if r.id == qid)
    assert record.rating == -1


def test_an_irrelevant_question_is_not_found_and_no_model_is_asked(scripted_router: None) -> None:
    at = _ask(Role.ML_ENGINEER, "What is the weather in Paris tomorrow?")
    assert at.warning[0].value.startswith("I could not find anything in 'Regulations'")
    assert any("no model was asked" in c.value for c in at.caption)
    assert sp.CALLS["m-kb"] == 0
    assert {m.label: m.value for m in at.metric}["Generate"] == "0 ms"


def test_query_log_lists_questions_with_a_csv_download(scripted_router: None) -> None:
    at = _ask(Role.ADMIN, "Who must appoint a data protection officer?")
    log = next(d.value for d in at.dataframe if "Question" in d.value.columns)
    assert log["Question"].iloc[0] == "Who must appoint a data protection officer?"
    assert log["User"].iloc[0] == ui_user(Role.ADMIN)
    assert log["Collection"].iloc[0] == "Regulations"
    assert len(at.get("download_button")) == 1
    at.toggle(key="kb_log_mine").set_value(True).run()
    log = next(d.value for d in at.dataframe if "Question" in d.value.columns)
    assert set(log["User"]) == {ui_user(Role.ADMIN)}


def test_a_source_filter_restricts_the_passages(scripted_router: None) -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), PAGE)
    at.multiselect(key=f"kb_sources_{_regulations_id()}").set_value(["GDPR Article 15"])
    at.selectbox(key="kb_mode").set_value("lexical")
    at.chat_input(key="kb_question").set_value(ACCESS_QUESTION).run()
    assert not at.exception
    labels = [e.label for e in at.expander if e.label.startswith("[")]
    assert labels and all(label.split("] ", 1)[1].startswith("GDPR Article 15") for label in labels)
