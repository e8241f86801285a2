"""The knowledge base end to end with the real MiniLM, FAISS and bm25s: ingestion batches with bad
files, atomicity, re-ingestion, deletion, filters, index caches shared between processes, access
control, cited answers through the gateway, the query log and ratings, and the CLI."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfWriter
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.audit.models import AuditEntry
from core.audit.service import AuditFilter
from core.audit.service import query as audit_query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.cli import app
from core.db import unit_of_work
from core.errors import PermissionDenied, ValidationError
from core.llm import gateway
from core.llm.errors import ProviderUnavailable
from core.llm.ledger import LEDGER
from core.llm.providers import PROVIDERS
from core.rag import ingest as ingest_module
from core.rag.answers import ask, ask_stream, query_log, rate_answer
from core.rag.collections import (
    create_collection,
    delete_collection,
    list_collections,
    update_collection,
)
from core.rag.ingest import UploadedFile, delete_document, ingest_files, list_documents
from core.rag.models import Chunk, Document, QueryLog
from core.rag.retrieval import Filters, search
from core.rag.store import INDEXES, IndexCache, collection_dir
from tests import scripted_provider as sp
from tests.helpers import ADMIN
from tests.unit.test_rag_extract import make_docx, make_pdf

ML = Actor("mia", Role.ML_ENGINEER)
COMPLIANCE = Actor("cora", Role.COMPLIANCE_OFFICER)
FINANCE = Actor("finn", Role.FINANCE)
ROUTER = """
deployments:
  primary: {provider: scripted, model: gpt-4o-mini, max_retries: 0}
aliases:
  chat: {deployments: [primary]}
cache: {exact_ttl_s: 0}
"""

REFUNDS = (
    b"# Refund policy\n\nCustomers may ask for a refund within 30 days of purchase. Refunds go "
    b"back to the original card within five working days.\n\n## Exceptions\n\nGift cards and "
    b"custom engraving orders cannot be refunded.\n"
)
SECURITY = (
    b"<html><body><h1>Security</h1><p>Laptops must use full-disk encryption and lock after "
    b"five minutes.</p><h2>Passwords</h2><p>Passwords are at least twelve characters and are "
    b"stored in the company password manager.</p></body></html>"
)


def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * (8 * 1024 * 1024))
    return buffer.getvalue()


def _encrypted_pdf() -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture
def kb(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A collection open to ML engineers only, with the scripted LLM behind alias 'chat'."""
    monkeypatch.setitem(PROVIDERS, "scripted", "tests.scripted_provider:ScriptedProvider")
    sp.reset()
    INDEXES.forget()
    gateway.reload_router(keep_state=False)
    gateway.save_router_config(ADMIN, ROUTER, "tests")
    collection = create_collection(ML, "Policies", roles=["ml_engineer"])
    yield collection.id
    LEDGER.flush()
    INDEXES.forget()
    gateway.reload_router(keep_state=False)


def audit(flt: AuditFilter) -> list[AuditEntry]:
    with unit_of_work(read_only=True) as session:
        return audit_query(session, flt)


def _counts(collection_id: int) -> tuple[int, int]:
    with unit_of_work(read_only=True) as session:
        docs = session.scalar(select(func.count()).where(Document.collection_id == collection_id))
        chunks = session.scalar(select(func.count()).where(Chunk.collection_id == collection_id))
    return int(docs or 0), int(chunks or 0)


