"""The usage ledger: every provider attempt, cache hit and refusal, with its cost.

Rows are queued and written by one background thread in batches, so recording adds microseconds to
a call instead of a database round trip. `flush()` waits until everything queued is stored; it runs
at interpreter exit too, and tests call it before they read.
"""

from __future__ import annotations

import atexit
import csv
import io
import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert, select

from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.clock import utcnow
from core.db import unit_of_work
from core.llm.models import LLMUsage
from core.text import search_term

log = logging.getLogger(__name__)


@dataclass
class UsageRecord:
    request_id: str
    actor: str
    team: str
    alias: str
    deployment: str
    provider: str
    model: str
    status: str  # "ok" or an LLMError kind
    customer_id: int | None = None
    end_user: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_micros: int = 0
    latency_ms: float = 0.0
    cache_hit: str = ""
    price_id: int | None = None
    prompt_redacted: str | None = None
    response_redacted: str | None = None
    ts: datetime = field(default_factory=utcnow)


class LedgerWriter:
    """`linger_s`: the writer waits this long after the first queued row before it writes, so
    rows go in batches. One transaction per call would cost a millisecond of CPU per call, and
    through the GIL that millisecond lands on the next request (measured: bench/llm_router.py)."""

    def __init__(self, batch_size: int = 500, linger_s: float = 0.5) -> None:
        self._queue: queue.Queue[UsageRecord | None] = queue.Queue()
        self._batch = batch_size
        self._linger_s = linger_s
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._failed: list[UsageRecord] = []

    def record(self, row: UsageRecord) -> None:
        self._ensure_thread()
        self._queue.put(row)

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="llm-ledger", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            self._wake.wait(self._linger_s)  # `flush()` cuts the wait short
            self._wake.clear()
            batch = [first]
            while len(batch) < self._batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            rows = [r for r in batch if r is not None]
            if rows:
                self._write(rows)
            for _ in batch:
                self._queue.task_done()

    def _write(self, rows: list[UsageRecord]) -> None:
        pending = self._failed + rows
        try:
            with unit_of_work() as session:
                session.execute(insert(LLMUsage), [dict(vars(r)) for r in pending])
            self._failed = []
        except Exception:  # keep the rows and retry with the next batch; never lose usage
            log.exception("writing %d ledger rows failed; they will be retried", len(pending))
            self._failed = pending[-100_000:]

    def flush(self, timeout_s: float = 30.0) -> None:
        if self._thread is None:
            return
        done = threading.Event()
        self._wake.set()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout_s)
        if self._failed:  # the database was down: one synchronous try, then report
            self._write([])

    def backlog(self) -> int:
        """Rows accepted but not yet in the database (queued, or waiting for it to return)."""
        return self._queue.qsize() + len(self._failed)


LEDGER = LedgerWriter()
atexit.register(LEDGER.flush)


@dataclass(frozen=True)
class UsageFilter:
    since: datetime | None = None
    until: datetime | None = None
    deployments: Sequence[str] = ()
    statuses: Sequence[str] = ()
    teams: Sequence[str] = ()
    actor: str = ""
    customer_id: int | None = None
    limit: int = 5_000


def _filtered(flt: UsageFilter):  # type: ignore[no-untyped-def]
    stmt = select(LLMUsage)
    if flt.since:
        stmt = stmt.where(LLMUsage.ts >= flt.since)
    if flt.until:
        stmt = stmt.where(LLMUsage.ts < flt.until)
    if flt.deployments:
        stmt = stmt.where(LLMUsage.deployment.in_(list(flt.deployments)))
    if flt.statuses:
        stmt = stmt.where(LLMUsage.status.in_(list(flt.statuses)))
    if flt.teams:
        stmt = stmt.where(LLMUsage.team.in_(list(flt.teams)))
    if search_term(flt.actor, 128):
        stmt = stmt.where(LLMUsage.actor.contains(search_term(flt.actor, 128), autoescape=True))
    if flt.customer_id is not None:
        stmt = stmt.where(LLMUsage.customer_id == flt.customer_id)
    return stmt


def search_usage(actor: Actor, flt: UsageFilter) -> list[LLMUsage]:
    require(actor, Permission.LLM_SPEND_READ, action="llm.ledger.search")
    LEDGER.flush(5.0)
    with unit_of_work(read_only=True) as session:
        stmt = _filtered(flt).order_by(LLMUsage.ts.desc(), LLMUsage.id.desc())
        return list(session.scalars(stmt.limit(max(1, min(flt.limit, 200_000)))))


LEDGER_COLUMNS = (
    "ts",
    "request_id",
    "actor",
    "team",
    "customer_id",
    "alias",
    "deployment",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cost_micros",
    "latency_ms",
    "status",
    "cache_hit",
    "price_id",
)


def export_usage_csv(actor: Actor, flt: UsageFilter) -> tuple[str, int]:
    """CSV of matching rows (bodies never included); the export is audited."""
    from core.audit.service import record

    require(actor, Permission.LLM_LEDGER_EXPORT, action="llm.ledger.export")
    LEDGER.flush(5.0)
    with unit_of_work() as session:
        rows = list(session.scalars(_filtered(flt).order_by(LLMUsage.ts.desc()).limit(flt.limit)))
        record(session, actor, "llm.ledger.export", "llm_usage", {"rows": len(rows)})
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(LEDGER_COLUMNS)
    for r in rows:
        values = [getattr(r, c) for c in LEDGER_COLUMNS]
        values[0] = r.ts.isoformat()
        writer.writerow(values)
    return buffer.getvalue(), len(rows)


def spend_since(since: datetime, *, team: str | None = None, customer_id: int | None = None) -> int:
    """Micro-USD spent since `since` by a team or a customer (budgets read this once per period)."""
    with unit_of_work(read_only=True) as session:
        stmt = select(func.coalesce(func.sum(LLMUsage.cost_micros), 0)).where(LLMUsage.ts >= since)
        if team is not None:
            stmt = stmt.where(LLMUsage.team == team)
        if customer_id is not None:
            stmt = stmt.where(LLMUsage.customer_id == customer_id)
        return int(session.scalar(stmt) or 0)
