"""Access and portability exports: everything held about a subject, from every registered data
source, in one zip (GDPR Arts. 15 and 20, CCPA right to know).

The zip holds `manifest.json` (subject, request, when, by whom, per-source record counts and the
SHA-256 of every other file), one JSON and one CSV file per source (CSV rows flattened, cells
that a spreadsheet would run as a formula neutralised) and a `README.txt` for the subject. It is
written under `$OMNI_HOME/privacy/exports/<reference>.zip` through a temporary file and an
atomic rename, so a crash never leaves a truncated zip under the final name; its SHA-256 is
stored on the request, and every download checks it.

The exports are copies of personal data, so this module also registers them as a data source:
an erasure deletes the subject's earlier exports.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.service import neutralise_formula, record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.config import get_settings
from core.db import unit_of_work
from core.errors import IntegrityError, NotFound, ValidationError
from core.privacy import deadlines
from core.privacy.models import DataRequest, DataSubject
from core.privacy.requests import load_request, normalise_reference, require_open
from core.privacy.sources import (
    DataSource,
    ErasureOutcome,
    acting_as,
    prepare,
    register_source,
    registered_sources,
)
from core.privacy.subjects import load_subject

FORMAT_VERSION = 1
README = """Your personal data
==================

Request: {reference} ({kind}, {regime})
Generated: {generated_at} (UTC)

This archive contains everything held about you across our systems, one pair of files per
data source:

{sources}
- data/<source>.json: the records as JSON (structured, machine-readable; GDPR Art. 20).
- data/<source>.csv: the same records as a table (nested fields flattened, lists as JSON).
- manifest.json: what is in the archive, with a SHA-256 checksum of every file.

