"""The data-source registry: each domain declares where it keeps personal data about a subject,
how to hand it over (access, portability) and how to erase it.

Access exports and erasures iterate over `registered_sources()`, so a new domain plugs in without
touching either. To add one (billing, issue 6, registers its invoices like this):

1. Write `core/<domain>/privacy_source.py`::

       @register_source
       class InvoiceSource:
           name = "billing_invoices"             # [a-z0-9_], stable: erasure steps store it
           label = "Invoices"
           description = "Invoices and their lines billed to the subject."

           def collect(self, session, subject):  # -> list of JSON-serialisable dicts
               return [row_dict(i, COLUMNS) for i in session.scalars(...)]

           def erase(self, session, subject):    # -> ErasureOutcome
               n = session.scalar(select(func.count())...)
               return ErasureOutcome("retained", n, "Kept 10 years: accounting law (...)")

2. Add the module to `SOURCE_MODULES`.

Rules for a source: `collect` and `erase` run inside the caller's transaction (do not commit);
`erase` must be idempotent (a resumed erasure may run it again after a crash) and must say, in
`reason`, why anything is kept. Work that must wait for the commit (e.g. updating an in-memory
index) goes into `ErasureOutcome.after_commit`. Slow set-up that must not happen while the
transaction holds the database (flushing queued writes, loading a model) goes into an optional
`prepare(subject_id, erasing)`, called outside any transaction before `collect` (erasing=False)
or `erase` (erasing=True). Sources run in `order`, lowest first; the subject's own profile runs
last (`LAST`), since the others find data by its e-mail, name and reference.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal, Protocol, TypeVar, overload, runtime_checkable

from sqlalchemy.orm import Session

from core.auth.actor import Actor
from core.errors import ConfigurationError
from core.privacy.models import DataSubject
from core.privacy.subjects import ERASED_NAME

Action = Literal["deleted", "anonymised", "retained", "none"]
ACTIONS: tuple[Action, ...] = ("deleted", "anonymised", "retained", "none")
PLACEHOLDER = "[erased subject]"
DEFAULT_ORDER = 100
LAST = 1000

# Imported on first use, so the registry sees every domain without importing them up front.
SOURCE_MODULES: tuple[str, ...] = (
    "core.privacy.consent_source",
    "core.privacy.request_source",
    "core.privacy.export",
    "core.audit.privacy_source",
    "core.llm.privacy_source",
    "core.rag.privacy_source",
    "core.rag.privacy_query_log",
    "core.billing.privacy_source",
    "core.privacy.profile_source",
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class ErasureOutcome:
    action: Action
    rows: int
    reason: str
    after_commit: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown erasure action {self.action!r}")


@runtime_checkable
class DataSource(Protocol):
    name: str
    label: str
    description: str

    def collect(self, session: Session, subject: DataSubject) -> list[dict[str, Any]]:
        """Everything this source holds about `subject`, as JSON-serialisable records."""
        ...

    def erase(self, session: Session, subject: DataSubject) -> ErasureOutcome:
        """Delete, anonymise or (with the legal reason) retain the subject's data."""
        ...


@dataclass(frozen=True)
class _Entry:
    order: int
    source: DataSource


_REGISTRY: dict[str, _Entry] = {}
T = TypeVar("T")


@overload
def register_source(cls: type[T], *, order: int = DEFAULT_ORDER) -> type[T]: ...


@overload
def register_source(
    cls: None = None, *, order: int = DEFAULT_ORDER
) -> Callable[[type[T]], type[T]]: ...


def register_source(
    cls: type[T] | None = None, *, order: int = DEFAULT_ORDER
) -> type[T] | Callable[[type[T]], type[T]]:
    """Class decorator (`@register_source` or `@register_source(order=...)`): registers one
    instance of the class. Registering a name again replaces the earlier source."""

    def register(klass: type[T]) -> type[T]:
        instance = klass()
        if not isinstance(instance, DataSource):
            raise TypeError(f"{klass.__name__} lacks name/label/description/collect/erase")
        if not _NAME.match(instance.name):
            raise ValueError(f"data source name {instance.name!r} must match {_NAME.pattern}")
        _REGISTRY[instance.name] = _Entry(order, instance)
        return klass

    return register if cls is None else register(cls)


def unregister_source(name: str) -> None:
    """Remove a source (tests that plug in a temporary one)."""
    _REGISTRY.pop(name, None)


def _load() -> None:
    for module in SOURCE_MODULES:
        importlib.import_module(module)


def registered_sources() -> list[DataSource]:
    """Every source, in the order exports list them and erasures run them."""
    _load()
    entries = sorted(_REGISTRY.values(), key=lambda e: (e.order, e.source.name))
    return [e.source for e in entries]


def get_source(name: str) -> DataSource:
    _load()
    entry = _REGISTRY.get(name)
    if entry is None:
        raise ConfigurationError(
            f"Unknown data source {name[:64]!r}: the registered ones are "
            f"{', '.join(sorted(_REGISTRY))}. Was its module removed from SOURCE_MODULES?"
        )
    return entry.source


def prepare(source: DataSource, subject_id: int, *, erasing: bool) -> None:
    """Run the source's optional `prepare` hook (outside any transaction)."""
    hook = getattr(source, "prepare", None)
    if callable(hook):
        hook(subject_id, erasing)


# --- helpers for source modules ------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """A value JSON can carry: times as ISO 8601, decimals as text, bytes as hex."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Enum):
        return value.value
    return value


def row_dict(row: Any, columns: Iterable[str]) -> dict[str, Any]:
    return {c: jsonable(getattr(row, c)) for c in columns}


_ACTING: ContextVar[Actor | None] = ContextVar("privacy_source_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[None]:
    """Who an export runs for, so a source can withhold what that person may not read (the
    knowledge base's collections are open per role)."""
    token = _ACTING.set(actor)
    try:
        yield
    finally:
        _ACTING.reset(token)


def acting_actor() -> Actor | None:
    return _ACTING.get()


def mention_patterns(subject: DataSubject) -> list[re.Pattern[str]]:
    """Case-insensitive patterns for the subject's e-mail and full name of two words or more (any
    run of spaces or a line break between the parts of the name). Empty once the profile is
    erased."""
    if subject.erased_at is not None or subject.full_name == ERASED_NAME:
        return []
    patterns = []
    if subject.email:
        patterns.append(re.compile(rf"(?<![\w.+-]){re.escape(subject.email)}(?![\w-])", re.I))
    parts = subject.full_name.split()
    # at least two words: a one-word "name" (a company, a project) would match far too much
    if len(parts) >= 2 and len(subject.full_name.strip()) >= 5:
        name = r"\s+".join(re.escape(p) for p in parts)
        patterns.append(re.compile(rf"(?<!\w){name}(?!\w)", re.I))
    return patterns


def mention_spans(text: str, patterns: Iterable[re.Pattern[str]]) -> list[tuple[int, int]]:
    spans = [m.span() for p in patterns for m in p.finditer(text)]
    return merge_spans(spans)


def merge_spans(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def replace_spans(text: str, spans: Iterable[tuple[int, int]], placeholder: str) -> str:
    out, last = [], 0
    for start, end in merge_spans(spans):
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out)


def scrub_mentions(text: str, subject: DataSubject) -> tuple[str, int]:
    """`text` with the subject's e-mail and name replaced by PLACEHOLDER, and how many."""
    spans = mention_spans(text, mention_patterns(subject))
    return (replace_spans(text, spans, PLACEHOLDER), len(spans)) if spans else (text, 0)
