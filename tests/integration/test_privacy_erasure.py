"""Erasure across every data source with the real MiniLM, FAISS, bm25s and PII engine: the
profile becomes a tombstone, ledger rows lose their link and bodies but keep their cost,
knowledge-base passages are rewritten and re-embedded (search no longer finds the subject),
consent proof and request records are kept with the reason, earlier exports are deleted; a
source that fails half-way leaves a reported partial state that a rerun resumes; the
certificate lists every source and carries a verifiable digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.auth.actor import Actor
from core.auth.roles import Role
from core.db import unit_of_work
from core.errors import Conflict, IntegrityError, NotFound, PermissionDenied, ValidationError
from core.llm.ledger import LEDGER
from core.llm.models import LLMUsage
from core.llm.privacy_source import LLMUsageSource
from core.privacy import erasure, export
from core.privacy import requests as rq
from core.privacy.cli_requests import requests_app
from core.privacy.models import ConsentEvent, DataRequest, DataSubject
from core.privacy.sources import (
    ErasureOutcome,
    get_source,
    register_source,
    registered_sources,
    unregister_source,
)
from core.privacy.subjects import ERASED_NAME
from core.rag.collections import create_collection
from core.rag.ingest import UploadedFile, ingest_files
from core.rag.models import Chunk, Collection
from core.rag.retrieval import search
from core.rag.store import INDEXES
from tests.helpers import ADMIN
from tests.integration.test_privacy_export import (
    COMPLIANCE,
    EMAIL,
    NAME,
    make_world,
    verified_request,
)

TICKETS = f"""# Support tickets

## Ticket 12

{NAME} ({EMAIL}) called from +386 41 123 456 about her order. She wants the invoice resent.

## Ticket 13

Bob Stone reported a broken link on the pricing page.

## Policy

