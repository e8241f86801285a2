"""Reading and writing the dataset files the PII tools take (CSV, Parquet), safely.

- Checks before any parsing: a known extension, not empty, under OMNI_PII_MAX_FILE_MB, and
  content that matches the name (a Parquet header; no binary data in a CSV).
- CSV is read as UTF-8 text throughout, in chunks: a value such as "0101006500006" keeps its
  leading zero, and a kept column comes out as it went in. The delimiter is sniffed (European
  files often use ";"). Malformed rows, bad quoting and other encodings get a clear error.
- Parquet is read by record batch; memory stays bounded by the chunk, not the file.
- Output goes to a temporary file renamed into place, so a failure or a cancelled run never
  leaves a half-written file under the final name; CSV cells a spreadsheet would run as formulas
  are neutralised with the audit export's helper.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, cast

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from core.audit.service import neutralise_formula
from core.clock import epoch_seconds
from core.config import get_settings
from core.errors import DomainError, ValidationError

Format = Literal["csv", "parquet"]
EXTENSIONS: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CHUNK_ROWS = 5_000
KEEP_OUTPUT_HOURS = 24
_NUMBER = re.compile(r"[-+]?(?:\d+[.,]?\d*|[.,]\d+)(?:[eE][-+]?\d+)?")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class DatasetUpload:
    """A dataset to scan or anonymise: the bytes of an upload, or a file on disk."""

    name: str
    data: bytes | Path

    @property
    def size(self) -> int:
        return self.data.stat().st_size if isinstance(self.data, Path) else len(self.data)

    def open(self) -> IO[bytes]:
        return self.data.open("rb") if isinstance(self.data, Path) else io.BytesIO(self.data)


def format_of(upload: DatasetUpload) -> Format:
    suffix = Path(upload.name).suffix.lower()
    fmt = EXTENSIONS.get(suffix)
    if fmt is None:
        raise ValidationError(
            f"'{upload.name[:80]}' is not a dataset the scanner reads: upload a .csv or .parquet "
            "file (export spreadsheets as CSV, UTF-8)."
        )
    return fmt


def check_file(upload: DatasetUpload) -> Format:
    fmt = format_of(upload)
    size = upload.size
    limit_mb = get_settings().pii_max_file_mb
    if size == 0:
        raise ValidationError(f"'{upload.name[:80]}' is empty: there is nothing to scan.")
    if size > limit_mb * 1024 * 1024:
        raise ValidationError(
            f"'{upload.name[:80]}' is {size / 1024 / 1024:,.1f} MB; datasets up to {limit_mb:,} MB "
            "are accepted (OMNI_PII_MAX_FILE_MB). Split the file or drop unneeded columns first."
        )
    with upload.open() as fh:
        head = fh.read(65_536)
    if fmt == "parquet" and not head.startswith(b"PAR1"):
        raise ValidationError(
            f"'{upload.name[:80]}' is not a Parquet file (no Parquet header): if it is CSV, name "
            "it .csv."
        )
    if fmt == "csv" and (b"\x00" in head or head.startswith(b"PAR1")):
        raise ValidationError(
            f"'{upload.name[:80]}' holds binary data, not CSV text (is it an Excel, Parquet or "
            "UTF-16 file?). Export it as CSV with UTF-8 encoding."
        )
    return fmt


def sniff_delimiter(upload: DatasetUpload) -> str:
    with upload.open() as fh:
        head = fh.read(65_536).decode("utf-8-sig", errors="ignore")
    lines = head.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:  # one column, or too little text to tell: the standard comma
        return ","


def _csv_error(upload: DatasetUpload, exc: Exception) -> ValidationError:
    if isinstance(exc, UnicodeDecodeError):
        # (exc.start counts from pandas' read buffer, not the file: no position is given)
        return ValidationError(
            f"'{upload.name[:80]}' is not UTF-8 text (it holds bytes of another encoding, such "
            "as Windows-1250 or Latin-1). Save it as CSV UTF-8 and upload it again."
        )
    detail = str(exc).replace("Error tokenizing data. C error: ", "").strip()
    return ValidationError(
        f"'{upload.name[:80]}' is not well-formed CSV: {detail[:200]}. Check the quoting and "
        "that every row has as many fields as the header."
    )


def csv_header(upload: DatasetUpload, delimiter: str) -> list[str]:
    """The column names as the chunk reader will name them (an empty name becomes "Unnamed: 3"),
    after checking the raw header has no name twice (pandas would rename the second one)."""
    try:
        with upload.open() as fh:
            raw = pd.read_csv(
                fh, sep=delimiter, header=None, nrows=1, dtype=str, na_filter=False,
                encoding="utf-8-sig",
            )  # fmt: skip
        _check_unique(upload, [str(v) for v in raw.iloc[0].tolist() if str(v)])
        with upload.open() as fh:
            named = pd.read_csv(fh, sep=delimiter, nrows=0, dtype=str, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise ValidationError(f"'{upload.name[:80]}' has no header row: nothing to scan.") from None
    except (ValueError, pd.errors.ParserError) as exc:
        raise _csv_error(upload, exc) from exc
    return [str(c) for c in named.columns]


def _check_unique(upload: DatasetUpload, names: Sequence[str]) -> None:
    twice = [n for n, count in Counter(names).items() if count > 1]
    if twice:
        raise ValidationError(
            f"'{upload.name[:80]}' has the column '{twice[0][:60]}' more than once: column names "
            "must be unique so that each gets its own action."
        )


def csv_chunks(upload: DatasetUpload, delimiter: str) -> Iterator[tuple[pd.DataFrame, float]]:
    """DataFrames of text cells ("" for empty) and the share of the file read so far."""
    size = max(upload.size, 1)
    with upload.open() as fh:
        try:
            reader = pd.read_csv(
                fh, sep=delimiter, dtype=str, na_filter=False, encoding="utf-8-sig",
                chunksize=CHUNK_ROWS,
            )  # fmt: skip
            for frame in reader:
                yield frame, min(fh.tell() / size, 1.0)
        except (ValueError, pd.errors.ParserError) as exc:
            raise _csv_error(upload, exc) from exc


def open_parquet(upload: DatasetUpload, fh: IO[bytes]) -> Any:

    try:
        return pq.ParquetFile(fh)
    except Exception as exc:  # ArrowInvalid, OSError: a damaged or truncated file
        raise ValidationError(
            f"'{upload.name[:80]}' is not a readable Parquet file ({str(exc)[:120]})."
        ) from exc


def parquet_batches(upload: DatasetUpload, fh: IO[bytes]) -> Iterator[tuple[Any, float]]:
    pf = open_parquet(upload, fh)
    total = max(int(pf.metadata.num_rows), 1)
    done = 0
    try:
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            done += batch.num_rows
            yield batch, min(done / total, 1.0)
    except DomainError:
        raise
    except Exception as exc:  # a damaged page deep in the file
        raise ValidationError(
            f"'{upload.name[:80]}' is damaged after row {done:,} ({str(exc)[:120]})."
        ) from exc


def frames(upload: DatasetUpload, fmt: Format) -> Iterator[tuple[pd.DataFrame, float]]:
    if fmt == "csv":
        yield from csv_chunks(upload, sniff_delimiter(upload))
        return
    with upload.open() as fh:
        for batch, share in parquet_batches(upload, fh):
            yield batch.to_pandas(), share


def column_names(upload: DatasetUpload, fmt: Format) -> list[str]:
    if fmt == "csv":
        return csv_header(upload, sniff_delimiter(upload))
    with upload.open() as fh:
        names = [str(n) for n in open_parquet(upload, fh).schema_arrow.names]
    _check_unique(upload, names)
    return names


def cell_text(value: object) -> str:
    if value is None or value is pd.NaT or value is pd.NA or isinstance(value, bytes | bytearray):
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _neutralise(cell: str) -> str:
    # numbers stay numbers; anything else a spreadsheet would run as a formula gets an apostrophe
    return cell if _NUMBER.fullmatch(cell) else neutralise_formula(cell)


def neutralised(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (text cells) with formula-like cells and column names neutralised; only cells
    starting with a formula character go through the helper (a vectorised pre-filter)."""
    out = frame.rename(columns=lambda c: _neutralise(str(c)))
    for column in out.columns:
        cells = out[column].astype("object")
        first = cells.map(lambda v: v[:1] if isinstance(v, str) else "")
        risky = first.isin(_FORMULA_STARTS)
        if risky.any():
            cells.loc[risky] = cells.loc[risky].map(_neutralise)
            out[column] = cells
    return out


