"""Scanning a piece of text for PII, as the PII scanner page does: findings, the text cut into
plain and found segments (for highlighting), and an anonymised preview with a chosen operator.

Each scan and each anonymisation is audited with counts and entity types only: the audit log must
never become a second copy of the personal data it records work on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from core.audit.service import record
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work
from core.errors import ValidationError
from core.privacy.anonymize import OPERATORS, Operator, anonymize_text
from core.privacy.engine import Finding, find_pii

MAX_TEXT_CHARS = 100_000  # about 30 pages; longer text belongs in a knowledge-base document
# The entity types offered in pickers (detection reports others too when none are picked).
COMMON_ENTITIES = (
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "LOCATION",
    "DATE_TIME",
    "IBAN_CODE",
    "CREDIT_CARD",
    "IP_ADDRESS",
    "URL",
    "EU_VAT",
    "SI_EMSO",
    "SI_TAX_NUMBER",
    "NRP",
)


@dataclass(frozen=True)
class Segment:
    """A run of the text: plain (`entity_type` None) or one finding."""

    text: str
    entity_type: str | None = None
    score: float = 0.0


@dataclass(frozen=True)
class TextScan:
    text: str
    findings: list[Finding]
    segments: list[Segment]

    @property
    def counts(self) -> dict[str, int]:
        return entity_counts(self.findings)


def entity_counts(findings: Sequence[Finding]) -> dict[str, int]:
    """Findings per entity type, most frequent first."""
    return dict(Counter(f.entity_type for f in findings).most_common())


def segments(text: str, findings: Sequence[Finding]) -> list[Segment]:
    """`text` cut at the findings' edges; joined back together they give `text` again.

    Findings that overlap one already placed are skipped (the engine resolves overlaps, this only
    keeps a hand-made list from producing text twice)."""
    out: list[Segment] = []
    at = 0
    for f in sorted(findings, key=lambda f: (f.start, -f.end)):
        if f.start < at or f.end > len(text) or f.start >= f.end:
            continue
        if f.start > at:
            out.append(Segment(text[at : f.start]))
        out.append(Segment(text[f.start : f.end], f.entity_type, f.score))
        at = f.end
    if at < len(text):
        out.append(Segment(text[at:]))
    return out


def check_scan_options(entities: Sequence[str] | None, min_score: float) -> list[str] | None:
    """Entity types upper-cased and de-duplicated (None: all); a score outside 0..1 refused."""
    if not 0.0 <= float(min_score) <= 1.0:
        raise ValidationError("The minimum score is a confidence between 0 and 1.")
    if not entities:
        return None
    cleaned = sorted({str(e).strip().upper() for e in entities if str(e).strip()})
    bad = [e for e in cleaned if not e.replace("_", "").isalnum() or len(e) > 40]
    if bad:
        raise ValidationError(f"{bad[0][:40]!r} is not an entity type (e.g. EMAIL_ADDRESS).")
    return cleaned or None


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Paste some text to scan.")
    if len(text) > MAX_TEXT_CHARS:
        raise ValidationError(
            f"The text is {len(text):,} characters; the scanner takes up to {MAX_TEXT_CHARS:,}. "
            "Split it, or add it to a knowledge-base collection and scan the document."
        )
    return text


def scan_text(
    actor: Actor,
    text: str,
    *,
    entities: Sequence[str] | None = None,
    min_score: float = 0.4,
    language: str = "en",
) -> TextScan:
    """Findings in `text` and its segments for highlighting; audited (counts only)."""
    require(actor, Permission.PII_SCAN, action="privacy.text.scan")
    wanted = check_scan_options(entities, min_score)
    body = _check_text(text)
    found = find_pii(body, entities=wanted, language=language, min_score=float(min_score))
    with unit_of_work() as session:
        record(
            session,
            actor,
            "privacy.text.scan",
            "text",
            {
                "chars": len(body),
                "findings": len(found),
                "entities": entity_counts(found),
                "language": language,
                "min_score": float(min_score),
            },
        )
    return TextScan(body, found, segments(body, found))


def anonymise_text(actor: Actor, text: str, operator: str, findings: Sequence[Finding]) -> str:
    """`text` with the given findings (from `scan_text`) transformed by `operator`; audited."""
    require(actor, Permission.PII_SCAN, action="privacy.text.anonymise")
    if operator not in OPERATORS:
        raise ValidationError(f"Unknown operator {operator!r}: use one of {', '.join(OPERATORS)}.")
    body = _check_text(text)
    for f in findings:
        if not 0 <= f.start < f.end <= len(body):
            raise ValidationError("The findings do not belong to this text: scan it again.")
    op: Operator = operator  # narrowed by the check against OPERATORS above
    result = anonymize_text(body, op, findings=list(findings))
    with unit_of_work() as session:
        record(
            session,
            actor,
            "privacy.text.anonymise",
            "text",
            {"chars": len(body), "operator": operator, "findings": len(findings)},
        )
    return result.text
