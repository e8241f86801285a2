"""Candidate spans and how overlapping candidates from different recognizers are settled.

Pure functions over `Span`; the Presidio adapters and the engine call them. Two rules matter for
quality, both measured on the held-out half of the benchmark data (bench/pii.py):

- A lower-ranked name-like span that only partly overlaps a kept one is trimmed to its uncovered
  part instead of being dropped ("Mrs. Barbara Yudina Apt. 675 ..." has spaCy's PERSON reaching
  into the address; the person must survive without the "Apt").
- A person's name found once marks its other occurrences in the same text, which the statistical
  model often misses when the context is thin ("... everyone calls me Vanessa").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple


class Span(NamedTuple):
    entity_type: str
    start: int
    end: int
    score: float


# Types whose value is a run of words, so a part of it is still meaningful. Structured identifiers
# (a card number, an IBAN) are never trimmed: half an IBAN is not an IBAN.
# An organisation is not trimmed either: what is left of "the University of Porvoo" once the town
# is taken is not an organisation.
TRIMMABLE = frozenset({"PERSON", "LOCATION", "NRP", "DATE_TIME", "ADDRESS", "TITLE"})

_EDGE = re.compile(r"^[\W_]+|[\W_]+$")
_LETTER = re.compile(r"[^\W\d_]")


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past leading/trailing whitespace and punctuation (keeps a final '.')."""
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip(" \t\r\n,;:>-()\"'"))
    trail = len(piece) - len(piece.rstrip(" \t\r\n,;:>-(\"'"))
    return start + lead, end - trail


def _uncovered(span: Span, kept: list[Span]) -> list[tuple[int, int]]:
    parts = [(span.start, span.end)]
    for k in kept:
        nxt: list[tuple[int, int]] = []
        for s, e in parts:
            if e <= k.start or s >= k.end:
                nxt.append((s, e))
                continue
            if s < k.start:
                nxt.append((s, k.start))
            if e > k.end:
                nxt.append((k.end, e))
        parts = nxt
    return parts


def resolve_overlaps(text: str, spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, sorted by position: the higher score (then the longer) wins; a
    name-like loser keeps its largest uncovered word run when it has at least two letters."""
    ranked = sorted(set(spans), key=lambda s: (-s.score, -(s.end - s.start), s.start))
    kept: list[Span] = []
    for span in ranked:
        clash = [k for k in kept if span.start < k.end and k.start < span.end]
        if not clash:
            kept.append(span)
            continue
        if span.entity_type not in TRIMMABLE:
            continue
        best: tuple[int, int] | None = None
        for s, e in _uncovered(span, clash):
            s, e = _strip(text, s, e)
            if e - s < 2 or len(_LETTER.findall(text[s:e])) < 2:
                continue
            # a cut inside a word leaves a fragment ("Apt" of "Apt."), not a name
            if (s > 0 and text[s - 1].isalnum()) or (e < len(text) and text[e].isalnum()):
                continue
            if best is None or e - s > best[1] - best[0]:
                best = (s, e)
        if best is not None:
            kept.append(Span(span.entity_type, best[0], best[1], span.score))
    return sorted(kept, key=lambda s: (s.start, s.end))


_NAME_TOKEN = re.compile(r"[^\W\d_][\w'\u2019\-]*", re.UNICODE)


def propagate_names(text: str, spans: list[Span], *, factor: float = 0.9) -> list[Span]:
    """Add PERSON spans for further occurrences of a found person's full name or of one of its
    capitalised parts (3+ letters), where nothing else was found. Sorted by position."""
    people = [s for s in spans if s.entity_type == "PERSON"]
    if not people:
        return spans
    forms: dict[str, float] = {}
    for p in people:
        value = text[p.start : p.end].strip()
        forms[value] = max(forms.get(value, 0.0), p.score)
        for token in _NAME_TOKEN.findall(value):
            if len(token) >= 3 and token[0].isupper() and not token.isupper():
                forms[token] = max(forms.get(token, 0.0), p.score)
    added: list[Span] = []
    taken = list(spans)
    # longest forms first, so "Vanessa P. Hertzog" is marked before its part "Vanessa"
    for form in sorted(forms, key=len, reverse=True):
        pattern = re.compile(rf"(?<![\w]){re.escape(form)}(?![\w])")
        for m in pattern.finditer(text):
            if any(m.start() < t.end and t.start < m.end() for t in taken):
                continue
            new = Span("PERSON", m.start(), m.end(), round(forms[form] * factor, 4))
            added.append(new)
            taken.append(new)
    if not added:
        return spans
    return sorted([*spans, *added], key=lambda s: (s.start, s.end))
