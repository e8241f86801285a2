"""The audit chain on real databases: every change is logged, and tampering is found."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from core.audit.service import AuditFilter, export_csv, query, record
from core.audit.verify import verify, verify_chain
from core.auth.actor import Actor
from core.auth.roles import Role
from core.auth.service import reset_password, set_active
from core.cli import app
from core.db import get_engine, unit_of_work
from core.errors import PermissionDenied
from tests.helpers import ADMIN, make_user


def _verify():  # type: ignore[no-untyped-def]
    with unit_of_work(read_only=True) as session:
        return verify_chain(session)


def _populate(n: int = 6) -> None:
    with unit_of_work() as session:
        for i in range(n):
            record(session, ADMIN, "test.event", f"target-{i}", {"i": i})


def _tamper(sql: str) -> None:
    """What someone with database access would do: drop the guard trigger, then edit."""
    engine = get_engine()
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("DROP TRIGGER audit_log_no_update ON audit_log"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        connection.execute(text(sql))


def test_mutations_are_logged_with_actor_target_and_summary(db_url: str) -> None:
    make_user("ann", Role.FINANCE)
    set_active(ADMIN, "ann", False)
    reset_password(ADMIN, "ann")
    with unit_of_work() as session:
        entries = list(reversed(query(session, AuditFilter())))
    assert [(e.actor, e.action, e.target, e.outcome) for e in entries] == [
        ("system:tests", "users.create", "ann", "ok"),
        ("system:tests", "users.disable", "ann", "ok"),
        ("system:tests", "users.reset_password", "ann", "ok"),
    ]
    assert all(e.ts.tzinfo is not None for e in entries)
    assert _verify().ok and _verify().checked == 3


def test_intact_chain_verifies(db_url: str) -> None:
    _populate()
    report = _verify()
    assert report.ok and report.checked == 6
    assert CliRunner().invoke(app, ["audit", "verify"]).exit_code == 0


@pytest.mark.parametrize(
    ("sql", "broken", "reason"),
    [
        ("UPDATE audit_log SET target = 'someone-else' WHERE seq = 3", 3, "changed"),
        ("UPDATE audit_log SET summary = '{}' WHERE seq = 5", 5, "changed"),
        ("DELETE FROM audit_log WHERE seq = 2", 2, "missing"),
        ("DELETE FROM audit_log WHERE seq = 6", 6, "newest rows deleted"),
        (
            "INSERT INTO audit_log (seq, ts, actor, actor_role, action, target, outcome, summary, "
            "prev_hash, hash) SELECT 7, ts, actor, actor_role, action, 'forged', outcome, "
            "summary, hash, 'x' || substr(hash, 2) FROM audit_log WHERE seq = 6",
            7,
            "changed",
        ),
    ],
)
def test_tampering_is_found_at_the_first_broken_link(
    db_url: str, sql: str, broken: int, reason: str
) -> None:
    _populate()
    _tamper(sql)
    report = _verify()
    assert not report.ok
    assert report.broken_seq == broken
    assert reason in report.reason
    result = CliRunner().invoke(app, ["audit", "verify"])
    assert result.exit_code == 1
    assert f"BROKEN at entry {broken}" in result.output


def test_verify_records_a_broken_chain_and_needs_permission(db_url: str) -> None:
    _populate(3)
    _tamper("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    report = verify(Actor("cora", Role.COMPLIANCE_OFFICER))
    assert not report.ok and report.broken_seq == 1
    with pytest.raises(PermissionDenied):
        verify(Actor("fin", Role.FINANCE))


def test_export_is_audited_and_neutralises_formulas(db_url: str) -> None:
    with unit_of_work() as session:
        record(session, ADMIN, "test.event", '=HYPERLINK("http://x")', {})
    csv_text, rows = export_csv(ADMIN, AuditFilter())
    assert rows == 1
    assert "'=HYPERLINK" in csv_text
    with unit_of_work() as session:
        assert query(session, AuditFilter(actions=["audit.export"]))[0].summary.startswith(
            '{"filter"'
        )
    with pytest.raises(PermissionDenied):
        export_csv(Actor("fin", Role.FINANCE), AuditFilter())


def test_filters_treat_text_literally(db_url: str) -> None:
    with unit_of_work() as session:
        record(session, ADMIN, "a.one", "100% done", {})
        record(session, "bob", "a.two", "plain", {"note": "under_score"})
    with unit_of_work() as session:
        assert [e.target for e in query(session, AuditFilter(text="%"))] == ["100% done"]
        assert [e.actor for e in query(session, AuditFilter(text="_score"))] == ["bob"]
        assert query(session, AuditFilter(text="' OR 1=1 --")) == []
        assert [e.action for e in query(session, AuditFilter(actors=["bob"]))] == ["a.two"]


def test_concurrent_appends_keep_one_unbroken_chain(db_url: str) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                with unit_of_work() as session:
                    record(session, f"worker-{n}", "test.concurrent", str(i), {})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    report = _verify()
    assert report.ok and report.checked == 40
