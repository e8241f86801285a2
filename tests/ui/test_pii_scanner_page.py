"""PII scanner page: a real scan of pasted text with inline highlights, a findings table and an
anonymised preview; a knowledge-base document scanned chunk by chunk; other roles refused."""

from __future__ import annotations

import json

import pytest

from core.audit.service import AuditFilter, query
from core.auth.roles import Role
from core.db import unit_of_work
from core.privacy.engine import Finding
from core.privacy.text_scan import Segment, segments
from pages.pii_scanner import colour_of, findings_frame, highlight_html
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

PAGE = "pii_scanner"
TEXT = "Please call Peter Parker or write to peter.parker@example.com <b>today</b>."


def _by_label(widgets, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in widgets if w.label == label)


def test_highlighting_escapes_the_text() -> None:
    text = '<script>alert("x")</script> mail ann@example.com'
    start = text.index("ann@")
    found = [Finding("EMAIL_ADDRESS", start, len(text), 1.0, text[start:])]
    markup = highlight_html(segments(text, found))
    assert "<script>" not in markup and "&lt;script&gt;alert(&quot;x&quot;)" in markup
    assert f"background:{colour_of('EMAIL_ADDRESS')}" in markup and "ann@example.com" in markup
    assert highlight_html([Segment("a\nb")]).count("<br>") == 1
    assert colour_of("SOMETHING_NEW") == colour_of("SOMETHING_NEW")  # stable for any type
    frame = findings_frame(found)
    assert list(frame.columns) == ["Entity", "Text", "Start", "End", "Score"]


@pytest.mark.parametrize("role", roles_allowed(PAGE))
def test_renders_for_every_allowed_role(role: Role) -> None:
    at = open_page(signed_in_app(role), PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["PII scanner"]
    assert [t.label for t in at.tabs] == ["Text", "Knowledge-base document"]
    assert at.text_area(key="pii_text") is not None
    assert any(
        o.startswith("Regulations · ") for o in at.selectbox(key="pii_kb_collection").options
    )


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_scan_text_highlight_and_anonymise() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE)
    at.text_area(key="pii_text").input(TEXT)
    at.button(key="pii_scan").click().run()
    assert not at.exception and not at.error
    markup = at.html[0].value
    assert "<mark" in markup and "EMAIL_ADDRESS" in markup and "PERSON" in markup
    assert "&lt;b&gt;today&lt;/b&gt;" in markup  # the pasted markup is shown, not applied
    table = at.dataframe[0].value
    assert {"EMAIL_ADDRESS", "PERSON"} <= set(table["Entity"])
    assert "peter.parker@example.com" in set(table["Text"])

    at.selectbox(key="pii_operator").select("replace").run()
    at.button(key="pii_anonymise").click().run()
    assert not at.exception
    anonymised = at.code[0].value
    assert "<EMAIL_ADDRESS>" in anonymised and "Peter Parker" not in anonymised

    with unit_of_work(read_only=True) as session:
        scans = query(
            session, AuditFilter(actions=["privacy.text.scan"], actors=["ui-compliance-officer"])
        )
    assert scans and "peter" not in scans[0].summary.lower()
    assert json.loads(scans[0].summary)["entities"]["EMAIL_ADDRESS"] == 1


def test_empty_text_and_a_missing_key_get_clear_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import reload_settings

    monkeypatch.delenv("OMNI_PII_ENCRYPTION_KEY", raising=False)
    reload_settings()
    at = open_page(signed_in_app(Role.ML_ENGINEER), PAGE)
    at.button(key="pii_scan").click().run()
    assert at.error[0].value == "Paste some text to scan."
    at.text_area(key="pii_text").input("Write to ann@example.com").run()
    at.button(key="pii_scan").click().run()
    at.selectbox(key="pii_operator").select("encrypt").run()
    at.button(key="pii_anonymise").click().run()
    assert not at.exception
    assert "OMNI_PII_ENCRYPTION_KEY" in at.error[0].value
    german = "Bitte rufen Sie morgen früh zurück, die Adresse ist bei uns in der Stadt, danke."
    at.text_area(key="pii_text").input(german).run()
    at.button(key="pii_scan").click().run()
    assert not at.exception
    assert "does not look like English" in at.error[0].value


def test_scan_a_knowledge_base_document() -> None:
    at = open_page(signed_in_app(Role.ADMIN), PAGE)
    regulations = next(
        o for o in at.selectbox(key="pii_kb_collection").options if o.startswith("Regulations")
    )
    at.selectbox(key="pii_kb_collection").select(regulations).run()
    document = next(s for s in at.selectbox if s.key and s.key.startswith("pii_kb_document_"))
    article = next(o for o in document.options if o.startswith("GDPR Article 37 "))
    document.select(article).run()
    at.button(key="pii_kb_scan").click().run()
    assert not at.exception and not at.error
    summary = next(m.value for m in at.markdown if " chunks of *" in m.value)
    assert "findings" in summary


def test_document_titles_are_shown_literally_in_markdown() -> None:
    from pages.pii_scanner import markdown_text

    shown = markdown_text("![x](https://evil.example/p.png) *bold* [link](javascript:x)")
    assert "![" not in shown and "](" not in shown and "*bold*" not in shown
    assert shown.replace("\\", "") == "![x](https://evil.example/p.png) *bold* [link](javascript:x)"
