"""Structure-aware chunking of extracted documents.

A chunk never crosses a section (heading or page) boundary. Each section is split by paragraphs
first, then sentences, then lines, then words, and only a run of text with no break at all is cut
at a fixed width. The pieces are packed greedily up to `max_chars`; consecutive chunks of one
section overlap by about `overlap_chars`, starting the overlap on a sentence boundary where one is
close enough. The output depends only on the input.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from core.rag.extract import ExtractedDocument

__all__ = ["Chunk", "chunk", "content_hash"]

_PARAGRAPH = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE = re.compile(
    r"(?:(?<=[.!?\u2026\u3002\uff01\uff1f])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+"
)
_LINE = re.compile(r"\s*\n\s*")
_WORD = re.compile(r"\s+")
# (pattern, the separator that rejoins the pieces) from the coarsest break to the finest.
_LEVELS: tuple[tuple[re.Pattern[str], str], ...] = (
    (_PARAGRAPH, "\n\n"),
    (_SENTENCE, " "),
    (_LINE, "\n"),
    (_WORD, " "),
)
# Where an overlap may start: after a sentence end or a line break, else after any space.
_SOFT_START = re.compile(
    r"(?:(?<=[.!?\u2026\u3002\uff01\uff1f])|(?<=[.!?\u2026][\"'\u201d\u2019)\]]))\s+|\n\s*"
)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Chunk:
    text: str
    page: int | None
    heading_path: tuple[str, ...]
    ordinal: int  # position in the document, from 0
    content_hash: str  # sha256 hex of the normalised text
    section_index: int = 0  # which section of the document it came from


def content_hash(text: str) -> str:
    """SHA-256 of the text after NFKC normalisation and whitespace collapsing."""
    normal = _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def chunk(
    doc: ExtractedDocument, *, max_chars: int = 1200, overlap_chars: int = 200
) -> list[Chunk]:
    """Cut every section of `doc` into chunks of at most `max_chars` characters."""
    if max_chars < 1:
        raise ValueError("max_chars must be at least 1")
    if not 0 <= overlap_chars < max_chars:
        raise ValueError("overlap_chars must be at least 0 and less than max_chars")
    chunks: list[Chunk] = []
    for index, section in enumerate(doc.sections):
        for text in _chunk_text(section.text, max_chars, overlap_chars):
            chunks.append(
                Chunk(
                    text=text,
                    page=section.page,
                    heading_path=section.heading_path,
                    ordinal=len(chunks),
                    content_hash=content_hash(text),
                    section_index=index,
                )
            )
    return chunks


def _pieces(text: str, max_chars: int) -> list[tuple[str, str]]:
    """(separator before, piece) pairs, each piece at most `max_chars` and without outer space."""
    out: list[tuple[str, str]] = []

    def split(part: str, level: int, sep_before: str) -> None:
        part = part.strip()
        if not part:
            return
        if len(part) <= max_chars:
            out.append((sep_before, part))
            return
        if level == len(_LEVELS):
            for start in range(0, len(part), max_chars):
                out.append((sep_before if start == 0 else "", part[start : start + max_chars]))
            return
        pattern, sep = _LEVELS[level]
        first = True
        for sub in pattern.split(part):
            if sub.strip():
                split(sub, level + 1, sep_before if first else sep)
                first = False

    split(text, 0, "")
    return out


def _tail(text: str, budget: int) -> str:
    """The end of `text`, at most `budget` characters, starting at the earliest soft break."""
    if budget <= 0:
        return ""
    if len(text) <= budget:
        return text
    floor = len(text) - budget
    for pattern in (_SOFT_START, _SPACE):
        for match in pattern.finditer(text, floor - 1 if floor > 0 else 0):
            if match.end() >= floor and match.end() < len(text):
                return text[match.end() :]
    return text[floor:]


def _chunk_text(text: str, max_chars: int, overlap_chars: int) -> list[str]:
    chunks: list[str] = []
    current = ""
    for sep, piece in _pieces(text, max_chars):
        if not current:
            current = piece
        elif len(current) + len(sep) + len(piece) <= max_chars:
            current = current + sep + piece
        else:
            # `current` always ends with a piece it did not share with the previous chunk.
            chunks.append(current)
            overlap = _tail(current, overlap_chars)
            overlap = _tail(overlap, max_chars - len(sep) - len(piece))
            current = overlap + sep + piece if overlap else piece
    if current:
        chunks.append(current)
    return chunks
