"""PII in tabular datasets (CSV, Parquet): per-column findings on a sample, then the whole file
anonymised into a new one with a per-column action (keep, drop, or an anonymisation operator).

- The scan reads the whole file (so a malformed row anywhere is reported before anything is
  written) and looks at a uniform random sample of rows (bottom-k over the stream, seeded so the
  same file gives the same report), not just the first rows: files are often sorted.
- A column whose sampled cells are nearly all one whole identifier of one type (an e-mail column)
  is anonymised cell by cell without the NLP engine: faster, and it also covers the cells the
  engine would have missed. Free-text columns go through the engine, each distinct value once per
  chunk. File handling (limits, parsing errors, atomic output) is in `dataset_files`.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from core.audit.service import neutralise_formula, record, record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.config import get_settings
from core.db import unit_of_work
from core.errors import ConfigurationError, DomainError, ValidationError
from core.privacy.anonymize import OPERATORS, Operator, anonymize_many, anonymize_values
from core.privacy.dataset_files import (
    DatasetUpload,
    Format,
    arrow_text,
    atomic_file,
    cell_text,
    check_file,
    column_names,
    csv_chunks,
    download_name,
    frames,
    neutralised,
    open_parquet,
    output_dir,
    parquet_batches,
    sniff_delimiter,
)
from core.privacy.engine import Finding, find_pii_batch
from core.privacy.text_scan import check_scan_options

log = logging.getLogger(__name__)

ACTIONS = ("keep", "drop", *OPERATORS)
SAMPLE_ROWS = 200
PREVIEW_ROWS = 10
# A column is an identifier column when this share of its sampled non-empty cells is one
# finding of one type covering (nearly) the whole cell.
IDENTIFIER_SHARE = 0.6
WHOLE_CELL_COVER = 0.9
# Dates are flagged by the engine but are rarely personal on their own (order dates, timestamps):
# columns with only these are reported, and the suggestion is to keep them.
LOW_RISK_ENTITIES = frozenset({"DATE_TIME"})
_SHORT_NUMBER = re.compile(r"[-+]?\d{1,5}(?:[.,]\d{1,4})?")  # an amount or a count: no PII
_NLP_BATCH = 128
# (share done 0..1, what is happening) for progress bars
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class ColumnReport:
    name: str
    dtype: str
    sampled: int  # non-empty cells in the sample
    with_pii: int  # of those, cells with at least one finding
    entities: dict[str, int]  # entity type -> sampled cells holding it
    examples: tuple[str, ...]  # found values, masked (the report must not be a copy of the PII)
    whole_cell_entity: str | None  # an identifier column of this type (fast path)
    suggested: str  # keep, drop, or an operator

    @property
    def share(self) -> float:
        return self.with_pii / self.sampled if self.sampled else 0.0


@dataclass(frozen=True)
class DatasetScan:
    name: str
    format: Format
    size_bytes: int
    rows: int
    columns: tuple[str, ...]
    sampled_rows: int
    reports: list[ColumnReport]
    preview: pd.DataFrame = field(repr=False)  # the first rows, as read
    delimiter: str = ","


@dataclass(frozen=True)
class ColumnAction:
    """What happens to a column: kept, dropped, or each value anonymised by an operator. With
    `whole_cell_entity` every non-empty cell is treated as one finding of that type (no NLP)."""

    action: str = "keep"
    whole_cell_entity: str | None = None


@dataclass(frozen=True)
class AnonymisedDataset:
    path: Path
    download_name: str
    format: Format
    rows: int
    columns: tuple[str, ...]
    dropped: tuple[str, ...]
    changed_cells: dict[str, int]
    size_bytes: int
    seconds: float


# --- scanning ---------------------------------------------------------------------------------


def _mask_example(value: str) -> str:
    """The shape of a found value without its content: each run of letters or digits keeps its
    first character ("j***.s****@e******.com")."""
    masked = re.sub(r"(?<=\w)\w", "*", value.strip())
    return masked if len(masked) <= 40 else masked[:39] + "…"


def _find(
    texts: Sequence[str], entities: list[str] | None, min_score: float, language: str
) -> list[list[Finding]]:
    """The one place the dataset code calls the engine. Cells are scanned without the engine's
    is-this-English check: one foreign-language note must not stop a whole file (identifiers
    such as e-mail addresses and IBANs are still found in it; names may not be)."""
    return find_pii_batch(
        texts,
        entities=entities,
        language=language,
        min_score=min_score,
        check_text_language=False,
    )


def _findings_by_value(
    values: Sequence[str],
    entities: list[str] | None,
    min_score: float,
    language: str,
    progress: Callable[[float], None] | None = None,
) -> dict[str, list[Finding]]:
    """Findings for each distinct value worth analysing (short numbers are not)."""
    unique = [v for v in dict.fromkeys(values) if v.strip() and not _SHORT_NUMBER.fullmatch(v)]
    out: dict[str, list[Finding]] = {}
    for at in range(0, len(unique), _NLP_BATCH):
        part = unique[at : at + _NLP_BATCH]
        out.update(zip(part, _find(part, entities, min_score, language), strict=True))
        if progress is not None:
            progress(min((at + len(part)) / len(unique), 1.0))
    return out


def _whole_cell_type(value: str, found: list[Finding]) -> str | None:
    stripped = value.strip()
    if len(found) != 1 or not stripped:
        return None
    f = found[0]
    return f.entity_type if (f.end - f.start) >= WHOLE_CELL_COVER * len(stripped) else None


def _report(
    name: str, dtype: str, cells: list[str], found: Mapping[str, list[Finding]]
) -> ColumnReport:
    nonempty = [c for c in cells if c.strip()]
    entities: Counter[str] = Counter()
    whole: Counter[str] = Counter()
    examples: dict[str, None] = {}
    hits = 0
    for cell in nonempty:
        findings = found.get(cell, [])
        if not findings:
            continue
        hits += 1
        entities.update({f.entity_type for f in findings})
        kind = _whole_cell_type(cell, findings)
        if kind:
            whole[kind] += 1
        if len(examples) < 3:
            examples.setdefault(f"{findings[0].entity_type}: {_mask_example(findings[0].text)}")
    top = whole.most_common(1)
    identifier = top[0][0] if top and top[0][1] >= IDENTIFIER_SHARE * len(nonempty) else None
    suggested = "keep" if not hits or set(entities) <= LOW_RISK_ENTITIES else "replace"
    return ColumnReport(
        name, dtype, len(nonempty), hits, dict(entities.most_common()), tuple(examples),
        identifier, suggested,
    )  # fmt: skip


def _sample(
    frames: Iterator[tuple[pd.DataFrame, float]],
    k: int,
    progress: Progress | None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(uniform sample of k rows in file order, the first rows, rows in the file)."""
    rng = np.random.default_rng(20_261_126)
    sample: pd.DataFrame | None = None
    keys = np.empty(0)
    head: pd.DataFrame | None = None
    rows = 0
    for frame, share in frames:
        if head is None:
            head = frame.head(PREVIEW_ROWS).reset_index(drop=True)
        frame = frame.set_axis(pd.RangeIndex(rows, rows + len(frame)))
        rows += len(frame)
        # bottom-k: the k rows with the smallest random keys are a uniform sample of the stream
        chunk_keys = rng.random(len(frame))
        keep = np.argsort(chunk_keys)[:k]
        sample = frame.iloc[keep] if sample is None else pd.concat([sample, frame.iloc[keep]])
        keys = np.concatenate([keys, chunk_keys[keep]])
        best = np.argsort(keys)[:k]
        sample, keys = sample.iloc[best], keys[best]
        if progress is not None:
            progress(0.5 * share, f"Reading rows ({rows:,} so far)")
    if head is None or sample is None or rows == 0:
        raise ValidationError("The file has a header but no rows: there is nothing to scan.")
    return sample.sort_index(), head, rows