def test_a_batch_indexes_good_files_and_reports_each_bad_one(kb: int) -> None:
    files = [
        UploadedFile("refunds.md", REFUNDS),
        UploadedFile("security.html", SECURITY),
        UploadedFile("handbook.docx", make_docx()),
        UploadedFile("manual.pdf", make_pdf([["Returns are inspected on arrival."], ["Page two"]])),
        UploadedFile("locked.pdf", _encrypted_pdf()),
        UploadedFile("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog garbage"),
        UploadedFile("empty.txt", b""),
        UploadedFile("bomb.docx", _zip_bomb()),
        UploadedFile("tool.exe", b"MZ\x90\x00"),
        UploadedFile("latin.txt", bytes((i * 37 + 11) % 256 for i in range(4096))),
    ]
    steps: list[tuple[int, int, str, str]] = []
    reports = ingest_files(ML, kb, files, lambda *a: steps.append(a))
    status = {r.source: r.status for r in reports}
    assert status == {
        "refunds.md": "indexed",
        "security.html": "indexed",
        "handbook.docx": "indexed",
        "manual.pdf": "indexed",
        "locked.pdf": "failed",
        "broken.pdf": "failed",
        "empty.txt": "failed",
        "bomb.docx": "failed",
        "tool.exe": "failed",
        "latin.txt": "failed",
    }
    messages = {r.source: r.message for r in reports}
    assert "password" in messages["locked.pdf"].lower()
    assert "empty" in messages["empty.txt"]
    assert "unsafe size" in messages["bomb.docx"]
    assert "unsupported type" in messages["tool.exe"]
    assert "UTF-8" in messages["latin.txt"]
    assert steps[-1][3] == "done" and any("embedding" in s[3] for s in steps)
    indexed = [r for r in reports if r.status == "indexed"]
    assert all(r.embedded == r.chunks > 0 for r in indexed)  # a new collection reuses nothing
    # nothing half-indexed: exactly the four good documents, and their chunks, exist
    docs = {d.source: d for d in list_documents(ML, kb)}
    assert set(docs) == {"refunds.md", "security.html", "handbook.docx", "manual.pdf"}
    assert docs["manual.pdf"].pages == 2
    assert _counts(kb) == (4, sum(d.chunks for d in docs.values()))
    hit = search(ML, kb, "how many days do I have to get my money back?", k=3)
    assert hit.passages[0].source == "refunds.md" and hit.relevant
    assert hit.passages[0].section == "Refund policy"


def test_a_failure_while_writing_leaves_nothing_and_the_batch_goes_on(
    kb: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ingest_module.record
    calls = {"n": 0}

    def failing_record(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:  # after the document and its chunks were flushed
            raise OSError("disk full")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "record", failing_record)
    reports = ingest_files(
        ML, kb, [UploadedFile("refunds.md", REFUNDS), UploadedFile("security.html", SECURITY)]
    )
    assert [r.status for r in reports] == ["failed", "indexed"]
    assert "Unexpected error" in reports[0].message
    assert [d.source for d in list_documents(ML, kb)] == ["security.html"]
    result = search(ML, kb, "refund within 30 days", k=5)
    assert {p.source for p in result.passages} == {"security.html"}


def test_reingesting_replaces_chunks_and_skips_unchanged_and_duplicates(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    with unit_of_work(read_only=True) as session:
        old_ids = set(session.scalars(select(Chunk.id).where(Chunk.collection_id == kb)))
    changed = REFUNDS.replace(b"30 days", b"14 days")
    again = ingest_files(
        ML,
        kb,
        [
            UploadedFile("refunds.md", changed),
            UploadedFile("refunds.md", changed),
            UploadedFile("copy-of-refunds.md", changed),
        ],
    )
    assert [r.status for r in again] == ["replaced", "unchanged", "duplicate"]
    assert "refunds.md" in again[2].message
    with unit_of_work(read_only=True) as session:
        new_ids = set(session.scalars(select(Chunk.id).where(Chunk.collection_id == kb)))
    assert new_ids and not new_ids & old_ids  # ids are never reused
    result = search(ML, kb, "refund period days", k=3)
    texts = " ".join(p.text for p in result.passages)
    assert "14 days" in texts and "30 days" not in texts
    assert INDEXES.get_cached_ids(kb) == new_ids


def test_deleting_a_document_removes_its_chunks_and_vectors(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS), UploadedFile("sec.html", SECURITY)])
    refunds = next(d for d in list_documents(ML, kb) if d.source == "refunds.md")
    delete_document(ML, kb, refunds.id)
    assert [d.source for d in list_documents(ML, kb)] == ["sec.html"]
    result = search(ML, kb, "refund gift cards", k=5)
    assert all(p.source == "sec.html" for p in result.passages)
    with unit_of_work(read_only=True) as session:
        left = set(session.scalars(select(Chunk.id).where(Chunk.collection_id == kb)))
    assert INDEXES.get_cached_ids(kb) == left
    entries = audit(AuditFilter(actions=["rag.document.delete"]))
    assert entries and entries[0].target == f"document:{refunds.id}"


