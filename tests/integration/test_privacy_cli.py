"""`omni privacy ...` driven as an operator (or a scheduler) would."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from core.auth.actor import Actor
from core.auth.roles import Role
from core.cli import app
from core.privacy.consent import record_consent
from core.privacy.purposes import save_purpose
from core.privacy.retention import set_policy
from core.privacy.subjects import register_subject

runner = CliRunner()
OFFICER = Actor("carla", Role.COMPLIANCE_OFFICER)


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_review_receipt_and_retention_from_the_shell(sqlite_db: str) -> None:
    save_purpose(
        OFFICER, "marketing", name="Marketing", lawful_basis="consent", notice_version="v1",
        create=True,
    )  # fmt: skip
    sid = register_subject(OFFICER, email="ana@example.si", full_name="Ana Novak", country="SI").id
    record_consent(OFFICER, sid, "marketing", "given")  # no proof: queued
    code, out = _run("privacy", "subjects", "ana")
    assert code == 0 and f"#{sid}" in out and "Ana Novak" in out
    code, out = _run("privacy", "review", "--reason", "missing_proof")
    assert code == 0 and "1 consent(s) need review." in out
    code, out = _run("privacy", "receipt", str(sid))
    assert code == 0 and json.loads(out)["services"][0]["status"] == "active"
    set_policy(OFFICER, "kb_questions", duration_days=30, action="delete", legal_basis="x")
    code, out = _run("privacy", "retention", "dry-run")
    assert code == 0 and "kb_questions" in out and "no policy set" in out
    code, out = _run("privacy", "retention", "enforce")
    assert code == 0 and "Run #1: ok" in out
    code, out = _run("privacy", "receipt", "999")
    assert code == 1 and "Error: No data subject #999" in out