Questions about this export: reply to the message it came with, quoting {reference}.
"""


@dataclass(frozen=True)
class ExportInfo:
    reference: str
    path: Path
    file_name: str
    sha256: str
    size_bytes: int
    counts: dict[str, int]
    generated_at: datetime


def exports_dir() -> Path:
    return get_settings().home / "privacy" / "exports"


def export_path(reference: str) -> Path:
    return exports_dir() / f"{normalise_reference(reference)}.zip"


# --- building ----------------------------------------------------------------------------------


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, list | tuple):
            out[name] = json.dumps(value, ensure_ascii=False, default=str)
        else:
            out[name] = value
    return out


def to_csv(records: list[dict[str, Any]]) -> str:
    """One row per record; columns in first-seen order; formula cells neutralised."""
    rows = [_flatten(r) for r in records]
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(columns))
    for row in rows:
        cells = ["" if row.get(c) is None else str(row.get(c)) for c in columns]
        writer.writerow([neutralise_formula(cell) for cell in cells])
    return buffer.getvalue()


def _dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n"


def _files(
    sources: list[DataSource],
    data: dict[str, list[dict[str, Any]]],
    request: DataRequest,
    subject: DataSubject,
    actor: Actor,
    generated_at: datetime,
) -> dict[str, bytes]:
    """Every member of the archive by name, the manifest last (it lists the others' hashes)."""
    kind = deadlines.get_kind(request.kind)
    files: dict[str, bytes] = {}
    for s in sources:
        files[f"data/{s.name}.json"] = _dumps(data[s.name]).encode("utf-8")
        files[f"data/{s.name}.csv"] = to_csv(data[s.name]).encode("utf-8")
    listing = "\n".join(f"- {s.label} ({s.name}): {s.description}" for s in sources)
    files["README.txt"] = README.format(
        reference=request.reference,
        kind=kind.label,
        regime=request.regime,
        generated_at=generated_at.isoformat(timespec="seconds"),
        sources=listing,
    ).encode("utf-8")
    manifest = {
        "format": "omni-dsr-export",
        "version": FORMAT_VERSION,
        "generated_at": generated_at.isoformat(),
        "generated_by": actor.username,
        "request": {
            "reference": request.reference,
            "kind": request.kind,
            "regime": request.regime,
            "received_at": request.received_at.isoformat(),
            "due_at": request.due_at.isoformat(),
        },
        "subject": {
            "id": subject.id,
            "organisation_id": subject.organisation_id,
            "external_ref": subject.external_ref,
            "email": subject.email,
            "full_name": subject.full_name,
        },
        "sources": [
            {
                "name": s.name,
                "label": s.label,
                "description": s.description,
                "records": len(data[s.name]),
                "files": [f"data/{s.name}.json", f"data/{s.name}.csv"],
            }
            for s in sources
        ],
        "counts": {s.name: len(data[s.name]) for s in sources},
        "sha256": {name: hashlib.sha256(blob).hexdigest() for name, blob in files.items()},
    }
    files["manifest.json"] = _dumps(manifest).encode("utf-8")
    return files


def _write_zip(path: Path, files: dict[str, bytes], when: datetime) -> tuple[str, int]:
    """Write atomically (temporary file, fsync, rename); the zip's SHA-256 and size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = when.timetuple()[:6]
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
                for name in ("manifest.json", "README.txt", *sorted(files)):
                    if name in archive.NameToInfo:
                        continue
                    info = zipfile.ZipInfo(name, date_time=stamp)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, files[name])
            handle.flush()
            os.fsync(handle.fileno())
        digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
        size = tmp.stat().st_size
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest, size


def _check_exportable(request: DataRequest) -> None:
    require_open(request)
    kind = deadlines.get_kind(request.kind)
    if not kind.exports:
        exporting = ", ".join(k.key for k in deadlines.KINDS.values() if k.exports)
        raise ValidationError(
            f"{request.reference} is a request for {kind.label.lower()}; exports answer "
            f"{exporting}."
        )
    if request.verified_at is None:
        raise ValidationError(
            f"Verify the requester's identity before exporting {request.reference}: an export "
            "sent to the wrong person would be a data breach."
        )


def export_request(actor: Actor, reference: str) -> ExportInfo:
    """Build (or rebuild) the request's export and store its checksum on the request."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.export", target=ref)
    sources = registered_sources()
    with unit_of_work(read_only=True) as session:
        request = load_request(session, ref)
        _check_exportable(request)
        subject_id = request.subject_id
    for source in sources:
        prepare(source, subject_id, erasing=False)
    generated_at = utcnow()
    with unit_of_work(read_only=True) as session:
        request = load_request(session, ref)
        _check_exportable(request)
        subject = load_subject(session, request.subject_id)
        with acting_as(actor):  # sources may withhold what the actor may not read
            data = {s.name: s.collect(session, subject) for s in sources}
        files = _files(sources, data, request, subject, actor, generated_at)
    path = export_path(ref)
    digest, size = _write_zip(path, files, generated_at)
    counts = {s.name: len(data[s.name]) for s in sources}
    try:
        with unit_of_work() as session:
            request = load_request(session, ref, for_update=True)
            _check_exportable(request)  # closed or changed meanwhile: do not hand it out
            request.export_sha256 = digest
            if request.status == "verified":
                request.status = "in_progress"
            request.updated_at = utcnow()
            record(
                session,
                actor,
                "privacy.request.export",
                ref,
                {"sha256": digest, "bytes": size, "records": counts},
            )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ExportInfo(ref, path, path.name, digest, size, counts, generated_at)


def read_export(actor: Actor, reference: str) -> tuple[str, bytes]:
    """The export's file name and bytes, checked against the stored checksum; audited, since
    the bytes leave the system."""
    ref = normalise_reference(reference)
    require(actor, Permission.DSR_MANAGE, action="privacy.request.download", target=ref)
    with unit_of_work() as session:
        request = load_request(session, ref)
        path = export_path(ref)
        if request.export_sha256 is None or not path.exists():
            raise NotFound(f"{ref} has no export yet: build it first.")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != request.export_sha256:
            raise IntegrityError(
                f"The export file of {ref} does not match the checksum stored when it was built "
                "(changed or damaged on disk): build it again."
            )
        record(session, actor, "privacy.request.download", ref, {"sha256": request.export_sha256})
    return path.name, blob


# --- the exports as a data source ---------------------------------------------------------------


def _subject_references(session: Session, subject: DataSubject) -> list[str]:
    return list(
        session.scalars(select(DataRequest.reference).where(DataRequest.subject_id == subject.id))
    )


@register_source(order=50)
class ExportFilesSource:
    name = "exports"
    label = "Access exports"
    description = "Zip files built for the subject's earlier access or portability requests."

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        out = []
        for ref in _subject_references(session, subject):
            path = export_path(ref)
            if path.exists():
                out.append({"reference": ref, "file": path.name, "bytes": path.stat().st_size})
        return out

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        # Deleting a file cannot be rolled back, but it is idempotent: a rerun finds none.
        removed = 0
        for ref in _subject_references(session, subject):
            path = export_path(ref)
            if path.exists():
                path.unlink()
                removed += 1
        if not removed:
            return ErasureOutcome("none", 0, "No export files were held.")
        return ErasureOutcome(
            "deleted", removed, "Copies of the subject's data made for earlier access requests."
        )