def test_filters_by_source_and_date(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS), UploadedFile("sec.html", SECURITY)])
    only = search(ML, kb, "passwords and refunds", k=5, filters=Filters(sources=("sec.html",)))
    assert only.passages and {p.source for p in only.passages} == {"sec.html"}
    past = search(ML, kb, "refunds", k=5, filters=Filters(date_to=date(2000, 1, 1)))
    assert past.passages == [] and not past.relevant


def test_another_process_loads_the_saved_index_and_rebuilds_a_damaged_one(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    expected = [p.chunk_id for p in search(ML, kb, "gift cards", k=3).passages]
    generations = sorted(p.name for p in collection_dir(kb).iterdir() if p.name.startswith("gen"))
    assert generations, "the index was saved for other processes"
    other = IndexCache()  # a second process sharing OMNI_HOME
    with unit_of_work(read_only=True) as session:
        from core.rag.models import Collection

        c = session.get(Collection, kb)
        assert c is not None
        loaded = other.get(session, kb, c.generation, c.dimension)
        assert loaded.dense.ids() == INDEXES.get_cached_ids(kb)
        # damage the saved file: the loader must rebuild from the database, not fail
        (collection_dir(kb) / f"gen-{c.generation}" / "vectors.faiss").write_bytes(b"junk")
        rebuilt = IndexCache().get(session, kb, c.generation, c.dimension)
        assert rebuilt.dense.ids() == loaded.dense.ids()
    INDEXES.forget()
    assert [p.chunk_id for p in search(ML, kb, "gift cards", k=3).passages] == expected


def test_access_follows_roles_and_refusals_are_audited(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    with pytest.raises(PermissionDenied, match="not open to your role"):
        search(COMPLIANCE, kb, "refunds")
    with pytest.raises(PermissionDenied, match=r"rag\.query"):
        search(FINANCE, kb, "refunds")
    with pytest.raises(PermissionDenied):
        ingest_files(COMPLIANCE, kb, [UploadedFile("x.md", b"# x\n\ntext")])
    denied = audit(AuditFilter(outcomes=["denied"]))
    assert {(e.actor, e.action) for e in denied} >= {
        ("cora", "rag.search"),
        ("finn", "rag.search"),
        ("cora", "rag.ingest"),
    }
    update_collection(ML, kb, roles=["ml_engineer", "compliance_officer"])
    assert search(COMPLIANCE, kb, "refunds").passages


def test_cited_answer_goes_through_the_gateway_and_is_logged(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS), UploadedFile("sec.html", SECURITY)])
    sp.script(
        "gpt-4o-mini", "You have 30 days to ask for a refund [1]. Gift cards are excluded [9]."
    )
    events = list(ask_stream(ML, kb, "How long do customers have to ask for a refund?"))
    assert events[0].retrieval is not None and events[0].retrieval.passages
    assert "".join(e.delta for e in events).strip().startswith("You have 30 days")
    answer = events[-1].answer
    assert answer is not None and answer.status == "answered"
    assert answer.cited == [1]  # [9] names no passage and is dropped
    assert answer.citations[0].source == "refunds.md"
    assert answer.cost_micros > 0 and answer.deployment == "primary"
    prompt_calls = sp.CALLS["gpt-4o-mini"]
    assert prompt_calls == 1
    LEDGER.flush()
    log = query_log(ML, kb)
    assert log[0].id == answer.query_id and log[0].status == "answered" and log[0].cited == "1"
    assert log[0].embed_ms > 0 and log[0].search_ms > 0
    rate_answer(ML, answer.query_id, 1, "spot on")
    with pytest.raises(PermissionDenied):
        rate_answer(Actor("other-ml", Role.ML_ENGINEER), answer.query_id, -1)
    with pytest.raises(ValidationError):
        rate_answer(ML, answer.query_id, 5)
    assert query_log(ML, kb)[0].rating == 1