def scan_dataset(
    actor: Actor,
    upload: DatasetUpload,
    *,
    sample_rows: int = SAMPLE_ROWS,
    entities: Sequence[str] | None = None,
    min_score: float = 0.4,
    language: str = "en",
    progress: Progress | None = None,
) -> DatasetScan:
    """Read the whole file (checking it parses), and report PII per column on a row sample."""
    require(actor, Permission.PII_SCAN, action="privacy.dataset.scan", target=upload.name[:200])
    wanted = check_scan_options(entities, min_score)
    if not 10 <= sample_rows <= 5_000:
        raise ValidationError("The sample is between 10 and 5,000 rows.")
    _find([], wanted, float(min_score), language)  # the engine's own checks of the options
    fmt = check_file(upload)
    columns = column_names(upload, fmt)
    sample, head, rows = _sample(frames(upload, fmt), sample_rows, progress)
    cells = {c: [cell_text(v) for v in sample[c].tolist()] for c in sample.columns}
    every = [v for values in cells.values() for v in values]

    def analysing(share: float) -> None:
        if progress is not None:
            progress(0.5 + 0.5 * share, "Looking for PII in the sample")

    found = _findings_by_value(every, wanted, float(min_score), language, analysing)
    reports = [_report(str(c), str(sample[c].dtype), cells[c], found) for c in sample.columns]
    delimiter = sniff_delimiter(upload) if fmt == "csv" else ","
    with unit_of_work() as session:
        record(
            session,
            actor,
            "privacy.dataset.scan",
            f"dataset:{upload.name[:200]}",
            {
                "file": upload.name[:200],
                "format": fmt,
                "size_bytes": upload.size,
                "rows": rows,
                "sampled_rows": len(sample),
                "columns": len(columns),
                "columns_with_pii": {r.name: sorted(r.entities) for r in reports if r.with_pii},
            },
        )
    return DatasetScan(
        upload.name, fmt, upload.size, rows, tuple(columns), len(sample), reports, head, delimiter
    )


