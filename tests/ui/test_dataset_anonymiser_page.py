"""Dataset anonymiser page: a real CSV uploaded through the file uploader, scanned per column,
actions chosen per column, the before/after preview, the whole file anonymised and offered for
download; bad files get clear errors; other roles refused."""

from __future__ import annotations

import pandas as pd
import pytest

from core.auth.roles import Role
from core.privacy.datasets import ColumnReport, DatasetScan
from pages.dataset_anonymiser import UPLOAD_TYPES, fingerprint, report_frame
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

PAGE = "dataset_anonymiser"
CSV = (
    "id,email,note,amount\n"
    + "".join(
        f'{i:03d},user{i}@example.com,"Ticket from Peter Parker, call back",{i}.50\n'
        for i in range(12)
    )
    + '012,=HYPERLINK("http://evil"),plain,-5\n'
).encode()


def _frame_with(at, column: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return next(d.value for d in at.dataframe if column in d.value.columns)


class _File:
    name = "people.csv"
    file_id = "abc"


def test_report_frame_and_fingerprint() -> None:
    report = ColumnReport(
        "email", "str", 10, 9, {"EMAIL_ADDRESS": 9}, ("u***@e.c**",), "EMAIL_ADDRESS", "replace"
    )
    scan = DatasetScan("a.csv", "csv", 10, 10, ("email",), 10, [report], pd.DataFrame())
    frame = report_frame(scan)
    assert frame["With PII %"][0] == 90.0 and frame["Identifier column"][0] == "EMAIL_ADDRESS"
    assert fingerprint(_File(), b"x") == "people.csv:1:abc"
    assert {".csv", ".parquet"} <= set(UPLOAD_TYPES)


@pytest.mark.parametrize("role", roles_allowed(PAGE))
def test_renders_for_every_allowed_role(role: Role) -> None:
    at = open_page(signed_in_app(role), PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Dataset anonymiser"]
    uploader = at.file_uploader(key="pii_ds_upload")
    assert ".csv" in uploader.allowed_type and ".parquet" in uploader.allowed_type
    assert at.info[0].value.startswith("Upload a .csv or .parquet file (up to 200 MB)")


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_upload_scan_choose_preview_anonymise_download() -> None:
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE)
    at.file_uploader(key="pii_ds_upload").set_value(("people.csv", CSV, "text/csv")).run()
    at.button(key="pii_ds_scan_btn").click().run()
    assert not at.exception and not at.error
    assert [m.value for m in at.metric][:2] == ["13", "4"]
    report = _frame_with(at, "Suggested").set_index("Column")
    assert report.loc["email", "Identifier column"] == "EMAIL_ADDRESS"
    assert report.loc["note", "Suggested"] == "replace" and report.loc["id", "Suggested"] == "keep"
    assert "user0@" not in " ".join(report["Examples (masked)"])

    # suggested actions are preselected; drop the amount column
    actions = {s.label: s for s in at.selectbox if s.key.startswith("pii_ds_action_")}
    assert sorted(actions) == ["amount", "email", "id", "note"]
    assert actions["email"].value == "replace" and actions["id"].value == "keep"
    actions["amount"].select("drop").run()
    after = next(
        d.value
        for d in at.dataframe
        if "note" in d.value.columns and "amount" not in d.value.columns
    )
    assert after["email"][0] == "<EMAIL_ADDRESS>" and "<PERSON>" in after["note"][0]
    before = _frame_with(at, "amount")
    assert before["email"][0] == "user0@example.com"

    at.button(key="pii_ds_run").click().run()
    assert not at.exception and not at.error
    assert at.success[0].value.startswith("Anonymised 13 rows")
    assert at.get("download_button")
    result = at.session_state["pii_ds_result"][1]
    out = pd.read_csv(result.path, dtype=str, na_filter=False)
    assert list(out.columns) == ["id", "email", "note"]
    assert set(out["email"]) == {"<EMAIL_ADDRESS>"} and out["id"][0] == "000"
    assert not any("Peter Parker" in n for n in out["note"])


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.csv", b'a,b\n1,"2\n3,4\n', "is not well-formed CSV"),
        ("latin.csv", "name\nŽiga\n".encode("cp1250"), "is not UTF-8"),
        ("fake.parquet", b"a,b\n1,2\n", "is not a Parquet file"),
    ],
)
def test_bad_files_get_clear_errors(name: str, data: bytes, message: str) -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), PAGE)
    at.file_uploader(key="pii_ds_upload").set_value((name, data, "application/octet-stream")).run()
    at.button(key="pii_ds_scan_btn").click().run()
    assert not at.exception
    assert message in at.error[0].value