def output_dir(chosen: Path | None = None) -> Path:
    """`chosen`, or the console's folder for anonymised files (pruned of old ones)."""
    if chosen is not None:
        chosen.mkdir(parents=True, exist_ok=True)
        return chosen
    folder = get_settings().ensure_home() / "privacy" / "anonymised"
    folder.mkdir(parents=True, exist_ok=True)
    # anonymised files are downloads, not an archive: older ones are removed
    cutoff = epoch_seconds() - KEEP_OUTPUT_HOURS * 3600
    for old in folder.iterdir():
        if old.is_file() and old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)
    return folder


@contextmanager
def atomic_file(final: Path) -> Iterator[Path]:
    """A temporary path to write; renamed to `final` when the block succeeds, removed if not."""
    part = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield part
        os.replace(part, final)
    finally:
        part.unlink(missing_ok=True)


def arrow_text(column: Any) -> list[str | None]:
    """An Arrow column's values as text (None for null), for anonymising it as text."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return cast(list[str | None], pc.cast(column, pa.string()).to_pylist())


def download_name(name: str, fmt: Format) -> str:
    stem = re.sub(r"[^\w.-]+", "_", Path(name).stem).strip("._")[:80] or "dataset"
    return f"{stem}-anonymised{'.csv' if fmt == 'csv' else '.parquet'}"
