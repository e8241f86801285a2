"""Text extraction from uploaded files: PDF, DOCX, HTML, Markdown, plain text and CSV.

`extract` returns an `ExtractedDocument` of `Section`s, each with its page (PDF) and heading path.
Every failure is an `ExtractionError` (a `ValidationError`) whose message names the file and says
what to do, so a batch ingest can report it per file and carry on.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING

from core.errors import ValidationError

if TYPE_CHECKING:
    from docx.table import Table

__all__ = [
    "ACCEPTED_EXTENSIONS",
    "ExtractedDocument",
    "ExtractionError",
    "Section",
    "extract",
]

# DOCX zip-bomb limits, checked on the zip directory before python-docx opens anything.
MAX_DOCX_UNCOMPRESSED = 100 * 1024 * 1024
MAX_DOCX_RATIO = 100
MAX_DOCX_MEMBERS = 10_000
# Ratio checks apply only past this size: tiny XML parts can legitimately compress very well.
_RATIO_MIN_BYTES = 1024 * 1024

CSV_ROWS_PER_SECTION = 50

_MIME = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".txt": "text/plain",
    ".text": "text/plain",
    ".csv": "text/csv",
}
ACCEPTED_EXTENSIONS: tuple[str, ...] = tuple(_MIME)

# C0 controls except tab, newline, carriage return and form feed; DEL; C1 controls.
_BAD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
_STRIP_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_ANY_SPACE = re.compile(r"\s+")


class ExtractionError(ValidationError):
    """A file could not be turned into text; the message names the file and the remedy."""


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path (and, for PDFs, on one page)."""

    text: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExtractedDocument:
    title: str
    mime: str
    sections: list[Section] = field(default_factory=list)


def extract(filename: str, data: bytes, *, max_bytes: int) -> ExtractedDocument:
    """Extract the text of `data` (the bytes of `filename`) into sections.

    The type comes from the extension; the content is sniffed to check it (a PDF saved as .txt is
    read as a PDF, a .docx that is not a zip archive is refused).
    """
    name = PurePath(filename).name or filename
    if not data:
        raise ExtractionError(f"{name} is empty: choose a file with content and upload again.")
    if len(data) > max_bytes:
        raise ExtractionError(
            f"{name} is {_size(len(data))}; the limit is {_size(max_bytes)}. "
            "Split it into smaller files or ask an administrator to raise the limit."
        )
    ext = PurePath(name).suffix.lower()
    if ext not in _MIME:
        shown = f'"{ext}"' if ext else "no extension"
        raise ExtractionError(
            f"{name} has an unsupported type ({shown}). "
            f"Accepted file types: {', '.join(ACCEPTED_EXTENSIONS)}."
        )
    if ext != ".pdf" and _is_pdf(data) and _MIME[ext].startswith("text/"):
        ext = ".pdf"
    title = PurePath(name).stem or name

    if ext == ".pdf":
        doc = _extract_pdf(name, data, title)
    elif ext == ".docx":
        doc = _extract_docx(name, data, title)
    else:
        text = _decode(name, data)
        if ext in (".html", ".htm"):
            doc = _extract_html(text, title)
        elif ext in (".md", ".markdown"):
            doc = _extract_markdown(text, title)
        elif ext == ".csv":
            doc = _extract_csv(name, text, title)
        else:
            doc = ExtractedDocument(title, _MIME[ext], _sections([Section(_tidy(text))]))
    if not doc.sections:
        raise ExtractionError(f"{name} contains no text to index.")
    return doc


# -- helpers -----------------------------------------------------------------------------------


def _size(n: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def _is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]