def suggested_plan(scan: DatasetScan) -> dict[str, ColumnAction]:
    """The scan's suggestion for every column (identifier columns on the fast path)."""
    return {
        r.name: ColumnAction(r.suggested, r.whole_cell_entity if r.suggested in OPERATORS else None)
        for r in scan.reports
    }


# --- anonymising ------------------------------------------------------------------------------


@dataclass
class _Run:
    """One anonymisation's settings, shared by the preview and the full run."""

    plan: dict[str, ColumnAction]
    entities: list[str] | None
    min_score: float
    language: str
    changed: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        # an unsupported language or an unknown entity type fails now, not after rows are written
        if any(a.action in OPERATORS and not a.whole_cell_entity for a in self.plan.values()):
            _find([], self.entities, self.min_score, self.language)

    def transform(self, column: str, values: list[str | None]) -> list[str | None]:
        """One column's values (None or "" for empty, left as they are) anonymised."""
        action = self.plan[column]
        op = cast(Operator, action.action)
        at = [i for i, v in enumerate(values) if v and v.strip()]
        texts = [cast(str, values[i]) for i in at]
        if action.whole_cell_entity:
            new = anonymize_values(texts, op, action.whole_cell_entity)
        else:
            found = _findings_by_value(texts, self.entities, self.min_score, self.language)
            per_cell = [found.get(t, []) for t in texts]
            # per cell, not per distinct value: encryption must not make equal cells look equal
            new = anonymize_many(texts, per_cell, op)
        out = list(values)
        for i, text, value in zip(at, texts, new, strict=True):
            if value != text:
                out[i] = value
                self.changed[column] += 1
        return out


