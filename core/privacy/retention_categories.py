"""The data categories retention policies apply to: how to count what is past its time, and how
to delete or anonymise it. A domain adds a category with `@retention_category`.

Not listed on purpose: the audit log (append-only by design, holds ids and counts rather than
personal data) and invoices (kept by accounting law; the billing domain decides their time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from core.auth.models import AuthSession
from core.errors import ValidationError
from core.llm.models import LLMUsage
from core.privacy.models import ConsentEvent, DataSubject
from core.rag.models import QueryLog

REMOVED = "[removed by retention policy]"

Counter = Callable[[Session, datetime], int]
Enforcer = Callable[[Session, datetime, str], int]


@dataclass(frozen=True)
class Category:
    key: str
    label: str
    description: str
    actions: tuple[str, ...]  # of "delete", "anonymise"
    suggested_days: int
    suggested_action: str
    suggested_basis: str
    count: Counter
    enforce: Enforcer


_CATEGORIES: dict[str, Category] = {}


def retention_category(
    key: str,
    label: str,
    description: str,
    *,
    actions: tuple[str, ...],
    suggested: tuple[int, str, str],
) -> Callable[[Enforcer], Enforcer]:
    """Register `enforce(session, cutoff, action) -> rows`; `count` is its `.count` attribute."""

    def register(enforce: Enforcer) -> Enforcer:
        counter: Counter = getattr(enforce, "count")  # noqa: B009 (set by @counts_with)
        days, action, basis = suggested
        _CATEGORIES[key] = Category(
            key, label, description, actions, days, action, basis, counter, enforce
        )
        return enforce

    return register


def counts_with(counter: Counter) -> Callable[[Enforcer], Enforcer]:
    def attach(enforce: Enforcer) -> Enforcer:
        enforce.count = counter  # type: ignore[attr-defined]
        return enforce

    return attach


def categories() -> dict[str, Category]:
    return dict(_CATEGORIES)


def category(key: str) -> Category:
    found = _CATEGORIES.get(key)
    if found is None:
        raise ValidationError(
            f"Unknown data category {key!r}: use one of {', '.join(sorted(_CATEGORIES))}."
        )
    return found


# --- LLM usage ledger --------------------------------------------------------------------------


def _bodies_due(cutoff: datetime) -> ColumnElement[bool]:
    return and_(
        LLMUsage.ts < cutoff,
        or_(LLMUsage.prompt_redacted.is_not(None), LLMUsage.response_redacted.is_not(None)),
    )


def _count_bodies(session: Session, cutoff: datetime) -> int:
    return (
        session.scalar(select(func.count()).select_from(LLMUsage).where(_bodies_due(cutoff))) or 0
    )


@retention_category(
    "llm_bodies",
    "LLM prompt and answer bodies",
    "Stored (PII-redacted) prompts and answers on usage-ledger rows; the cost rows stay.",
    actions=("anonymise",),
    suggested=(30, "anonymise", "GDPR Art. 5(1)(c) and (e): kept only for debugging"),
)
@counts_with(_count_bodies)
def _enforce_bodies(session: Session, cutoff: datetime, action: str) -> int:
    result = session.execute(
        update(LLMUsage)
        .where(_bodies_due(cutoff))
        .values(prompt_redacted=None, response_redacted=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _count_end_users(session: Session, cutoff: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(LLMUsage)
            .where(LLMUsage.ts < cutoff, LLMUsage.end_user.is_not(None))
        )
        or 0
    )


@retention_category(
    "llm_end_users",
    "End-user ids on LLM usage",
    "Which customer end user a call served; usage and cost stay for billing, without the person.",
    actions=("anonymise",),
    suggested=(400, "anonymise", "GDPR Art. 5(1)(e): needed while usage can still be disputed"),
)
@counts_with(_count_end_users)
def _enforce_end_users(session: Session, cutoff: datetime, action: str) -> int:
    result = session.execute(
        update(LLMUsage)
        .where(LLMUsage.ts < cutoff, LLMUsage.end_user.is_not(None))
        .values(end_user=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Knowledge-base question log ---------------------------------------------------------------


def _count_questions(session: Session, cutoff: datetime) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(QueryLog)
            .where(QueryLog.ts < cutoff, QueryLog.question != REMOVED)
        )
        or 0
    )


@retention_category(
    "kb_questions",
    "Knowledge-base question log",
    "Questions staff asked, the answers and the passages shown.",
    actions=("delete", "anonymise"),
    suggested=(365, "delete", "GDPR Art. 5(1)(e): quality review of answers"),
)
@counts_with(_count_questions)
def _enforce_questions(session: Session, cutoff: datetime, action: str) -> int:
    due = [QueryLog.ts < cutoff, QueryLog.question != REMOVED]
    if action == "delete":
        result = session.execute(delete(QueryLog).where(*due))
    else:
        result = session.execute(
            update(QueryLog)
            .where(*due)
            .values(question=REMOVED, answer=REMOVED, passages="[]", actor="(removed)")
        )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Sign-in sessions --------------------------------------------------------------------------


def _count_sessions(session: Session, cutoff: datetime) -> int:
    return (
        session.scalar(
            select(func.count()).select_from(AuthSession).where(AuthSession.expires_at < cutoff)
        )
        or 0
    )


@retention_category(
    "auth_sessions",
    "Expired sign-in sessions",
    "Staff sign-in sessions, counted from when they expired.",
    actions=("delete",),
    suggested=(90, "delete", "Security investigation window"),
)
@counts_with(_count_sessions)
def _enforce_sessions(session: Session, cutoff: datetime, action: str) -> int:
    result = session.execute(delete(AuthSession).where(AuthSession.expires_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Consent proof of erased subjects ----------------------------------------------------------


def _erased_events(cutoff: datetime) -> ColumnElement[bool]:
    erased = select(DataSubject.id).where(DataSubject.erased_at.is_not(None))
    return and_(ConsentEvent.subject_id.in_(erased), ConsentEvent.ts < cutoff)


def _count_erased_events(session: Session, cutoff: datetime) -> int:
    return (
        session.scalar(select(func.count()).select_from(ConsentEvent).where(_erased_events(cutoff)))
        or 0
    )


@retention_category(
    "erased_consent_events",
    "Consent history of erased subjects",
    "Proof of consent kept after an erasure, until claims about it are time-barred.",
    actions=("delete",),
    suggested=(1825, "delete", "Limitation period for claims (5 years, OZ Art. 346)"),
)
@counts_with(_count_erased_events)
def _enforce_erased_events(session: Session, cutoff: datetime, action: str) -> int:
    result = session.execute(delete(ConsentEvent).where(_erased_events(cutoff)))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# --- Access-request exports --------------------------------------------------------------------


def _old_exports(cutoff: datetime) -> list[Path]:
    from core.privacy.export import exports_dir  # export registers a data source: import late

    folder = exports_dir()
    if not folder.is_dir():
        return []
    limit = cutoff.timestamp()
    return [p for p in folder.glob("*.zip") if p.stat().st_mtime < limit]


@retention_category(
    "dsr_exports",
    "Access-request export files",
    "Zip files prepared for access and portability requests: a full copy of a person's data.",
    actions=("delete",),
    suggested=(30, "delete", "GDPR Art. 5(1)(e): only until the subject has downloaded it"),
)
@counts_with(lambda session, cutoff: len(_old_exports(cutoff)))
def _enforce_exports(session: Session, cutoff: datetime, action: str) -> int:
    removed = 0
    for path in _old_exports(cutoff):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
