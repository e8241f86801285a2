"""The hash chain: canonical form of an entry and the link that binds it to the previous one."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.audit.models import AuditEntry

GENESIS_HASH = "0" * 64


def canonical_summary(summary: dict[str, Any]) -> str:
    return json.dumps(
        summary, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )


def canonical_entry(
    *,
    seq: int,
    ts: datetime,
    actor: str,
    actor_role: str,
    action: str,
    target: str,
    outcome: str,
    summary: str,
) -> str:
    """Every stored field but the hashes, in one unambiguous JSON string."""
    return json.dumps(
        {
            "seq": seq,
            "ts": ts.isoformat(timespec="microseconds"),
            "actor": actor,
            "actor_role": actor_role,
            "action": action,
            "target": target,
            "outcome": outcome,
            "summary": summary,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def link_hash(prev_hash: str, canonical: str) -> str:
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


def entry_canonical(entry: AuditEntry) -> str:
    return canonical_entry(
        seq=entry.seq,
        ts=entry.ts,
        actor=entry.actor,
        actor_role=entry.actor_role,
        action=entry.action,
        target=entry.target,
        outcome=entry.outcome,
        summary=entry.summary,
    )
