"""Documents page: collections with counts, create / change / delete one, upload several files
with a per-file report, list and delete documents."""

from __future__ import annotations

import pytest

from core.auth.roles import Role
from core.rag.collections import list_collections
from core.rag.ingest import IngestReport, UploadedFile
from pages.kb_documents import UPLOAD_TYPES, report_frame, uploaded_files
from tests.helpers import ADMIN
from tests.ui.conftest import open_page, roles_allowed, signed_in_app

PAGE = "kb_documents"
HANDBOOK = b"""# Travel policy

## Booking

Book trains for journeys under four hours. Flights need a manager's approval in advance.

## Expenses

Claim expenses within thirty days with the receipts attached.
"""


class _Upload:
    """What st.file_uploader hands the page: a name and getvalue()."""

    def __init__(self, name: str, data: bytes) -> None:
        self.name, self._data = name, data

    def getvalue(self) -> bytes:
        return self._data


def _by_label(widgets, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in widgets if w.label == label)


def _collection_id(name: str) -> int:
    return next(c.id for c in list_collections(ADMIN) if c.name == name)


def test_uploads_become_core_uploaded_files() -> None:
    files = [_Upload("a.md", b"# A"), _Upload("b.pdf", b"%PDF")]
    assert uploaded_files(files) == [UploadedFile("a.md", b"# A"), UploadedFile("b.pdf", b"%PDF")]
    assert uploaded_files(None) == []
    assert {".pdf", ".docx", ".md", ".txt", ".text", ".csv"} <= set(UPLOAD_TYPES)


def test_report_frame_has_one_row_per_file() -> None:
    frame = report_frame(
        [
            IngestReport("a.md", "indexed", "2 chunks", 7, 2, 2, 0.1234),
            IngestReport("b.pdf", "failed", "b.pdf is damaged"),
        ]
    )
    assert list(frame.columns) == ["Source", "Status", "Message", "Chunks", "Embedded", "Seconds"]
    assert list(frame["Status"]) == ["indexed", "failed"]
    assert frame["Seconds"][0] == 0.12


@pytest.mark.parametrize("role", roles_allowed(PAGE))
def test_renders_collections_with_counts(role: Role) -> None:
    at = open_page(signed_in_app(role), PAGE)
    assert not at.exception
    assert [t.value for t in at.title] == ["Documents"]
    table = at.dataframe[0].value
    regulations = table[table["Name"] == "Regulations"].iloc[0]
    assert regulations["Documents"] == 272 and regulations["Chunks"] > 272
    assert any(o.startswith("Regulations · ") for o in at.selectbox(key="kbd_collection").options)
    uploader = at.file_uploader[0]
    assert uploader.accept_multiple_files and ".pdf" in uploader.allowed_type
    assert "text/*" not in uploader.allowed_type  # a bare "text" would let any text file in
    documents = next(d.value for d in at.dataframe if "Source" in d.value.columns)
    assert "GDPR Article 12" in set(documents["Source"])


# Refusal for every other role: tests/ui/test_navigation.py::test_other_roles_cannot_open_the_page
# (not in their navigation, and the script refuses when run directly).


def test_a_bad_collection_name_gets_a_clear_error() -> None:
    at = open_page(signed_in_app(Role.ML_ENGINEER), PAGE)
    at.text_input(key="kbd_new_name").input("   ")
    _by_label(at.button, "Create collection").click().run()
    assert "A collection name is 1-80 characters" in at.error[0].value


def test_create_upload_report_delete_document_and_collection() -> None:
    name = "UI upload test"
    at = open_page(signed_in_app(Role.COMPLIANCE_OFFICER), PAGE)
    at.text_input(key="kbd_new_name").input(name)
    at.text_area(key="kbd_new_description").input("Policies for the page test")
    _by_label(at.button, "Create collection").click().run()
    assert not at.exception
    assert at.success[0].value == f"Created collection '{name}'."
    cid = _collection_id(name)
    assert at.selectbox(key="kbd_collection").value == cid

    at.file_uploader(key=f"kbd_files_{cid}_0").set_value(
        [
            ("travel.md", HANDBOOK, "text/markdown"),
            ("broken.pdf", b"%PDF-1.7\nthis is not really a PDF", "application/pdf"),
        ]
    ).run()
    at.button(key="kbd_upload").click().run()
    assert not at.exception
    report = next(d.value for d in at.dataframe if "Status" in d.value.columns)
    assert list(report["Source"]) == ["travel.md", "broken.pdf"]
    assert list(report["Status"]) == ["indexed", "failed"]
    assert report["Chunks"][0] >= 1
    failure = at.error[0].value
    assert failure.startswith("1 of 2 files indexed; 1 failed") and "**broken.pdf**" in failure
    assert at.file_uploader(key=f"kbd_files_{cid}_1").value == []  # the uploader starts empty

    documents = next(d.value for d in at.dataframe if "Title" in d.value.columns)
    assert list(documents["Source"]) == ["travel.md"]
    table = at.dataframe[0].value
    assert table[table["Name"] == name].iloc[0]["Documents"] == 1

    doc_id = at.selectbox(key=f"kbd_doc_{cid}").value
    assert at.button(key=f"kbd_doc_delete_{cid}").disabled
    at.checkbox(key=f"kbd_doc_sure_{cid}_{doc_id}").check().run()
    at.button(key=f"kbd_doc_delete_{cid}").click().run()
    assert not at.exception
    assert at.success[0].value == f"Deleted 'travel.md' from '{name}'."
    assert any(i.value.startswith(f"'{name}' has no documents yet") for i in at.info)

    at.multiselect(key=f"kbd_edit_roles_{cid}").set_value(
        [Role.COMPLIANCE_OFFICER, Role.ML_ENGINEER]
    )
    _by_label(at.button, "Save settings").click().run()
    assert at.success[0].value == f"Saved the settings of '{name}'."
    info = next(c for c in list_collections(ADMIN) if c.id == cid)
    assert info.roles == (Role.COMPLIANCE_OFFICER, Role.ML_ENGINEER)

    assert at.button(key=f"kbd_del_{cid}").disabled
    at.text_input(key=f"kbd_del_name_{cid}").input(name).run()
    at.button(key=f"kbd_del_{cid}").click().run()
    assert not at.exception
    assert at.success[0].value == f"Deleted collection '{name}'."
    assert all(c.name != name for c in list_collections(ADMIN))
    assert not any(o.startswith(name) for o in at.selectbox(key="kbd_collection").options)
