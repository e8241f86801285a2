"""`omni audit verify`: walk the chain and report the first link that does not hold."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.audit.chain import GENESIS_HASH, entry_canonical, link_hash
from core.audit.models import AuditEntry, AuditHead
from core.audit.service import record_now
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import Permission
from core.db import unit_of_work


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""

    def describe(self) -> str:
        if self.ok:
            return f"Audit chain intact: {self.checked} entries verified."
        return f"Audit chain BROKEN at entry {self.broken_seq}: {self.reason}"


def verify_chain(session: Session) -> VerifyReport:
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    stmt = select(AuditEntry).order_by(AuditEntry.seq).execution_options(yield_per=2000)
    for entry in session.scalars(stmt):
        if entry.seq != expected_seq:
            reason = (
                f"entries {expected_seq}..{entry.seq - 1} are missing (deleted rows)"
                if entry.seq > expected_seq
                else "sequence number repeats or goes back (inserted row)"
            )
            return VerifyReport(False, checked, expected_seq, reason)
        if entry.prev_hash != prev_hash:
            return VerifyReport(
                False,
                checked,
                entry.seq,
                "its previous-hash does not match the entry before it "
                "(a row was inserted, deleted or rewritten)",
            )
        recomputed = link_hash(prev_hash, entry_canonical(entry))
        if recomputed != entry.hash:
            return VerifyReport(
                False,
                checked,
                entry.seq,
                "its contents do not match its hash (the row was changed)",
            )
        prev_hash, expected_seq, checked = entry.hash, expected_seq + 1, checked + 1
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    if head_seq != checked or head_hash != prev_hash:
        return VerifyReport(
            False,
            checked,
            checked + 1 if head_seq > checked else head_seq,
            f"the log ends at entry {checked} but its head records entry "
            f"{head_seq} (newest rows deleted, or the head was changed)",
        )
    return VerifyReport(True, checked)


def verify(actor: Actor) -> VerifyReport:
    """Permissioned entry point; a broken chain is itself recorded (as a new, valid entry)."""
    require(actor, Permission.AUDIT_VERIFY, action="audit.verify")
    with unit_of_work(read_only=True) as session:
        report = verify_chain(session)
    if not report.ok:
        record_now(
            actor,
            "audit.verify",
            "audit_log",
            {"broken_seq": report.broken_seq, "reason": report.reason},
            outcome="failed",
        )
    return report