def _check_plan(
    plan: Mapping[str, ColumnAction | str], columns: Sequence[str]
) -> dict[str, ColumnAction]:
    actions = {
        k: v if isinstance(v, ColumnAction) else ColumnAction(str(v)) for k, v in plan.items()
    }
    unknown = [c for c in actions if c not in columns]
    if unknown:
        listed = ", ".join(f"'{c[:40]}'" for c in columns[:20])
        raise ValidationError(
            f"The file has no column '{unknown[0][:60]}'. Its columns: {listed}"
            + (" …" if len(columns) > 20 else "")
        )
    for name, a in actions.items():
        if a.action not in ACTIONS:
            raise ValidationError(
                f"Unknown action {a.action[:30]!r} for column '{name[:60]}': use one of "
                f"{', '.join(ACTIONS)}."
            )
        if a.whole_cell_entity is not None and not re.fullmatch(
            r"[A-Z][A-Z0-9_]{1,39}", a.whole_cell_entity
        ):
            raise ValidationError(f"{a.whole_cell_entity[:40]!r} is not an entity type.")
    full = {c: actions.get(c, ColumnAction("keep")) for c in columns}
    if all(a.action == "drop" for a in full.values()):
        raise ValidationError("Every column would be dropped: keep or anonymise at least one.")
    operators = {a.action for a in full.values() if a.action in OPERATORS}
    if "hash" in operators and get_settings().pii_hash_salt is None:
        raise ConfigurationError(
            "Hashing a dataset needs OMNI_PII_HASH_SALT (16 bytes or more) so that equal values "
            "get equal hashes and the columns can still be joined. Set it, or choose replace or "
            "mask."
        )
    for op in operators:  # a missing or bad key or salt fails now, before any row is read
        anonymize_values([], op, "PII")
    return full


def preview_anonymisation(
    actor: Actor,
    scan: DatasetScan,
    plan: Mapping[str, ColumnAction | str],
    *,
    entities: Sequence[str] | None = None,
    min_score: float = 0.4,
    language: str = "en",
) -> pd.DataFrame:
    """The scan's first rows as the full run would write them (not audited: it shows nothing the
    scan, which is audited, did not already show)."""
    require(actor, Permission.PII_SCAN, action="privacy.dataset.preview", target=scan.name[:200])
    full = _check_plan(plan, scan.columns)
    run = _Run(full, check_scan_options(entities, min_score), float(min_score), language)
    out = pd.DataFrame(index=scan.preview.index)
    for column in scan.columns:
        action = full[column]
        if action.action == "drop":
            continue
        if action.action == "keep":
            out[column] = scan.preview[column]
        else:
            values: list[str | None] = [cell_text(v) for v in scan.preview[column].tolist()]
            out[column] = run.transform(column, values)
    return out


def _write_csv(
    upload: DatasetUpload, run: _Run, target: Path, neutralise: bool, progress: Progress | None
) -> int:
    delimiter = sniff_delimiter(upload)
    rows = 0
    with target.open("w", encoding="utf-8", newline="") as out:
        for frame, share in csv_chunks(upload, delimiter):
            result = pd.DataFrame(index=frame.index)
            for column, action in run.plan.items():
                if action.action == "keep":
                    result[column] = frame[column]
                elif action.action != "drop":
                    result[column] = run.transform(column, frame[column].tolist())
            if neutralise:
                result = neutralised(result)
            result.to_csv(out, sep=delimiter, index=False, header=rows == 0, lineterminator="\n")
            rows += len(frame)
            if progress is not None:
                progress(share, f"{rows:,} rows anonymised")
    return rows


def _write_parquet(
    upload: DatasetUpload, run: _Run, target: Path, progress: Progress | None
) -> int:

    rows = 0
    with upload.open() as fh:
        schema = open_parquet(upload, fh).schema_arrow
        fields = []
        for column, action in run.plan.items():
            source = schema.field(column)
            if action.action == "keep":
                fields.append(source)
            elif action.action != "drop":
                kind = (
                    source.type.value_type if pa.types.is_dictionary(source.type) else source.type
                )
                if (
                    pa.types.is_nested(kind)
                    or pa.types.is_binary(kind)
                    or pa.types.is_large_binary(kind)
                ):
                    raise ValidationError(
                        f"Column '{column[:60]}' holds {kind} values, which cannot be anonymised "
                        "as text: keep or drop it."
                    )
                fields.append(pa.field(column, pa.string()))
        out_schema = pa.schema(fields)  # without pandas metadata: it would describe old types
        fh.seek(0)
        with pq.ParquetWriter(str(target), out_schema) as writer:
            for batch, share in parquet_batches(upload, fh):
                arrays = []
                for f in fields:
                    if run.plan[f.name].action == "keep":
                        arrays.append(batch.column(f.name))
                    else:
                        values = run.transform(f.name, arrow_text(batch.column(f.name)))
                        arrays.append(pa.array(values, type=pa.string()))
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=out_schema))
                rows += batch.num_rows
                if progress is not None:
                    progress(share, f"{rows:,} rows anonymised")
    return rows


