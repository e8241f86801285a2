"""Scanning a knowledge-base document with the real PII engine: findings per chunk with their
page and section, access by collection role, and an audit entry without the values.

The document is written with the knowledge base's own `write_document` and placeholder vectors:
the scan reads chunk text only, so the embedding model is not needed here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.db import dispose_engines, unit_of_work
from core.errors import NotFound, PermissionDenied, ValidationError
from core.privacy.document_scan import scan_document
from core.rag.chunking import chunk
from core.rag.collections import create_collection
from core.rag.extract import ExtractedDocument, Section
from core.rag.ingest import write_document
from core.rag.models import Collection
from core.schema import upgrade
from tests.conftest import use_home
from tests.helpers import ADMIN

OFFICER = Actor("doc-officer", Role.COMPLIANCE_OFFICER)
ENGINEER = Actor("doc-engineer", Role.ML_ENGINEER)
FINANCE = Actor("doc-finance", Role.FINANCE)
PARTIES = (
    "This agreement is made between Acme d.o.o. and Maria Novak, EMŠO 0101006500006, "
    "reachable at maria.novak@example.si."
)
PAYMENT = "Payments go to IBAN SI56 2633 0001 2039 086. Questions: call +386 41 123 456."
KB = tuple[int, int, int, int]
TERMS = "The agreement runs for twelve months and renews unless either side gives notice."


def _write(collection_id: int, source: str, sections: list[Section]) -> int:
    doc = ExtractedDocument(source, "text/markdown", sections)
    with unit_of_work() as session:
        c = session.get(Collection, collection_id)
        assert c is not None
        pieces = chunk(doc, max_chars=c.chunk_chars, overlap_chars=c.overlap_chars)
        vectors = np.full((len(pieces), 384), 1 / np.sqrt(384), dtype=np.float32)
        written = write_document(
            session, c, source, doc, pieces, vectors,
            sha256=source.encode().hex().ljust(64, "0")[:64], size_bytes=200,
            uploaded_by=ADMIN.username,
        )  # fmt: skip
        return int(written.document.id)


@pytest.fixture(scope="module")
def home_and_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, KB]]:
    home = tmp_path_factory.mktemp("pii-docs")
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        upgrade()
        open_ = create_collection(ADMIN, "Contracts", roles=["compliance_officer"]).id
        contract = _write(
            open_,
            "contract.md",
            [
                Section(PARTIES, page=1, heading_path=("Contract", "Parties")),
                Section(TERMS, page=1, heading_path=("Contract", "Term")),
                Section(PAYMENT, page=2, heading_path=("Contract", "Payment")),
            ],
        )
        clean = _write(open_, "terms.md", [Section(TERMS, heading_path=("Terms",))])
        closed = create_collection(ADMIN, "Board minutes", roles=["admin"]).id
    yield home, (open_, contract, clean, closed)
    dispose_engines()


@pytest.fixture
def kb(home_and_kb: tuple[Path, KB], monkeypatch: pytest.MonkeyPatch) -> KB:
    """(compliance collection, contract, clean document, admin-only collection)."""
    use_home(monkeypatch, home_and_kb[0])
    return home_and_kb[1]


def test_findings_per_chunk_with_page_and_section(kb: KB) -> None:
    collection, contract, _, _ = kb
    seen: list[tuple[int, int]] = []
    scan = scan_document(
        OFFICER, collection, contract, progress=lambda done, total: seen.append((done, total))
    )
    assert scan.collection == "Contracts" and scan.source == "contract.md"
    assert scan.chunks_scanned == 3 and seen[-1] == (3, 3)
    assert [(c.page, c.section) for c in scan.chunks] == [
        (1, "Contract > Parties"),
        (2, "Contract > Payment"),
    ]
    parties, payment = scan.chunks
    found = {(f.entity_type, f.text) for f in parties.findings}
    assert {("PERSON", "Maria Novak"), ("SI_EMSO", "0101006500006")} <= found
    assert ("EMAIL_ADDRESS", "maria.novak@example.si") in found
    assert "IBAN_CODE" in {f.entity_type for f in payment.findings}
    assert "".join(s.text for s in parties.segments) == parties.text
    assert scan.counts["SI_EMSO"] == 1 and scan.distinct >= 5

    with unit_of_work(read_only=True) as session:
        entry = query(session, AuditFilter(actions=["privacy.document.scan"]))[0]
    summary = json.loads(entry.summary)
    assert entry.target == f"document:{contract}" and summary["chunks_with_pii"] == 2
    assert "Maria" not in entry.summary and "0101006500006" not in entry.summary


def test_entity_filter_and_a_document_without_pii(kb: KB) -> None:
    collection, contract, clean, _ = kb
    only_iban = scan_document(OFFICER, collection, contract, entities=["iban_code"])
    assert set(only_iban.counts) == {"IBAN_CODE"} and len(only_iban.chunks) == 1
    nothing = scan_document(Actor("doc-admin", Role.ADMIN), collection, clean)
    assert nothing.chunks == [] and nothing.chunks_scanned == 1


def test_access_follows_the_collection_roles(kb: KB) -> None:
    collection, contract, _, closed = kb
    with pytest.raises(PermissionDenied, match="not open to your role"):
        scan_document(ENGINEER, collection, contract)  # may scan, but not this collection
    with pytest.raises(PermissionDenied, match="not open to your role"):
        scan_document(OFFICER, closed, 1)
    with pytest.raises(PermissionDenied, match=r"privacy\.pii\.scan"):
        scan_document(FINANCE, collection, contract)
    with unit_of_work(read_only=True) as session:
        denied = query(session, AuditFilter(actions=["privacy.document.scan"], outcomes=["denied"]))
    assert len(denied) == 3


def test_unknown_documents_and_bad_options(kb: KB) -> None:
    collection, contract, _, _ = kb
    with pytest.raises(NotFound, match="is not in 'Contracts'"):
        scan_document(OFFICER, collection, 999_999)
    with pytest.raises(NotFound, match="does not exist"):
        scan_document(OFFICER, 999_999, contract)
    with pytest.raises(ValidationError, match="between 0 and 1"):
        scan_document(OFFICER, collection, contract, min_score=2)
    with pytest.raises(ValidationError, match="supports en"):
        scan_document(OFFICER, collection, contract, language="sl")
