"""Access and portability exports: one zip with everything held about the subject from every
registered data source (profile, consent, requests, audit log, LLM ledger, knowledge base), a
manifest with checksums, JSON and formula-safe CSV per source; written atomically, checked on
download, refused for unverified or non-export requests."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.db import unit_of_work
from core.errors import Conflict, IntegrityError, NotFound, PermissionDenied, ValidationError
from core.llm.ledger import LEDGER, UsageRecord
from core.orgs.models import Organisation
from core.privacy import export
from core.privacy import requests as rq
from core.privacy.models import ConsentEvent, ConsentPurpose, DataRequest, DataSubject
from core.privacy.sources import get_source, registered_sources
from core.privacy.subjects import SubjectInfo, register_subject
from core.rag.models import Chunk, Collection, Document
from core.rag.store import vector_bytes

COMPLIANCE = Actor("cora", Role.COMPLIANCE_OFFICER)
FINANCE = Actor("finn", Role.FINANCE)
EMAIL, NAME = "ana.novak@example.si", "Ana Novak"
NOTE = '=HYPERLINK("http://evil.example","click")'  # must not run in a spreadsheet


@dataclass(frozen=True)
class World:
    org_id: int
    ana: SubjectInfo
    bob: SubjectInfo


def make_world() -> World:
    """Two subjects of one customer, each with consent events and LLM calls."""
    with unit_of_work() as session:
        org = Organisation(
            name="Acme d.o.o.",
            country="SI",
            plan="pro",
            industry="retail",
            employees=40,
            domain="acme.si",
            signed_up_at=utcnow() - timedelta(days=400),
        )
        session.add(org)
        session.flush()
        org_id = org.id
    ana = register_subject(
        Actor.system("tests"),
        email=EMAIL,
        full_name=NAME,
        country="SI",
        organisation_id=org_id,
        external_ref="cus-ana",
    )
    bob = register_subject(
        Actor.system("tests"),
        email="bob@example.com",
        full_name="Bob Stone",
        country="DE",
        organisation_id=org_id,
        external_ref="cus-bob",
    )
    with unit_of_work() as session:
        purpose = ConsentPurpose(
            key="newsletter", name="Newsletter", lawful_basis="consent", notice_version="v1"
        )
        session.add(purpose)
        session.flush()
        for who, note in ((ana, NOTE), (bob, "")):
            session.add(
                ConsentEvent(
                    subject_id=who.id,
                    purpose_id=purpose.id,
                    kind="given",
                    ts=utcnow() - timedelta(days=30),
                    channel="web_form",
                    notice_version="v1",
                    recorded_by="tests",
                    note=note,
                )
            )
    for who, prompt in ((ana, "Summarise my order"), (bob, "Bob's question"), (ana, "Again")):
        LEDGER.record(  # queued: the export must flush the writer before it reads
            UsageRecord(
                request_id=f"r-{prompt[:5]}",
                actor="gateway",
                team="support",
                alias="chat",
                deployment="local",
                provider="local",
                model="smollm2",
                status="ok",
                customer_id=org_id,
                end_user=who.external_ref,
                input_tokens=12,
                output_tokens=30,
                cost_micros=420,
                prompt_redacted=prompt,
                response_redacted="Done.",
            )
        )
    return World(org_id, ana, bob)


def add_kb_rows(texts: list[str]) -> int:
    """A collection with one document whose chunks are `texts` (placeholder vectors: the export
    reads text only)."""
    with unit_of_work() as session:
        c = Collection(name="Support tickets", owner="tests", roles="compliance_officer")
        session.add(c)
        session.flush()
        d = Document(
            collection_id=c.id,
            source="tickets.md",
            title="Tickets",
            mime="text/markdown",
            size_bytes=100,
            sha256="0" * 64,
            uploaded_by="tests",
        )
        session.add(d)
        session.flush()
        for i, text in enumerate(texts):
            session.add(
                Chunk(
                    document_id=d.id,
                    collection_id=c.id,
                    ordinal=i,
                    text=text,
                    section="Tickets",
                    content_hash=hashlib.sha256(text.encode()).hexdigest(),
                    vector=vector_bytes(np.ones(384, dtype=np.float32) / np.sqrt(384)),
                )
            )
        return c.id


def verified_request(subject_id: int, kind: str = "access") -> str:
    info = rq.open_request(COMPLIANCE, subject_id=subject_id, kind=kind)
    rq.verify_identity(COMPLIANCE, info.reference, method="email_link")
    return info.reference


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_export_holds_everything_about_the_subject_and_nothing_else(db_url: str) -> None:
    world = make_world()
    add_kb_rows(
        [
            f"Ticket 12: ANA NOVAK asked to change her address. Reply to {EMAIL}.",
            "Ticket 13: Bob Stone reported a broken link.",
            "General policy: tickets are answered within two days.",
            "Ticket 14: ŽAN   KOŠIR asked about invoices.",
        ]
    )
    ref = verified_request(world.ana.id)
    built = export.export_request(COMPLIANCE, ref)

    assert built.path == Path(export.exports_dir() / f"{ref}.zip") and built.path.exists()
    blob = built.path.read_bytes()
    assert hashlib.sha256(blob).hexdigest() == built.sha256
    files = members(blob)
    names = [s.name for s in registered_sources()]
    assert set(files) == {"manifest.json", "README.txt"} | {
        f"data/{n}.{ext}" for n in names for ext in ("json", "csv")
    }
    manifest = json.loads(files["manifest.json"])
    assert manifest["request"]["reference"] == ref and manifest["subject"]["email"] == EMAIL
    assert manifest["generated_by"] == "cora"
    for name, digest in manifest["sha256"].items():
        assert hashlib.sha256(files[name]).hexdigest() == digest
    assert manifest["counts"] == built.counts
    assert built.counts["profile"] == 1 and built.counts["consent"] == 1
    assert built.counts["llm_usage"] == 2 and built.counts["knowledge_base"] == 1
    assert built.counts["requests"] == 1 and built.counts["audit_log"] >= 3

    usage = json.loads(files["data/llm_usage.json"])
    assert {u["prompt_redacted"] for u in usage} == {"Summarise my order", "Again"}
    kb = json.loads(files["data/knowledge_base.json"])
    assert kb[0]["collection"] == "Support tickets" and "ANA NOVAK" in kb[0]["text"]
    everything = b"".join(files.values())
    assert b"Bob Stone" not in everything and b"Bob's question" not in everything

    consent_rows = list(csv.DictReader(io.StringIO(files["data/consent.csv"].decode())))
    assert consent_rows[0]["note"] == "'" + NOTE and consent_rows[0]["purpose"] == "newsletter"
    assert "Ana" not in files["README.txt"].decode() and ref in files["README.txt"].decode()

    info = rq.get_request(COMPLIANCE, ref)
    assert info.export_sha256 == built.sha256 and info.status == "in_progress"
    name, downloaded = export.read_export(COMPLIANCE, ref)
    assert name == f"{ref}.zip" and downloaded == blob
    actions = [(e.action, e.summary.get("sha256")) for e in rq.timeline(COMPLIANCE, ref)]
    assert ("privacy.request.export", built.sha256) in actions
    assert ("privacy.request.download", built.sha256) in actions
    export_entry = next(e for e in rq.timeline(COMPLIANCE, ref) if e.action.endswith("export"))
    assert EMAIL not in json.dumps(export_entry.summary)  # counts and hashes only

    # names outside ASCII match in any case (SQLite's lower() folds ASCII only)
    zan = register_subject(COMPLIANCE, email="zan@example.si", full_name="Žan Košir", country="SI")
    with unit_of_work(read_only=True) as session:
        subject = session.get(DataSubject, zan.id)
        assert subject is not None
        found = get_source("knowledge_base").collect(session, subject)
    assert [f["text"] for f in found] == ["Ticket 14: ŽAN   KOŠIR asked about invoices."]


def test_ccpa_know_and_portability_export_too(sqlite_db: str) -> None:
    kim = register_subject(Actor.system("tests"), email="kim@x.com", full_name="Kim", country="US")
    assert export.export_request(COMPLIANCE, verified_request(kim.id, "ccpa_know")).counts
    assert export.export_request(COMPLIANCE, verified_request(kim.id, "portability")).counts


def test_exports_are_refused_until_verified_and_for_other_kinds(sqlite_db: str) -> None:
    world = make_world()
    unverified = rq.open_request(COMPLIANCE, subject_id=world.ana.id, kind="access").reference
    with pytest.raises(ValidationError, match="Verify the requester's identity before exporting"):
        export.export_request(COMPLIANCE, unverified)
    with pytest.raises(NotFound, match="has no export yet"):
        export.read_export(COMPLIANCE, unverified)
    erasure = verified_request(world.ana.id, "erasure")
    with pytest.raises(ValidationError, match="is a request for erasure; exports answer access"):
        export.export_request(COMPLIANCE, erasure)
    with pytest.raises(PermissionDenied):
        export.export_request(FINANCE, unverified)
    done = verified_request(world.bob.id)
    rq.close_request(COMPLIANCE, done, "Answered by post.")
    with pytest.raises(Conflict, match="already completed"):
        export.export_request(COMPLIANCE, done)


def test_a_failed_write_leaves_no_file_and_a_changed_file_is_refused(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    ref = verified_request(world.ana.id)
    real_writestr = zipfile.ZipFile.writestr
    calls = {"n": 0}

    def failing(self: zipfile.ZipFile, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError("disk full")
        real_writestr(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(OSError, match="disk full"):
        export.export_request(COMPLIANCE, ref)
    assert list(export.exports_dir().iterdir()) == []  # no zip, no temporary file
    assert rq.get_request(COMPLIANCE, ref).export_sha256 is None
    monkeypatch.setattr(zipfile.ZipFile, "writestr", real_writestr)

    built = export.export_request(COMPLIANCE, ref)
    built.path.write_bytes(built.path.read_bytes() + b"tampered")
    with pytest.raises(IntegrityError, match="does not match the checksum"):
        export.read_export(COMPLIANCE, ref)
    with unit_of_work(read_only=True) as session:
        assert session.query(DataRequest).count() == 1


def test_to_csv_flattens_nested_records_and_neutralises_formulas() -> None:
    text = export.to_csv(
        [{"a": 1, "meta": {"x": "=1+1", "y": None}}, {"a": 2, "tags": ["p", "q"], "b": "-5"}]
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["a", "meta.x", "meta.y", "tags", "b"]
    assert rows[1] == ["1", "'=1+1", "", "", ""]
    assert rows[2] == ["2", "", "", '["p", "q"]', "'-5"]


def test_passages_of_collections_closed_to_the_exporter_are_withheld(sqlite_db: str) -> None:
    world = make_world()
    cid = add_kb_rows([f"Ticket 12: Ana Novak wrote from {EMAIL}."])
    with unit_of_work() as session:
        closed = session.get(Collection, cid)
        assert closed is not None
        closed.roles = "ml_engineer"  # not open to compliance officers
    ref = verified_request(world.ana.id)
    files = members(export.export_request(COMPLIANCE, ref).path.read_bytes())
    kb = json.loads(files["data/knowledge_base.json"])
    assert kb == [
        {
            "collection": "Support tickets",
            "withheld_passages": 1,
            "reason": "the collection is not open to the exporting person's role; an admin "
            "can export it",
        }
    ]
    assert b"Ticket 12" not in b"".join(files.values())
    admin = export.export_request(Actor("ada", Role.ADMIN), ref)
    assert "Ticket 12" in members(admin.path.read_bytes())["data/knowledge_base.json"].decode()


def test_usage_rows_still_queued_stop_the_export_rather_than_be_missed(
    sqlite_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import DatabaseUnavailable

    world = make_world()
    ref = verified_request(world.ana.id)
    monkeypatch.setattr(LEDGER, "backlog", lambda: 3)
    with pytest.raises(DatabaseUnavailable, match="3 LLM usage rows are still waiting"):
        export.export_request(COMPLIANCE, ref)
    assert not export.export_path(ref).exists()


def test_cli_export_copy_is_checked_and_audited(sqlite_db: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from core.audit.service import AuditFilter, query
    from core.privacy.cli_requests import requests_app

    world = make_world()
    ref = verified_request(world.ana.id)
    out = tmp_path / "copy.zip"
    result = CliRunner().invoke(requests_app, ["export", ref, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == export.export_path(ref).read_bytes()
    with unit_of_work() as session:
        actions = [e.action for e in query(session, AuditFilter(text=ref))]
    assert "privacy.request.download" in actions