def anonymise_dataset(
    actor: Actor,
    upload: DatasetUpload,
    plan: Mapping[str, ColumnAction | str],
    *,
    entities: Sequence[str] | None = None,
    min_score: float = 0.4,
    language: str = "en",
    neutralise_formulas: bool = True,
    out_dir: Path | None = None,
    progress: Progress | None = None,
) -> AnonymisedDataset:
    """Write the whole file, anonymised column by column, to a new file of the same format.

    Columns the plan does not name are kept. `neutralise_formulas` (CSV only) puts an apostrophe
    before any cell a spreadsheet would run as a formula, as the audit export does."""
    target_name = upload.name[:200]
    require(actor, Permission.PII_SCAN, action="privacy.dataset.anonymise", target=target_name)
    started = time.monotonic()
    try:
        wanted = check_scan_options(entities, min_score)
        fmt = check_file(upload)
        run = _Run(_check_plan(plan, column_names(upload, fmt)), wanted, float(min_score), language)
        download = download_name(upload.name, fmt)
        final = output_dir(out_dir) / f"{uuid.uuid4().hex[:12]}-{download}"
        with atomic_file(final) as part:
            if fmt == "csv":
                rows = _write_csv(upload, run, part, neutralise_formulas, progress)
            else:
                rows = _write_parquet(upload, run, part, progress)
            if rows == 0:
                raise ValidationError("The file has a header but no rows: nothing to anonymise.")
    except DomainError as exc:
        record_now(
            actor, "privacy.dataset.anonymise", f"dataset:{target_name}",
            {"file": target_name, "error": type(exc).__name__}, outcome="failed",
        )  # fmt: skip
        raise
    except Exception as exc:
        log.exception("anonymising %s failed", target_name)
        record_now(
            actor, "privacy.dataset.anonymise", f"dataset:{target_name}",
            {"file": target_name, "error": type(exc).__name__}, outcome="failed",
        )  # fmt: skip
        raise DomainError(
            f"Anonymising '{target_name[:80]}' failed unexpectedly ({type(exc).__name__}); no "
            "output was written. The details are in the server log."
        ) from exc
    kept = tuple(c for c, a in run.plan.items() if a.action != "drop")
    dropped = tuple(c for c, a in run.plan.items() if a.action == "drop")
    result = AnonymisedDataset(
        final, download, fmt, rows, kept, dropped, dict(run.changed), final.stat().st_size,
        round(time.monotonic() - started, 3),
    )  # fmt: skip
    with unit_of_work() as session:
        record(
            session,
            actor,
            "privacy.dataset.anonymise",
            f"dataset:{target_name}",
            {
                "file": target_name,
                "format": fmt,
                "size_bytes": upload.size,
                "rows": rows,
                "output": download,
                "output_bytes": result.size_bytes,
                "actions": {c: a.action for c, a in run.plan.items() if a.action != "keep"},
                "changed_cells": result.changed_cells,
            },
        )
    return result


def findings_csv(scan: DatasetScan) -> str:
    """The scan's per-column report as CSV; cells a spreadsheet would run as formulas (a column
    named "=HYPERLINK(...)") are neutralised like the audit export's."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["column", "type", "sampled", "with_pii", "share", "entities", "examples", "identifier",
         "suggested"]
    )  # fmt: skip
    for r in scan.reports:
        row = [
            r.name, r.dtype, r.sampled, r.with_pii, f"{r.share:.3f}",
            "; ".join(f"{k} ({v})" for k, v in r.entities.items()), " | ".join(r.examples),
            r.whole_cell_entity or "", r.suggested,
        ]  # fmt: skip
        writer.writerow([neutralise_formula(str(v)) for v in row])
    return buffer.getvalue()
