"""Retention: policies per category, a dry run that writes nothing, enforcement that does what
the dry run said, one category's failure not stopping or half-applying the others."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import PermissionDenied, ValidationError
from core.llm.models import LLMUsage
from core.privacy import retention_categories
from core.privacy.export import exports_dir
from core.privacy.retention import dry_run, enforce, list_policies, list_runs, set_policy
from core.rag.models import QueryLog

OFFICER = Actor("carla", Role.COMPLIANCE_OFFICER)
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _usage(days_ago: int, body: str | None, end_user: str | None) -> dict[str, object]:
    return {
        "ts": NOW - timedelta(days=days_ago),
        "request_id": uuid.uuid4().hex,
        "actor": "svc",
        "team": "support",
        "end_user": end_user,
        "alias": "chat",
        "deployment": "d",
        "provider": "p",
        "model": "m",
        "status": "ok",
        "prompt_redacted": body,
        "response_redacted": body,
    }


def _fill() -> None:
    with unit_of_work() as session:
        session.execute(
            insert(LLMUsage),
            [
                _usage(90, "old prompt", "u-1"),
                _usage(45, "older prompt", None),
                _usage(5, "fresh prompt", "u-2"),
                _usage(500, None, "u-3"),
            ],
        )
        for days in (400, 10):
            session.add(
                QueryLog(ts=NOW - timedelta(days=days), actor="carla", question="q", status="ok")
            )


def _count(column: object, *where: object) -> int:
    with unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(column).where(*where)) or 0  # type: ignore[arg-type]


def test_dry_run_then_enforce_touches_exactly_what_was_previewed(db_url: str) -> None:
    _fill()
    set_policy(OFFICER, "llm_bodies", duration_days=30, action="anonymise", legal_basis="debugging")
    set_policy(OFFICER, "kb_questions", duration_days=365, action="delete", legal_basis="review")
    set_policy(OFFICER, "llm_end_users", duration_days=400, action="anonymise", legal_basis="x")
    plan = {line.category: line for line in dry_run(OFFICER, now=NOW)}
    assert plan["llm_bodies"].rows == 2
    assert plan["kb_questions"].rows == 1
    assert plan["llm_end_users"].rows == 1
    assert plan["auth_sessions"].note == "no policy set"
    assert _count(LLMUsage, LLMUsage.prompt_redacted.is_not(None)) == 3  # the dry run wrote nothing

    run = enforce(OFFICER, now=NOW)
    assert run.status == "ok"
    assert {line.category: line.rows for line in run.lines} == {
        "llm_bodies": 2,
        "kb_questions": 1,
        "llm_end_users": 1,
    }
    assert _count(LLMUsage, LLMUsage.prompt_redacted.is_not(None)) == 1  # only the fresh one
    assert _count(LLMUsage) == 4  # usage rows stay: billing needs them
    assert _count(QueryLog) == 1
    assert _count(LLMUsage, LLMUsage.end_user.is_not(None)) == 2
    assert all(line.rows == 0 for line in dry_run(OFFICER, now=NOW))  # nothing left due
    assert list_runs(OFFICER)[0].id == run.id
    with unit_of_work() as session:
        actions = [
            e.action for e in query(session, AuditFilter(actions=["privacy.retention.enforce"]))
        ]
    assert len(actions) == 3


def test_policy_validation(db_url: str) -> None:
    with pytest.raises(ValidationError, match="can only be anonymised"):
        set_policy(OFFICER, "llm_bodies", duration_days=30, action="delete", legal_basis="x")
    with pytest.raises(ValidationError, match="Unknown data category 'mystery'"):
        set_policy(OFFICER, "mystery", duration_days=30, action="delete", legal_basis="x")
    with pytest.raises(ValidationError, match="legal basis"):
        set_policy(OFFICER, "kb_questions", duration_days=30, action="delete", legal_basis=" ")
    with pytest.raises(ValidationError, match="between 1 and"):
        set_policy(OFFICER, "kb_questions", duration_days=0, action="delete", legal_basis="x")
    with pytest.raises(PermissionDenied):
        set_policy(
            Actor("milan", Role.ML_ENGINEER),
            "kb_questions",
            duration_days=30,
            action="delete",
            legal_basis="x",
        )
    assert {p.category for p in list_policies(OFFICER)} == set(retention_categories.categories())


def test_a_failing_category_is_reported_and_the_others_still_run(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill()
    set_policy(OFFICER, "llm_bodies", duration_days=30, action="anonymise", legal_basis="x")
    set_policy(OFFICER, "kb_questions", duration_days=365, action="delete", legal_basis="x")
    original = retention_categories.categories()["kb_questions"]

    def broken(session: object, cutoff: datetime, action: str) -> int:
        original.enforce(session, cutoff, action)  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setitem(
        retention_categories._CATEGORIES,
        "kb_questions",
        retention_categories.Category(**{**original.__dict__, "enforce": broken}),
    )
    run = enforce(OFFICER, now=NOW)
    assert run.status == "failed"
    lines = {line.category: line for line in run.lines}
    assert lines["kb_questions"].status == "failed"
    assert _count(QueryLog) == 2  # rolled back: nothing half-applied
    assert lines["llm_bodies"].rows == 2


def test_old_export_files_are_deleted(sqlite_db: str) -> None:
    folder = exports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    old, new = folder / "DSR-1.zip", folder / "DSR-2.zip"
    old.write_bytes(b"zip")
    new.write_bytes(b"zip")
    stamp = (NOW - timedelta(days=60)).timestamp()
    os.utime(old, (stamp, stamp))
    os.utime(new, (NOW.timestamp(), NOW.timestamp()))
    set_policy(OFFICER, "dsr_exports", duration_days=30, action="delete", legal_basis="x")
    assert {line.category: line.rows for line in dry_run(OFFICER, now=NOW)}["dsr_exports"] == 1
    enforce(OFFICER, now=NOW)
    assert not old.exists() and new.exists()


def test_enforcement_refuses_the_future_and_changed_policies(sqlite_db: str) -> None:
    from core.errors import Conflict
    from core.privacy.retention import current_token

    set_policy(OFFICER, "kb_questions", duration_days=365, action="delete", legal_basis="x")
    reviewed = current_token(OFFICER)
    with pytest.raises(ValidationError, match="future"):
        enforce(OFFICER, now=utcnow() + timedelta(days=3650))
    set_policy(OFFICER, "kb_questions", duration_days=1, action="delete", legal_basis="x")
    with pytest.raises(Conflict, match="changed since you reviewed"):
        enforce(OFFICER, reviewed_token=reviewed)
    assert list_runs(OFFICER) == []  # nothing ran
    assert enforce(OFFICER, reviewed_token=current_token(OFFICER)).status == "ok"