def test_nothing_relevant_means_no_generation(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    answer = ask(ML, kb, "Who won the football world cup in 1954?")
    assert answer.status == "not_found" and "could not find" in answer.text
    assert sp.CALLS["gpt-4o-mini"] == 0
    assert query_log(ML, kb)[0].status == "not_found"


def test_a_provider_outage_is_reported_and_logged(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    sp.script("gpt-4o-mini", ProviderUnavailable("connection refused"))
    answer = ask(ML, kb, "How long do customers have to ask for a refund?")
    assert answer.status == "error" and "could not answer" in answer.error
    assert answer.passages  # the sources are still shown
    row = query_log(ML, kb)[0]
    assert row.status == "error"


def test_query_log_visibility(kb: int) -> None:
    update_collection(ML, kb, roles=["ml_engineer", "compliance_officer"])
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    ask(ML, kb, "Who won the football world cup in 1954?")
    ask(COMPLIANCE, kb, "Can gift cards be refunded?")
    assert {r.actor for r in query_log(ML, kb)} == {"mia", "cora"}  # managers see all
    assert {r.actor for r in query_log(ML, kb, mine=True)} == {"mia"}
    with unit_of_work(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(QueryLog)) == 2


def test_deleting_a_collection_removes_everything(kb: int) -> None:
    ingest_files(ML, kb, [UploadedFile("refunds.md", REFUNDS)])
    assert collection_dir(kb).exists()
    delete_collection(ML, kb)
    assert _counts(kb) == (0, 0) and not collection_dir(kb).exists()


def test_cli_ingest_search_and_eval(kb: int, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_bytes(REFUNDS)
    (docs / "notes.txt").write_bytes(b"")
    runner = CliRunner()
    result = runner.invoke(app, ["rag", "ingest", str(docs), "-c", "Policies"])
    assert result.exit_code == 1  # one file failed
    assert "INDEXED" in result.output and "FAILED" in result.output and "empty" in result.output
    result = runner.invoke(app, ["rag", "search", "gift cards refund", "-c", "Policies"])
    assert result.exit_code == 0 and "refunds.md" in result.output
    result = runner.invoke(app, ["rag", "search", "x", "-c", "No such collection"])
    assert result.exit_code == 1 and "No collection is named" in result.output

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    corpus = [
        ("d1", "Refunds", "Customers may ask for a refund within 30 days."),
        ("d2", "Passwords", "Passwords are at least twelve characters long."),
        ("d3", "Laptops", "Laptops use full-disk encryption."),
    ]
    (beir / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "title": t, "text": x}) for i, t, x in corpus)
    )
    queries = [("q1", "how long to get a refund"), ("q2", "minimum password length")]
    (beir / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": i, "text": t}) for i, t in queries)
    )
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    result = runner.invoke(app, ["rag", "eval", str(beir), "--depth", "100"])
    assert result.exit_code == 0, result.output
    rows = {line.split("|")[1].strip(): line for line in result.output.splitlines() if "|" in line}
    for method in ("lexical (BM25)", "dense (minilm)", "hybrid (zscore alpha=0.5)"):
        assert rows[method].split("|")[2].strip() == "1.0000"  # nDCG@10: both found first