def _clean(text: str) -> str:
    """Drop control characters (NUL included) and normalise line endings."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x0c", "\n\n")
    return _STRIP_CONTROL.sub("", text)


def _tidy(text: str) -> str:
    """Clean, trim trailing spaces on lines, collapse runs of blank lines."""
    lines = [line.rstrip() for line in _clean(text).split("\n")]
    return _MANY_NEWLINES.sub("\n\n", "\n".join(lines)).strip()


def _one_line(text: str) -> str:
    return _ANY_SPACE.sub(" ", _clean(text)).strip()


def _sections(sections: Iterable[Section]) -> list[Section]:
    return [s for s in sections if s.text.strip()]


def _looks_like_text(text: str, *, strict: bool) -> bool:
    """At most 1% control characters (plus two strays); `strict` (guessed encodings): no NUL."""
    if strict and "\x00" in text:
        return False
    return len(_BAD_CONTROL.findall(text)) <= len(text) * 0.01 + 2


def _decode(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, then cp1252/latin-1 if the result is text."""
    candidates: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates.append("utf-16")
    candidates += ["utf-8-sig", "cp1252", "latin-1"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _looks_like_text(text, strict=encoding in ("cp1252", "latin-1")):
            return text
        if encoding == "utf-8-sig":
            break  # valid UTF-8 full of control characters: binary, not another encoding
    raise ExtractionError(
        f"{name} is not a readable text file (it is binary or in an unknown encoding). "
        "Save it as UTF-8 text and upload again."
    )


class _HeadingStack:
    """Tracks the heading path and collects the paragraphs under the current heading."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, str]] = []
        self._paragraphs: list[str] = []
        self.sections: list[Section] = []

    def heading(self, level: int, text: str) -> None:
        self.flush()
        if not text:
            return
        while self._stack and self._stack[-1][0] >= level:
            self._stack.pop()
        self._stack.append((level, text))

    def add(self, paragraph: str) -> None:
        if paragraph.strip():
            self._paragraphs.append(paragraph.strip())

    def flush(self) -> None:
        text = _tidy("\n\n".join(self._paragraphs))
        if text:
            path = tuple(t for _, t in self._stack)
            self.sections.append(Section(text, None, path))
        self._paragraphs = []


# -- PDF -----------------------------------------------------------------------------------------


def _extract_pdf(name: str, data: bytes, title: str) -> ExtractedDocument:
    from pypdf import PasswordType, PdfReader

    if not _is_pdf(data):
        raise ExtractionError(
            f"{name} is not a PDF (the content is something else): check the file."
        )
    corrupt = f"{name} is a damaged PDF that cannot be read: export it again and upload the copy."
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except Exception as exc:
        raise ExtractionError(corrupt) from exc
    if encrypted:
        try:
            opened = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except Exception:
            opened = False
        if not opened:
            raise ExtractionError(
                f"{name} is password-protected: remove the password and upload again."
            )
    sections: list[Section] = []
    try:
        pages = list(reader.pages)
        for number, page in enumerate(pages, start=1):
            text = _tidy(page.extract_text() or "")
            if text:
                sections.append(Section(text, number, ()))
        meta = reader.metadata
        meta_title = meta.title if meta is not None else None
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(corrupt) from exc
    if not pages:
        raise ExtractionError(f"{name} has no pages: export it again and upload the copy.")
    if not sections:
        raise ExtractionError(
            f"{name} has no extractable text (it looks like a scanned image). "
            "Run it through OCR or export a text PDF, then upload again."
        )
    if isinstance(meta_title, str) and _one_line(meta_title):
        title = _one_line(meta_title)
    return ExtractedDocument(title, _MIME[".pdf"], sections)


# -- DOCX ----------------------------------------------------------------------------------------


def _check_docx_zip(name: str, data: bytes) -> None:
    not_docx = (
        f"{name} is not a valid Word document (.docx): open it in Word, save it as .docx "
        "and upload again."
    )
    if not data.startswith(b"PK"):
        raise ExtractionError(not_docx)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError) as exc:
        raise ExtractionError(not_docx) from exc
    bomb = (
        f"{name} expands to an unsafe size when unpacked and was refused. "
        "If it is a genuine document, save a copy without embedded media and upload again."
    )
    if len(members) > MAX_DOCX_MEMBERS:
        raise ExtractionError(bomb)
    total = sum(m.file_size for m in members)
    packed = sum(m.compress_size for m in members)
    if total > MAX_DOCX_UNCOMPRESSED:
        raise ExtractionError(bomb)
    if total > _RATIO_MIN_BYTES and total > MAX_DOCX_RATIO * max(packed, 1):
        raise ExtractionError(bomb)
    for m in members:
        if m.file_size > _RATIO_MIN_BYTES and m.file_size > MAX_DOCX_RATIO * max(
            m.compress_size, 1
        ):
            raise ExtractionError(bomb)
    if "word/document.xml" not in {m.filename for m in members}:
        raise ExtractionError(not_docx)


def _heading_level(style_name: str) -> int | None:
    """1-9 for "Heading N" styles, 0 for "Title", else None."""
    if style_name == "Title":
        return 0
    match = re.fullmatch(r"Heading ([1-9])", style_name)
    return int(match.group(1)) if match else None


def _extract_docx(name: str, data: bytes, title: str) -> ExtractedDocument:
    import docx
    from docx.table import Table

    _check_docx_zip(name, data)
    try:
        document = docx.Document(io.BytesIO(data))
        builder = _HeadingStack()
        doc_title = _one_line(document.core_properties.title or "")
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                builder.add(_docx_table(block))
                continue
            style = block.style
            level = _heading_level(style.name or "") if style is not None else None
            text = _clean(block.text)
            if level == 0:
                doc_title = doc_title or _one_line(text)
            elif level is not None:
                builder.heading(level, _one_line(text))
            else:
                builder.add(text)
        builder.flush()
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(
            f"{name} is a damaged Word document that cannot be read: open it in Word, save a "
            "copy and upload that."
        ) from exc
    return ExtractedDocument(doc_title or title, _MIME[".docx"], _sections(builder.sections))


def _docx_table(table: Table) -> str:
    rows: list[str] = []
    for row in table.rows:
        cells: list[str] = []
        for cell in row.cells:
            text = _one_line(cell.text)
            if not cells or cells[-1] != text:  # merged cells repeat their text
                cells.append(text)
        if any(cells):
            rows.append(" | ".join(cells))
    return "\n".join(rows)


# -- HTML ----------------------------------------------------------------------------------------

_HTML_DROP = frozenset(
    {"script", "style", "nav", "noscript", "template", "iframe", "svg", "head", "button", "form"}
)
_HTML_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_HTML_BLOCKS = frozenset(
    {
        "p", "div", "li", "ul", "ol", "br", "tr", "table", "pre", "blockquote", "section",
        "article", "main", "aside", "header", "footer", "dd", "dt", "dl", "figure", "figcaption",
        "hr", "address", "details", "summary", "caption", "thead", "tbody", "tfoot",
    }
)  # fmt: skip


def _extract_html(text: str, title: str) -> ExtractedDocument:
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, PreformattedString, Tag

    soup = BeautifulSoup(text, "html.parser")
    builder = _HeadingStack()
    parts: list[str] = []

    def end_block() -> None:
        if parts:
            builder.add(_one_line("".join(parts)))
            parts.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, PreformattedString):
                continue  # comments, doctype, CDATA, processing instructions
            if isinstance(child, NavigableString):
                parts.append(str(child))
                continue
            if not isinstance(child, Tag) or child.name in _HTML_DROP:
                continue
            if child.name in _HTML_HEADINGS:
                end_block()
                builder.heading(_HTML_HEADINGS[child.name], _one_line(child.get_text(" ")))
                continue
            if child.name in ("td", "th"):
                parts.append(" ")
            block = child.name in _HTML_BLOCKS
            if block:
                end_block()
            walk(child)
            if block:
                end_block()

    walk(soup.body if soup.body is not None else soup)
    end_block()
    builder.flush()

    found = soup.title.get_text(" ") if soup.title is not None else ""
    if not _one_line(found):
        h1 = soup.find("h1")
        found = h1.get_text(" ") if h1 is not None else ""
    return ExtractedDocument(_one_line(found) or title, "text/html", _sections(builder.sections))


# -- Markdown ------------------------------------------------------------------------------------


def _extract_markdown(text: str, title: str) -> ExtractedDocument:
    builder = _HeadingStack()
    first_h1 = ""
    fence: str | None = None
    paragraph: list[str] = []

    def end_paragraph() -> None:
        builder.add("\n".join(paragraph))
        paragraph.clear()

    for line in _clean(text).split("\n"):
        fence_match = _MD_FENCE.match(line)
        if fence is not None:
            paragraph.append(line)
            if fence_match and fence_match.group(1)[0] == fence[0]:
                fence = None
            continue
        if fence_match:
            fence = fence_match.group(1)
            paragraph.append(line)
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            end_paragraph()
            level, heading_text = len(heading.group(1)), _one_line(heading.group(2) or "")
            if level == 1 and not first_h1:
                first_h1 = heading_text
            builder.heading(level, heading_text)
        elif not line.strip():
            end_paragraph()
        else:
            paragraph.append(line.rstrip())
    end_paragraph()
    builder.flush()
    return ExtractedDocument(first_h1 or title, "text/markdown", _sections(builder.sections))


# -- CSV -----------------------------------------------------------------------------------------


def _extract_csv(name: str, text: str, title: str) -> ExtractedDocument:
    text = _clean(text)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t|"
        )
    except csv.Error:
        dialect = csv.excel
    try:
        rows = [
            row for row in csv.reader(io.StringIO(text), dialect) if any(c.strip() for c in row)
        ]
    except csv.Error as exc:
        raise ExtractionError(
            f"{name} is not a valid CSV file ({exc}): check the quoting and upload again."
        ) from exc
    if not rows:
        return ExtractedDocument(title, "text/csv", [])
    header = [_one_line(h) or f"column {i + 1}" for i, h in enumerate(rows[0])]
    body = rows[1:]
    if not body:  # a single row: nothing to pair it with, index it as it stands
        return ExtractedDocument(title, "text/csv", [Section("; ".join(header))])
    sections: list[Section] = []
    for start in range(0, len(body), CSV_ROWS_PER_SECTION):
        batch = body[start : start + CSV_ROWS_PER_SECTION]
        lines: list[str] = []
        for row in batch:
            pairs = []
            for i, value in enumerate(row):
                value = _one_line(value)
                if value:
                    column = header[i] if i < len(header) else f"column {i + 1}"
                    pairs.append(f"{column}: {value}")
            if pairs:
                lines.append("; ".join(pairs))
        label = f"Rows {start + 1}-{start + len(batch)}"
        sections.append(Section("\n".join(lines), None, (label,)))
    return ExtractedDocument(title, "text/csv", _sections(sections))
