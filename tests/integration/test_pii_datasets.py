"""Datasets through the real PII engine: per-column findings on a sample, the whole file
anonymised into a new CSV or Parquet file, and clear errors for every kind of bad file."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.roles import Role
from core.config import reload_settings
from core.db import dispose_engines, unit_of_work
from core.errors import ConfigurationError, PermissionDenied, ValidationError
from core.privacy import dataset_files
from core.privacy.anonymize import anonymize_text, decrypt_value
from core.privacy.dataset_files import DatasetUpload
from core.privacy.datasets import (
    ColumnAction,
    anonymise_dataset,
    findings_csv,
    preview_anonymisation,
    scan_dataset,
    suggested_plan,
)
from core.privacy.engine import Finding
from core.schema import upgrade
from tests.conftest import use_home
from tests.helpers import ADMIN

OFFICER = Actor("ds-officer", Role.COMPLIANCE_OFFICER)
FINANCE = Actor("ds-finance", Role.FINANCE)
SALT = "tenant-salt-0001-of-the-demo"
KEY = "0123456789abcdef"
PEOPLE = ["Peter Parker", "Maria Novak", "John Smith", "Anna Kowalski"]


def customers_csv(rows: int = 40, sep: str = ",") -> bytes:
    lines = [sep.join(["id", "email", "emso", "note", "amount", "created"])]
    for i in range(rows):
        person = PEOPLE[i % len(PEOPLE)]
        note = f'"Call {person} about order {i}"'
        email = f"user{i % 25}@example.com"
        lines.append(
            sep.join([f"{i:04d}", email, "0101006500006", note, f"{i * 1.5}", "2024-01-02"])
        )
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("pii-datasets")
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, path)
        upgrade()
    yield path
    dispose_engines()


@pytest.fixture(autouse=True)
def _settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    use_home(monkeypatch, home)
    monkeypatch.delenv("OMNI_PII_HASH_SALT", raising=False)
    monkeypatch.delenv("OMNI_PII_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("OMNI_PII_MAX_FILE_MB", raising=False)
    reload_settings()
    yield monkeypatch
    reload_settings()


@pytest.fixture(scope="module")
def scan(home: Path) -> object:
    with pytest.MonkeyPatch.context() as mp:
        use_home(mp, home)
        return scan_dataset(OFFICER, DatasetUpload("customers.csv", customers_csv()))


def _audit(action: str) -> list[dict[str, object]]:
    with unit_of_work(read_only=True) as session:
        entries = query(session, AuditFilter(actions=[action]))
        return [{"outcome": e.outcome, "summary": json.loads(e.summary)} for e in entries]


def _read_csv(path: Path, sep: str = ",") -> pd.DataFrame:
    return pd.read_csv(path, sep=sep, dtype=str, na_filter=False)


def test_scan_reports_each_column_on_a_sample(scan) -> None:  # type: ignore[no-untyped-def]
    assert scan.rows == 40 and scan.sampled_rows == 40 and scan.format == "csv"
    by = {r.name: r for r in scan.reports}
    assert by["email"].whole_cell_entity == "EMAIL_ADDRESS" and by["email"].share == 1.0
    assert by["emso"].whole_cell_entity == "SI_EMSO"
    assert "PERSON" in by["note"].entities and by["note"].whole_cell_entity is None
    assert by["note"].suggested == "replace"
    assert by["amount"].with_pii == 0 and by["amount"].suggested == "keep"
    assert by["id"].suggested == "keep"
    assert by["created"].suggested == "keep"  # dates alone are reported, not suggested away
    # examples are masked: the shape without the value
    assert all("@" in e and "user" not in e for e in by["email"].examples)
    assert list(scan.preview["id"][:2]) == ["0000", "0001"]  # read as text: zeros kept
    summary = _audit("privacy.dataset.scan")[0]["summary"]
    assert summary["rows"] == 40 and "EMAIL_ADDRESS" in summary["columns_with_pii"]["email"]
    assert "user0@example.com" not in json.dumps(summary)


def test_the_sample_is_spread_over_the_file_and_repeatable() -> None:
    data = customers_csv(rows=300)
    first = scan_dataset(OFFICER, DatasetUpload("big.csv", data), sample_rows=20)
    again = scan_dataset(OFFICER, DatasetUpload("big.csv", data), sample_rows=20)
    assert first.sampled_rows == 20 and first.rows == 300
    assert first.reports == again.reports


def test_anonymise_csv_into_a_new_file(scan, home: Path) -> None:  # type: ignore[no-untyped-def]
    plan = {**suggested_plan(scan), "amount": ColumnAction("drop")}
    before = preview_anonymisation(OFFICER, scan, plan)
    result = anonymise_dataset(OFFICER, DatasetUpload("customers.csv", customers_csv()), plan)
    assert result.path.parent == home / "privacy" / "anonymised"
    assert result.download_name == "customers-anonymised.csv" and result.rows == 40
    out = _read_csv(result.path)
    assert list(out.columns) == ["id", "email", "emso", "note", "created"]
    assert set(out["email"]) == {"<EMAIL_ADDRESS>"} and set(out["emso"]) == {"<SI_EMSO>"}
    assert not any(p in note for note in out["note"] for p in PEOPLE)
    assert out["note"][0].startswith("Call <PERSON>")
    assert list(out["id"][:3]) == ["0000", "0001", "0002"]
    assert result.changed_cells["email"] == 40 and "id" not in result.changed_cells
    # the preview is the first rows of the real output
    assert before.reset_index(drop=True).equals(out.head(len(before)).astype(before.dtypes))
    summary = _audit("privacy.dataset.anonymise")[0]["summary"]
    assert summary["actions"]["amount"] == "drop" and summary["rows"] == 40
    assert "Peter" not in json.dumps(summary)


def test_semicolon_files_keep_their_delimiter() -> None:
    data = customers_csv(rows=5, sep=";")
    result = anonymise_dataset(
        OFFICER, DatasetUpload("eu.csv", data), {"email": ColumnAction("mask", "EMAIL_ADDRESS")}
    )
    text = result.path.read_text()
    assert text.splitlines()[0] == "id;email;emso;note;amount;created"
    out = _read_csv(result.path, sep=";")
    assert out["email"][0] == "*" * len("user0@example.com")


def test_a_note_in_another_language_does_not_stop_the_file() -> None:
    note = "Bitte rufen Sie morgen früh zurück, die Adresse ist ann@example.com, danke schön"
    data = f'id,note\n1,"{note}"\n2,"Call John Smith back"\n'.encode()
    upload = DatasetUpload("mixed.csv", data)
    scan = scan_dataset(OFFICER, upload, sample_rows=10)
    assert "EMAIL_ADDRESS" in {r.name: r for r in scan.reports}["note"].entities
    out = _read_csv(anonymise_dataset(OFFICER, upload, {"note": "replace"}).path)
    assert "<EMAIL_ADDRESS>" in out["note"][0] and "ann@" not in out["note"][0]


def test_formula_cells_are_neutralised_in_csv_output() -> None:
    data = b'=cmd,name,value\n=HYPERLINK("http://x"),@SUM(A1),-5\n+1 555 0100,ok,-1.5e3\n'
    upload = DatasetUpload("evil.csv", data)
    safe = _read_csv(anonymise_dataset(OFFICER, upload, {}).path)
    assert list(safe.columns) == ["'=cmd", "name", "value"]
    assert list(safe["'=cmd"]) == ['\'=HYPERLINK("http://x")', "'+1 555 0100"]
    assert list(safe["name"]) == ["'@SUM(A1)", "ok"]
    assert list(safe["value"]) == ["-5", "-1.5e3"]  # numbers stay numbers
    raw = _read_csv(anonymise_dataset(OFFICER, upload, {}, neutralise_formulas=False).path)
    assert raw["=cmd"][0] == '=HYPERLINK("http://x")'


def test_findings_export_neutralises_formulas() -> None:
    data = b'=HYPERLINK("http://evil"),email\nx,ann@example.com\n'
    scan = scan_dataset(OFFICER, DatasetUpload("f.csv", data), sample_rows=10)
    exported = list(pd.read_csv(io.StringIO(findings_csv(scan)), dtype=str)["column"])
    assert exported == ['\'=HYPERLINK("http://evil")', "email"]


def test_salted_hash_links_equal_values(_settings: pytest.MonkeyPatch) -> None:
    upload = DatasetUpload("customers.csv", customers_csv(rows=30))
    plan = {"email": ColumnAction("hash", "EMAIL_ADDRESS")}
    with pytest.raises(ConfigurationError, match="OMNI_PII_HASH_SALT"):
        anonymise_dataset(OFFICER, upload, plan)
    _settings.setenv("OMNI_PII_HASH_SALT", SALT)
    reload_settings()
    out = _read_csv(anonymise_dataset(OFFICER, upload, plan).path)
    assert out["email"][0] == out["email"][25]  # user0 twice
    assert out["email"][0] != out["email"][1]
    # the same value hashed inside free text gives the same hash
    email = "user0@example.com"
    inline = anonymize_text(email, "hash", findings=[Finding("EMAIL_ADDRESS", 0, 17, 1.0, email)])
    assert inline.text == out["email"][0]


def test_encryption_needs_the_key_and_round_trips(_settings: pytest.MonkeyPatch) -> None:
    upload = DatasetUpload("customers.csv", customers_csv(rows=5))
    plan = {"email": ColumnAction("encrypt", "EMAIL_ADDRESS")}
    with pytest.raises(ConfigurationError, match="OMNI_PII_ENCRYPTION_KEY"):
        anonymise_dataset(OFFICER, upload, plan)
    _settings.setenv("OMNI_PII_ENCRYPTION_KEY", KEY)
    reload_settings()
    out = _read_csv(anonymise_dataset(OFFICER, upload, plan).path)
    assert "@" not in out["email"][0]
    assert [decrypt_value(v) for v in out["email"][:2]] == [
        "user0@example.com",
        "user1@example.com",
    ]
    with pytest.raises(ValidationError, match="cannot be decrypted"):
        decrypt_value("not-a-token")


def test_parquet_in_parquet_out_keeps_types(tmp_path: Path) -> None:
    table = pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "email": ["ann@example.com", None, "bob@example.org"],
            "emso": pa.array([101006500006, 101006500006, 101006500006], pa.int64()),
            "score": [0.5, 0.25, 1.0],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    path = tmp_path / "people.parquet"
    path.write_bytes(buffer.getvalue())
    upload = DatasetUpload("people.parquet", path)  # a file on disk, read in batches
    scan = scan_dataset(OFFICER, upload, sample_rows=10)
    assert scan.format == "parquet" and scan.rows == 3
    assert {r.name: r.whole_cell_entity for r in scan.reports}["email"] == "EMAIL_ADDRESS"
    plan = {"email": ColumnAction("replace", "EMAIL_ADDRESS"), "emso": ColumnAction("redact")}
    result = anonymise_dataset(OFFICER, upload, plan, out_dir=tmp_path / "out")
    assert result.download_name == "people-anonymised.parquet"
    out = pq.read_table(result.path)
    assert (
        out.schema.field("id").type == pa.int64() and out.schema.field("score").type == pa.float64()
    )
    assert out.column("email").to_pylist() == ["<EMAIL_ADDRESS>", None, "<EMAIL_ADDRESS>"]
    assert out.column("emso").type == pa.string()


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.csv", b"", "is empty"),
        ("a.csv", b"a,b\n", "no rows"),
        ("a.csv", b'a,b\n1,"2\n3,4\n', "not well-formed CSV: EOF inside string"),
        ("a.csv", b"a,b\n1,2\n3,4,5\n", "Expected 2 fields in line 3, saw 3"),
        ("a.csv", b"a,b\n\x00\x01\x02\xff\xfe", "binary data"),
        ("a.csv", "name\nŽiga Kovačič\n".encode("cp1250"), "not UTF-8"),
        ("a.csv", b"a,a\n1,2\n", "more than once"),
        ("a.xlsx", b"PK\x03\x04", "upload a .csv or .parquet"),
        ("a.parquet", b"a,b\n1,2\n", "not a Parquet file"),
        ("a.parquet", b"PAR1 truncated", "not a readable Parquet file"),
    ],
)
def test_bad_files_get_clear_errors(name: str, data: bytes, message: str) -> None:
    upload = DatasetUpload(name, data)
    with pytest.raises(ValidationError, match=message):
        scan_dataset(OFFICER, upload)
    with pytest.raises(ValidationError, match=message):
        anonymise_dataset(OFFICER, upload, {})


def test_oversize_files_are_refused(_settings: pytest.MonkeyPatch) -> None:
    _settings.setenv("OMNI_PII_MAX_FILE_MB", "1")
    reload_settings()
    big = b"a,b\n" + b"1,2\n" * 300_000
    with pytest.raises(ValidationError, match="datasets up to 1 MB"):
        scan_dataset(OFFICER, DatasetUpload("big.csv", big))


def test_bad_plans_and_options_are_refused() -> None:
    upload = DatasetUpload("customers.csv", customers_csv(rows=3))
    with pytest.raises(ValidationError, match=r"no column 'salary'.*'email'"):
        anonymise_dataset(OFFICER, upload, {"salary": "drop"})
    with pytest.raises(ValidationError, match="Unknown action 'shred'"):
        anonymise_dataset(OFFICER, upload, {"email": "shred"})
    every = dict.fromkeys(["id", "email", "emso", "note", "amount", "created"], "drop")
    with pytest.raises(ValidationError, match="Every column would be dropped"):
        anonymise_dataset(OFFICER, upload, every)
    with pytest.raises(ValidationError, match="supports en"):
        scan_dataset(OFFICER, upload, language="de")
    with pytest.raises(ValidationError, match="supports en"):
        anonymise_dataset(OFFICER, upload, {"note": "replace"}, language="sl")
    with pytest.raises(ValidationError, match="Unknown entity type"):
        scan_dataset(OFFICER, upload, entities=["SHOE_SIZE"])
    with pytest.raises(ValidationError, match="between 10 and 5,000"):
        scan_dataset(OFFICER, upload, sample_rows=1)


def test_a_failure_half_way_leaves_no_output(_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _settings.setattr(dataset_files, "CHUNK_ROWS", 10)
    rows = [f"{i},user{i}@example.com" for i in range(30)]
    rows[25] += ",surplus"
    data = ("id,email\n" + "\n".join(rows) + "\n").encode()
    out = tmp_path / "out"
    with pytest.raises(ValidationError, match="Expected 2 fields"):
        anonymise_dataset(
            OFFICER, DatasetUpload("late.csv", data), {"email": "replace"}, out_dir=out
        )
    assert list(out.iterdir()) == []  # neither the file nor its temporary part
    assert _audit("privacy.dataset.anonymise")[0]["outcome"] == "failed"


def test_a_cancelled_run_leaves_no_output(_settings: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Stopped(BaseException):  # what Streamlit's stop raises inside the progress callback
        pass

    def stop(share: float, message: str) -> None:
        raise Stopped

    _settings.setattr(dataset_files, "CHUNK_ROWS", 10)
    out = tmp_path / "out"
    upload = DatasetUpload("customers.csv", customers_csv(rows=30))
    with pytest.raises(Stopped):
        anonymise_dataset(OFFICER, upload, {"email": "redact"}, out_dir=out, progress=stop)
    assert list(out.iterdir()) == []


def test_roles_without_the_permission_are_refused() -> None:
    upload = DatasetUpload("customers.csv", customers_csv(rows=3))
    with pytest.raises(PermissionDenied, match=r"privacy\.pii\.scan"):
        scan_dataset(FINANCE, upload)
    with pytest.raises(PermissionDenied):
        anonymise_dataset(FINANCE, upload, {})
    assert ADMIN.role is Role.ADMIN
    assert _audit("privacy.dataset.scan")[0]["outcome"] == "denied"