def test_a_collection_can_use_openai_embeddings(kb: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The official SDK against the wire-format fake: vectors of the API's dimension are stored
    and searched; an outage fails the file with a clear error and writes nothing."""
    from core.config import reload_settings
    from core.rag.embedders import forget_embedders
    from tests.fakes import FakeOpenAI, Reply

    with FakeOpenAI() as fake:
        monkeypatch.setenv("OMNI_OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OMNI_OPENAI_BASE_URL", f"{fake.url}/v1")
        reload_settings()
        forget_embedders()
        try:
            c = create_collection(ML, "Vendor", embedding_model="openai:text-embedding-3-small")
            reports = ingest_files(ML, c.id, [UploadedFile("refunds.md", REFUNDS)])
            assert [r.status for r in reports] == ["indexed"]
            assert fake.last.path == "/v1/embeddings"
            result = search(ML, c.id, "gift cards refunded", k=2)
            assert result.passages and result.passages[0].source == "refunds.md"
            fake.script(
                Reply.error(503, message="overloaded"),
                Reply.error(503, message="overloaded"),
                Reply.error(503, message="overloaded"),
            )
            failed = ingest_files(ML, c.id, [UploadedFile("security.html", SECURITY)])
            assert failed[0].status == "failed" and failed[0].message
            assert [d.source for d in list_documents(ML, c.id)] == ["refunds.md"]
        finally:
            forget_embedders()
            monkeypatch.delenv("OMNI_OPENAI_API_KEY")
            monkeypatch.delenv("OMNI_OPENAI_BASE_URL")
            reload_settings()


@pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")
def test_cli_tunes_on_beir_and_a_collection_switches_to_the_tuned_model(
    sqlite_db: str, tmp_path: Path
) -> None:
    """`omni rag tune` registers a model in MLflow; `omni rag reembed` moves a collection onto
    it (every chunk re-embedded in one transaction); search keeps working; both are audited."""
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    topics = ["refund", "password", "laptop", "holiday", "expense", "badge", "printer", "vpn"]
    (beir / "corpus.jsonl").write_text(
        "\n".join(
            json.dumps({"_id": f"d{i}", "title": t, "text": f"Policy about the {t} process."})
            for i, t in enumerate(topics)
        )
    )
    (beir / "queries.jsonl").write_text(
        "\n".join(
            json.dumps({"_id": f"q{i}", "text": f"how does the {t} work"})
            for i, t in enumerate(topics)
        )
    )
    (beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(topics)))
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "rag",
            "tune",
            str(beir),
            "--name",
            "omni-embeddings-test",
            "--batch-size",
            "4",
            "--max-steps",
            "1",
            "--max-length",
            "32",
            "--no-evaluate",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Registered omni-embeddings-test/1" in result.output
    create_collection(ML, "Policies", roles=["ml_engineer"])
    docs = tmp_path / "refunds.md"
    docs.write_bytes(REFUNDS)
    assert runner.invoke(app, ["rag", "ingest", str(docs), "-c", "Policies"]).exit_code == 0
    result = runner.invoke(
        app, ["rag", "reembed", "-c", "Policies", "--model", "tuned:omni-embeddings-test/1"]
    )
    assert result.exit_code == 0, result.output
    [info] = list_collections(ML)
    assert info.embedding_model == "tuned:omni-embeddings-test/1"
    hit = search(ML, info.id, "gift cards refunded", k=2)
    assert hit.passages and hit.passages[0].source.endswith("refunds.md")
    actions = {e.action for e in audit(AuditFilter(actions=["rag.tune", "rag.collection.reembed"]))}
    assert actions == {"rag.tune", "rag.collection.reembed"}
    bad = runner.invoke(app, ["rag", "reembed", "-c", "Policies", "--model", "tuned:nope/9"])
    assert bad.exit_code == 1 and "Error" in bad.output