Tickets about orders are answered within two working days.
""".encode()


@pytest.fixture(autouse=True)
def _clean_caches() -> Iterator[None]:
    INDEXES.forget()  # collection ids repeat across test databases
    yield
    LEDGER.flush()
    INDEXES.forget()


def _tickets() -> int:
    collection = create_collection(ADMIN, "Tickets", roles=["compliance_officer"])
    [report] = ingest_files(ADMIN, collection.id, [UploadedFile("tickets.md", TICKETS)])
    assert report.status == "indexed", report.message
    return collection.id


def _texts(collection_id: int) -> list[str]:
    with unit_of_work(read_only=True) as session:
        return list(session.scalars(select(Chunk.text).where(Chunk.collection_id == collection_id)))


def _erasure_request(subject_id: int) -> str:
    return verified_request(subject_id, "erasure")


def test_erasure_runs_across_every_source_and_ends_with_a_certificate(db_url: str) -> None:
    world = make_world()
    cid = _tickets()
    access = verified_request(world.ana.id)
    built = export.export_request(COMPLIANCE, access)  # a copy the erasure must remove
    rq.close_request(COMPLIANCE, access, "Export sent.")
    with unit_of_work(read_only=True) as session:
        generation = session.scalar(select(Collection.generation).where(Collection.id == cid))
    ref = _erasure_request(world.ana.id)
    seen: list[tuple[int, int, str, str]] = []

    status = erasure.run_erasure(COMPLIANCE, ref, lambda *a: seen.append(a))

    names = [s.name for s in registered_sources()]
    assert status.state == "completed" and status.done == status.total == len(names)
    assert [s.source for s in status.steps] == names and names[-1] == "profile"
    assert [a[2] for a in seen[:-1]] == [get_source(n).label for n in names]
    assert seen[-1] == (len(names), len(names), "", "completed")
    actions = {s.source: (s.action, s.rows) for s in status.steps}
    assert actions["profile"] == ("anonymised", 1)
    assert actions["llm_usage"] == ("anonymised", 2)
    assert actions["knowledge_base"] == ("anonymised", 1)
    assert actions["consent"] == ("retained", 1)
    assert actions["exports"] == ("deleted", 1) and not built.path.exists()
    assert actions["requests"] == ("retained", 2)

    with unit_of_work(read_only=True) as session:
        ana = session.get(DataSubject, world.ana.id)
        assert ana is not None and ana.erased_at is not None
        assert (ana.email, ana.full_name) == (f"erased-{ana.id}@invalid", ERASED_NAME)
        assert ana.external_ref.startswith("erased-") and ana.birth_date is None
        usage = session.execute(
            select(LLMUsage.end_user, LLMUsage.prompt_redacted, LLMUsage.cost_micros)
        ).all()
        assert sorted(usage, key=str) == sorted(
            [(None, None, 420), (None, None, 420), ("cus-bob", "Bob's question", 420)], key=str
        )
        consent = session.scalar(select(func.count()).select_from(ConsentEvent))
        assert consent == 2  # proof of consent kept
        details = session.scalars(select(DataRequest.details)).all()
        assert not any(EMAIL in d or NAME in d for d in details)
        assert (
            session.scalar(select(Collection.generation).where(Collection.id == cid))
            == generation + 1
        )

    texts = _texts(cid)
    erased = next(t for t in texts if "[erased subject]" in t)
    assert erased.startswith("[erased subject] ([erased subject]) called from [erased] about")
    assert any("Bob Stone" in t for t in texts)  # other people's passages are untouched
    for query, mode in ((EMAIL, "hybrid"), (NAME, "lexical"), ("Novak", "lexical")):
        found = search(ADMIN, cid, query, k=5, mode=mode)  # type: ignore[arg-type]
        assert not any("Novak" in p.text or EMAIL in p.text for p in found.passages)
    rewritten = search(ADMIN, cid, "erased subject invoice resent order", k=1, mode="lexical")
    assert "[erased subject]" in rewritten.passages[0].text
    INDEXES.forget()  # another process: loads the saved generation or rebuilds from the rows
    again = search(ADMIN, cid, "customer called about her order invoice", k=3)
    assert not any("Novak" in p.text for p in again.passages)

    certificate = erasure.get_certificate(COMPLIANCE, ref)
    assert erasure.verify_certificate(certificate)
    assert certificate["request"] == ref and certificate["subject_id"] == world.ana.id
    assert [s["source"] for s in certificate["sources"]] == names
    assert {r["source"] for r in certificate["retained"]} >= {"consent", "requests", "audit_log"}
    assert all(r["reason"] for r in certificate["retained"])
    assert EMAIL not in json.dumps(certificate) and "Novak" not in json.dumps(certificate)
    info = rq.get_request(COMPLIANCE, ref)
    assert info.status == "completed" and info.has_certificate
    assert certificate["sha256"] in info.resolution
    timeline = [e.action.removeprefix("privacy.request.") for e in rq.timeline(COMPLIANCE, ref)]
    assert timeline == [
        "open",
        "verify",
        "erase",
        *["erase_step"] * len(names),
        "certificate",
        "close",
    ]
    with pytest.raises(Conflict, match="was erased on"):
        rq.open_request(COMPLIANCE, subject_id=world.ana.id, kind="access")


def test_a_failure_half_way_is_reported_and_a_rerun_resumes(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    ref = _erasure_request(world.ana.id)
    names = [s.name for s in registered_sources()]
    broken = names.index("llm_usage")

    def fail(self: LLMUsageSource, session: Any, subject: DataSubject) -> ErasureOutcome:
        session.execute(LLMUsage.__table__.delete())  # half-done work that must roll back
        raise RuntimeError(f"connection reset while erasing {subject.email}")

    monkeypatch.setattr(LLMUsageSource, "erase", fail)
    status = erasure.run_erasure(COMPLIANCE, ref)
    assert status.state == "failed" and status.needs_resume
    assert status.done == broken
    assert status.message.startswith(f"Partially erased: {broken} of {len(names)} sources done")
    assert "LLM usage ledger failed: unexpected RuntimeError" in status.message
    assert EMAIL not in status.message  # driver text can quote data: not shown
    assert [s.status for s in status.steps] == (
        ["done"] * broken + ["failed"] + ["pending"] * (len(names) - broken - 1)
    )
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(LLMUsage)) == 3  # rolled back
        ana = session.get(DataSubject, world.ana.id)
        assert ana is not None and ana.email == EMAIL and ana.erased_at is None  # profile last
    info = rq.get_request(COMPLIANCE, ref)
    assert info.status == "in_progress" and info.partially_erased
    assert (info.erasure_done, info.erasure_total) == (broken, len(names))
    assert rq.list_requests(COMPLIANCE)[0].partially_erased
    with pytest.raises(Conflict, match="partially erased"):
        rq.reject_request(COMPLIANCE, ref, "Changed our mind about this one.")
    with pytest.raises(NotFound, match="has no completion certificate"):
        erasure.get_certificate(COMPLIANCE, ref)

    # a crash (nothing the run can record) leaves the step pending: "interrupted"
    monkeypatch.setattr(LLMUsageSource, "erase", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        erasure.run_erasure(COMPLIANCE, ref)
    interrupted = erasure.erasure_status(COMPLIANCE, ref)
    assert interrupted.state == "partial" and interrupted.done == broken
    assert "(the run was interrupted). Resume the erasure" in interrupted.message
    monkeypatch.undo()

    resumed = erasure.run_erasure(COMPLIANCE, ref)
    assert resumed.state == "completed" and resumed.done == len(names)
    entries = rq.timeline(COMPLIANCE, ref)
    steps = [e.summary["source"] for e in entries if e.action.endswith("erase_step")]
    assert steps.count("consent") == 1  # done steps are not run again
    assert [e.outcome for e in entries if e.summary.get("source") == "llm_usage"] == [
        "failed",
        "ok",
    ]
    starts = [e.summary for e in entries if e.action == "privacy.request.erase"]
    assert [s["resumed"] for s in starts] == [False, True, True]
    assert starts[-1]["to_run"] == len(names) - broken
    certificate = erasure.get_certificate(COMPLIANCE, ref)
    assert [s["source"] for s in certificate["sources"]] == names
    with unit_of_work(read_only=True) as session:
        remaining = session.scalars(select(LLMUsage.end_user)).all()
        assert sorted(remaining, key=str) == sorted([None, None, "cus-bob"], key=str)


def _interrupt(self: LLMUsageSource, session: Any, subject: DataSubject) -> ErasureOutcome:
    raise KeyboardInterrupt


def test_erasure_refusals(sqlite_db: str) -> None:
    world = make_world()
    unverified = rq.open_request(COMPLIANCE, subject_id=world.ana.id, kind="erasure").reference
    with pytest.raises(ValidationError, match="Verify the requester's identity before erasing"):
        erasure.run_erasure(COMPLIANCE, unverified)
    assert erasure.erasure_status(COMPLIANCE, unverified).state == "not_started"
    access = verified_request(world.bob.id)
    with pytest.raises(ValidationError, match="only erasure and ccpa_delete requests erase"):
        erasure.run_erasure(COMPLIANCE, access)
    with pytest.raises(PermissionDenied):
        erasure.run_erasure(Actor("mia", Role.ML_ENGINEER), unverified)
    rq.verify_identity(COMPLIANCE, unverified, method="email_link")
    assert erasure.run_erasure(COMPLIANCE, unverified).state == "completed"
    with pytest.raises(Conflict, match="already completed"):
        erasure.run_erasure(COMPLIANCE, unverified)
    with unit_of_work() as session:  # someone edits the stored certificate
        request = session.scalar(select(DataRequest).where(DataRequest.reference == unverified))
        assert request is not None and request.certificate is not None
        edited = json.loads(request.certificate)
        edited["sources"][-1]["action"] = "deleted"
        request.certificate = json.dumps(edited)
    with pytest.raises(IntegrityError, match="does not match its digest"):
        erasure.get_certificate(COMPLIANCE, unverified)


def test_a_new_domain_plugs_in_with_one_class(sqlite_db: str) -> None:
    @register_source(order=70)
    class InvoiceSource:
        name = "test_invoices"
        label = "Invoices"
        description = "Invoices billed to the subject."

        def collect(self, session: Any, subject: DataSubject) -> list[dict[str, Any]]:
            return [{"number": "INV-1", "total_minor": 1200, "currency": "EUR"}]

        def erase(self, session: Any, subject: DataSubject) -> ErasureOutcome:
            return ErasureOutcome("retained", 1, "Kept 10 years: accounting law.")

    try:
        world = make_world()
        access = verified_request(world.ana.id)
        assert export.export_request(COMPLIANCE, access).counts["test_invoices"] == 1
        certificate = erasure.run_erasure(COMPLIANCE, _erasure_request(world.bob.id)).certificate
        assert certificate is not None
        retained = {r["source"]: r["reason"] for r in certificate["retained"]}
        assert retained["test_invoices"] == "Kept 10 years: accounting law."
    finally:
        unregister_source("test_invoices")
    with pytest.raises(Exception, match="Unknown data source 'test_invoices': the registered"):
        get_source("test_invoices")


def test_cli_erase_and_certificate(sqlite_db: str, tmp_path: Any) -> None:
    world = make_world()
    ref = _erasure_request(world.ana.id)
    runner = CliRunner()
    result = runner.invoke(requests_app, ["erase", ref])
    assert result.exit_code == 0, result.output
    assert "Erasure completed" in result.output and "profile" in result.output
    out = tmp_path / "certificate.json"
    result = runner.invoke(requests_app, ["certificate", ref, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert erasure.verify_certificate(json.loads(out.read_text()))
    again = runner.invoke(requests_app, ["erase", ref])
    assert again.exit_code == 1 and "already completed" in again.output


def test_questions_asked_about_the_subject_are_scrubbed(sqlite_db: str) -> None:
    from core.privacy import requests as requests_service
    from core.privacy.erasure import run_erasure
    from core.privacy.subjects import register_subject
    from core.rag.models import QueryLog

    officer = Actor("cora", Role.COMPLIANCE_OFFICER)
    subject = register_subject(officer, email="jane.doe@x.si", full_name="Jane Doe", country="SI")
    with unit_of_work() as session:
        session.add_all(
            [
                QueryLog(actor="cora", question="What is JANE DOE's address?", status="ok",
                         answer="Jane Doe (jane.doe@x.si) lives in Ljubljana.", passages="[]"),
                QueryLog(actor="cora", question="Refund policy?", status="ok", answer="30 days."),
            ]
        )  # fmt: skip
    info = requests_service.open_request(officer, subject_id=subject.id, kind="erasure")
    requests_service.verify_identity(officer, info.reference, method="email_link")
    status = run_erasure(officer, info.reference)
    step = next(s for s in status.steps if s.source == "kb_questions")
    assert (step.action, step.rows) == ("anonymised", 1)
    with unit_of_work() as session:
        rows = session.scalars(select(QueryLog).order_by(QueryLog.id)).all()
        texts = [(r.question, r.answer) for r in rows]
    assert texts == [
        (
            "What is [erased subject]'s address?",
            "[erased subject] ([erased subject]) lives in Ljubljana.",
        ),
        ("Refund policy?", "30 days."),
    ]
