"""The issue's "done when", as one compliance officer's afternoon: a subject goes from consent
review through an access request and an erasure request to the certificate, every step is in the
audit log (and the chain still verifies), and a CSV file is anonymised."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import timedelta

from sqlalchemy import insert, select

from core.audit.service import AuditFilter, query
from core.audit.verify import verify_chain
from core.auth.actor import Actor
from core.auth.roles import Role
from core.clock import utcnow
from core.db import unit_of_work
from core.llm.models import LLMUsage
from core.privacy.consent import consent_state, record_consent
from core.privacy.consent_review import apply_bulk, preview_bulk, review_queue
from core.privacy.dataset_files import DatasetUpload
from core.privacy.datasets import anonymise_dataset, scan_dataset, suggested_plan
from core.privacy.erasure import get_certificate, run_erasure, verify_certificate
from core.privacy.export import export_request
from core.privacy.models import DataSubject
from core.privacy.purposes import save_purpose
from core.privacy.requests import close_request, open_request, verify_identity
from core.privacy.subjects import register_subject
from tests.helpers import make_user

OFFICER = Actor("carla", Role.COMPLIANCE_OFFICER)


def _usage(end_user: str) -> dict[str, object]:
    return {
        "ts": utcnow() - timedelta(days=2),
        "request_id": uuid.uuid4().hex,
        "actor": "svc-support-bot",
        "team": "support",
        "end_user": end_user,
        "alias": "chat",
        "deployment": "openai-gpt-4o-mini",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "input_tokens": 120,
        "output_tokens": 40,
        "cost_micros": 90,
        "prompt_redacted": "Where is my order? <EMAIL>",
    }


def test_consent_review_access_erasure_certificate_and_a_csv(sqlite_db: str) -> None:
    make_user("carla", Role.COMPLIANCE_OFFICER)
    save_purpose(
        OFFICER, "marketing", name="Marketing e-mails", lawful_basis="consent",
        notice_version="v1", create=True,
    )  # fmt: skip
    subject = register_subject(
        OFFICER, email="ana.novak@example.si", full_name="Ana Novak", country="SI",
        external_ref="u-42",
    )  # fmt: skip
    with unit_of_work() as session:
        session.execute(insert(LLMUsage), [_usage("u-42"), _usage("u-42"), _usage("u-7")])

    # 1. consent review: given without proof -> queued -> expired in bulk after a preview
    record_consent(OFFICER, subject.id, "marketing", "given", ts=utcnow() - timedelta(days=30))
    assert [i.reasons for i in review_queue(OFFICER)] == [("missing_proof",)]
    keys = [(subject.id, "marketing")]
    preview = preview_bulk(OFFICER, "expire", keys)
    assert apply_bulk(OFFICER, "expire", keys, preview.token) == 1
    assert consent_state(OFFICER, subject.id)[0].status == "expired"

    # 2. access request: open, verify, export (everything held, in JSON and CSV), close
    access = open_request(OFFICER, subject_id=subject.id, kind="access", assignee="carla")
    verify_identity(OFFICER, access.reference, method="email_link")
    export = export_request(OFFICER, access.reference)
    with zipfile.ZipFile(export.path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        usage_csv = next(n for n in names if n.endswith(".csv") and "llm" in n)
        rows = list(csv.DictReader(io.StringIO(archive.read(usage_csv).decode("utf-8"))))
    assert len(rows) == 2  # the subject's ledger rows, not the other end user's
    assert manifest["counts"]["profile"] == 1
    close_request(OFFICER, access.reference, "Export sent by e-mail link.")

    # 3. erasure request: runs across every source, ends with a certificate that verifies
    erasure = open_request(OFFICER, subject_id=subject.id, kind="erasure")
    verify_identity(OFFICER, erasure.reference, method="account_login")
    status = run_erasure(OFFICER, erasure.reference)
    assert status.done == status.total and status.certificate is not None
    certificate = get_certificate(OFFICER, erasure.reference)
    assert verify_certificate(certificate)
    retained = {s["source"] for s in certificate["sources"] if s["action"] == "retained"}
    assert "consent" in retained  # proof of consent is kept, with its reason
    with unit_of_work() as session:
        erased = session.get(DataSubject, subject.id)
        assert erased is not None and erased.erased_at is not None
        assert "novak" not in erased.email and erased.full_name != "Ana Novak"
        left = session.scalars(select(LLMUsage.end_user)).all()
    assert sorted(v or "" for v in left) == ["", "", "u-7"]

    # 4. every step is in the audit log, and the chain verifies
    with unit_of_work() as session:
        actions = [e.action for e in query(session, AuditFilter())]
        assert verify_chain(session).ok
    for step in (
        "privacy.consent.bulk_expire",
        "privacy.request.open",
        "privacy.request.verify",
        "privacy.request.export",
        "privacy.request.close",
    ):
        assert step in actions, step
    erasure_steps = [a for a in actions if a == "privacy.request.erase_step"]
    assert len(erasure_steps) == status.total  # one entry per data source
    assert "privacy.request.certificate" in actions

    # 5. anonymise a CSV with the suggested plan: identifiers gone, other text kept
    data = (
        b"id,email,note\n"
        b"1,ana.novak@example.si,Call Ana Novak on +386 41 123 456\n"
        b"2,john@example.com,No personal data here\n"
    )
    upload = DatasetUpload("customers.csv", data)
    scan = scan_dataset(OFFICER, upload)
    by_column = {r.name: r for r in scan.reports}
    assert by_column["email"].whole_cell_entity == "EMAIL_ADDRESS"
    assert by_column["id"].suggested == "keep"
    result = anonymise_dataset(OFFICER, upload, suggested_plan(scan))
    out = result.path.read_text(encoding="utf-8")
    assert "ana.novak@example.si" not in out and "+386 41 123 456" not in out
    assert "No personal data here" in out
