"""Text extraction: every accepted format from real files built here, and each kind of bad input."""

from __future__ import annotations

import io
import zipfile

import docx
import pytest
from pypdf import PdfReader, PdfWriter

from core.errors import ValidationError
from core.rag import extract as extract_module
from core.rag.extract import ACCEPTED_EXTENSIONS, ExtractionError, extract

LIMIT = 10 * 1024 * 1024


def make_pdf(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per string, one page per list."""
    objects: list[bytes] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % len(pages))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for lines in pages:
        content_id = len(objects) + 2
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_id
        )
        ops = [b"BT", b"/F1 12 Tf", b"14 TL", b"72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(b"(" + escaped.encode("latin-1") + b") Tj T*")
        ops.append(b"ET")
        stream = b"\n".join(ops) if lines else b""
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    info_id = None
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
        info_id = len(objects)
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    trailer = b"<< /Size %d /Root 1 0 R" % (len(objects) + 1)
    if info_id is not None:
        trailer += b" /Info %d 0 R" % info_id
    out.write(b"trailer\n" + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def make_docx() -> bytes:
    document = docx.Document()
    document.core_properties.title = "Data Protection Handbook"
    document.add_paragraph("Preface text before any heading.")
    document.add_heading("Chapter III", level=1)
    document.add_paragraph("Rights of the data subject.")
    document.add_heading("Article 12", level=2)
    document.add_paragraph("The controller shall provide information within one month.")
    document.add_paragraph("That period may be extended by two further months.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Deadline"
    table.cell(0, 1).text = "Days"
    table.cell(1, 0).text = "Answer"
    table.cell(1, 1).text = "30"
    document.add_heading("Article 13", level=2)
    document.add_paragraph("Information to be provided.")
    document.add_heading("Chapter IV", level=1)
    document.add_paragraph("Controller and processor.")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def expect_error(filename: str, data: bytes, *fragments: str, max_bytes: int = LIMIT) -> str:
    with pytest.raises(ExtractionError) as caught:
        extract(filename, data, max_bytes=max_bytes)
    message = caught.value.message
    assert filename.rsplit("/", 1)[-1] in message
    for fragment in fragments:
        assert fragment in message
    return message


# -- formats -------------------------------------------------------------------------------------


def test_pdf_pages_and_title() -> None:
    data = make_pdf(
        [
            ["Article 12", "Transparent information."],
            [],
            ["Article 13", "Information (a) to give."],
        ],
        title="GDPR Extract",
    )
    doc = extract("regulation.pdf", data, max_bytes=LIMIT)
    assert doc.mime == "application/pdf"
    assert doc.title == "GDPR Extract"
    assert [s.page for s in doc.sections] == [1, 3]  # the blank page 2 yields no section
    assert "Transparent information." in doc.sections[0].text
    assert "Information (a) to give." in doc.sections[1].text
    assert all(s.heading_path == () for s in doc.sections)


def test_pdf_without_title_uses_file_stem() -> None:
    doc = extract("dir/annual report.pdf", make_pdf([["Hello world"]]), max_bytes=LIMIT)
    assert doc.title == "annual report"


def test_pdf_with_an_empty_user_password_is_read() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Owner locked only"]]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    doc = extract("locked.pdf", buffer.getvalue(), max_bytes=LIMIT)
    assert "Owner locked only" in doc.sections[0].text


def test_docx_headings_build_the_path_and_tables_become_rows() -> None:
    doc = extract("handbook.docx", make_docx(), max_bytes=LIMIT)
    assert doc.title == "Data Protection Handbook"
    assert doc.mime.endswith("wordprocessingml.document")
    paths = [s.heading_path for s in doc.sections]
    assert paths == [
        (),
        ("Chapter III",),
        ("Chapter III", "Article 12"),
        ("Chapter III", "Article 13"),
        ("Chapter IV",),
    ]
    article_12 = doc.sections[2].text
    assert "within one month.\n\nThat period" in article_12
    assert "Deadline | Days\nAnswer | 30" in article_12
    assert all(s.page is None for s in doc.sections)


def test_html_headings_and_dropped_elements() -> None:
    html = b"""<!doctype html><html><head><title>Policy Page</title>
    <style>body { color: red }</style><script>var secret = 1;</script></head>
    <body><nav><a href="/">Home</a> Menu</nav>
    <p>Intro   paragraph
    over lines.</p>
    <h1>Retention</h1><p>Keep <b>logs</b> for 90 days.</p><script>alert("x")</script>
    <h2>Exceptions</h2><ul><li>Legal hold</li><li>Audit</li></ul><!-- a comment -->
    <h2>Deletion</h2><div>Delete on request.</div><noscript>Enable JS</noscript>
    <h1>Access</h1><table><tr><td>Role</td><td>Admin</td></tr></table>
    </body></html>"""
    doc = extract("policy.html", html, max_bytes=LIMIT)
    assert doc.title == "Policy Page"
    assert doc.mime == "text/html"
    by_path = {s.heading_path: s.text for s in doc.sections}
    assert by_path[()] == "Intro paragraph over lines."
    assert by_path[("Retention",)] == "Keep logs for 90 days."
    assert by_path[("Retention", "Exceptions")] == "Legal hold\n\nAudit"
    assert by_path[("Retention", "Deletion")] == "Delete on request."
    assert by_path[("Access",)] == "Role Admin"
    everything = " ".join(by_path.values())
    for dropped in ("secret", "alert", "color", "Menu", "comment", "Enable JS"):
        assert dropped not in everything


def test_markdown_headings_skip_code_fences() -> None:
    md = (
        b"# Guide\n\nWelcome.\n\n## Install\n\nRun this:\n\n"
        b"```bash\n# not a heading\npip install x\n```\n\n"
        b"### Linux ###\n\nUse apt.\n\n## Use\n\nCall it.\n"
    )
    doc = extract("guide.md", md, max_bytes=LIMIT)
    assert doc.title == "Guide"
    assert doc.mime == "text/markdown"
    assert [s.heading_path for s in doc.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "Linux"),
        ("Guide", "Use"),
    ]
    assert "# not a heading" in doc.sections[1].text


def test_plain_text_utf8_with_bom_and_control_characters() -> None:
    data = "\ufeffFirst line\x00 here.\r\n\r\n\r\n\r\nSecond\x07 paragraph.\n".encode()
    doc = extract("notes.txt", data, max_bytes=LIMIT)
    assert doc.mime == "text/plain"
    assert doc.title == "notes"
    assert doc.sections[0].text == "First line here.\n\nSecond paragraph."


def test_cp1252_text_is_decoded() -> None:
    data = "Caf\u00e9 \u201cquoted\u201d \u2013 na\u00efve \u20ac5".encode("cp1252")
    doc = extract("legacy.txt", data, max_bytes=LIMIT)
    assert doc.sections[0].text == "Caf\u00e9 \u201cquoted\u201d \u2013 na\u00efve \u20ac5"


def test_utf16_with_bom_is_decoded() -> None:
    doc = extract("wide.txt", "Grüße aus Köln".encode("utf-16"), max_bytes=LIMIT)
    assert doc.sections[0].text == "Grüße aus Köln"


def test_csv_rows_rendered_with_header_and_sectioned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "CSV_ROWS_PER_SECTION", 2)
    data = b'name,role,team\nAda,admin,ops\nBob,,"ml, research"\nCy,viewer,ops\n'
    doc = extract("people.csv", data, max_bytes=LIMIT)
    assert doc.mime == "text/csv"
    assert [s.heading_path for s in doc.sections] == [("Rows 1-2",), ("Rows 3-3",)]
    assert doc.sections[0].text == (
        "name: Ada; role: admin; team: ops\nname: Bob; team: ml, research"
    )
    assert doc.sections[1].text == "name: Cy; role: viewer; team: ops"


def test_csv_semicolon_dialect_is_sniffed() -> None:
    doc = extract("x.csv", b"a;b\n1;2\n3;4\n", max_bytes=LIMIT)
    assert doc.sections[0].text == "a: 1; b: 2\na: 3; b: 4"


def test_pdf_bytes_under_a_text_extension_are_read_as_pdf() -> None:
    doc = extract("misnamed.txt", make_pdf([["Really a PDF"]]), max_bytes=LIMIT)
    assert doc.mime == "application/pdf"
    assert doc.sections[0].page == 1


# -- bad input -----------------------------------------------------------------------------------


def test_extraction_error_is_a_validation_error() -> None:
    assert issubclass(ExtractionError, ValidationError)


def test_empty_file() -> None:
    expect_error("empty.pdf", b"", "is empty")


def test_whitespace_only_text_has_nothing_to_index() -> None:
    expect_error("blank.txt", b"  \n\n\t ", "no text")


def test_oversize_file_names_both_sizes() -> None:
    data = b"a" * int(12.3 * 1024 * 1024)
    message = expect_error("big.pdf", data, max_bytes=10 * 1024 * 1024)
    assert "big.pdf is 12.3 MB; the limit is 10 MB" in message


def test_unknown_extension_lists_accepted_types() -> None:
    message = expect_error("setup.exe", b"MZ\x90\x00", "unsupported type", '".exe"')
    for ext in ACCEPTED_EXTENSIONS:
        assert ext in message
    expect_error("README", b"hello", "no extension")


def test_corrupt_pdf() -> None:
    data = make_pdf([["Some text that will be lost"]])
    expect_error("broken.pdf", data[: len(data) // 3], "damaged PDF")


def test_garbage_named_pdf() -> None:
    expect_error("fake.pdf", b"this is not a pdf at all", "not a PDF")


def test_encrypted_pdf() -> None:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf([["Secret text"]]))))
    writer.encrypt(user_password="secret", algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    expect_error(
        "secret.pdf", buffer.getvalue(), "password-protected: remove the password and upload again"
    )


def test_scanned_pdf_without_text() -> None:
    expect_error("scan.pdf", make_pdf([[], []]), "no extractable text", "OCR")


def test_docx_that_is_not_a_zip() -> None:
    expect_error("report.docx", b"plain words, not a zip", "not a valid Word document")


def test_zip_that_is_not_a_docx() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    expect_error("other.docx", buffer.getvalue(), "not a valid Word document")


def test_truncated_docx() -> None:
    data = make_docx()
    expect_error("cut.docx", data[: len(data) // 2], "Word document")


def test_corrupt_docx_part() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<not xml")
        archive.writestr("word/document.xml", "<also not xml")
    expect_error("mangled.docx", buffer.getvalue(), "damaged Word document")


def zip_bomb(size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", b"\0" * size)
    return buffer.getvalue()


def test_docx_zip_bomb_by_ratio() -> None:
    data = zip_bomb(8 * 1024 * 1024)
    assert len(data) < 100 * 1024
    expect_error("bomb.docx", data, "unsafe size")


def test_docx_zip_bomb_by_total_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_DOCX_UNCOMPRESSED", 1000)
    monkeypatch.setattr(extract_module, "MAX_DOCX_RATIO", 10**9)
    expect_error("big.docx", zip_bomb(5000), "unsafe size")


def test_binary_garbage_named_txt() -> None:
    garbage = bytes((i * 37 + 11) % 256 for i in range(4096))
    expect_error("data.txt", garbage, "not a readable text file", "UTF-8")


def test_binary_with_nul_bytes_that_is_valid_utf8() -> None:
    expect_error("zeros.md", b"\x00\x01\x02abc" * 200, "not a readable text file")


def test_errors_name_only_the_file_not_the_path() -> None:
    message = expect_error("/srv/uploads/tenant-7/empty.txt", b"")
    assert "/srv/uploads" not in message


def test_short_binary_with_nul_named_txt() -> None:
    expect_error("tiny.txt", b"MZ\x90\x00\xff\x00", "not a readable text file")
