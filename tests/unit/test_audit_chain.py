from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from core.audit.chain import GENESIS_HASH, canonical_entry, canonical_summary, link_hash

FIELDS = {
    "seq": 1,
    "ts": datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    "actor": "ann",
    "actor_role": "admin",
    "action": "users.create",
    "target": "bob",
    "outcome": "ok",
    "summary": canonical_summary({"role": "finance", "email": None}),
}


def test_canonical_summary_is_order_independent() -> None:
    assert (
        canonical_summary({"b": 1, "a": "é"})
        == canonical_summary({"a": "é", "b": 1})
        == '{"a":"é","b":1}'
    )


def test_link_hash_is_sha256_of_previous_plus_canonical() -> None:
    canonical = canonical_entry(**FIELDS)
    assert (
        link_hash(GENESIS_HASH, canonical)
        == hashlib.sha256((GENESIS_HASH + canonical).encode()).hexdigest()
    )


def test_every_field_changes_the_hash() -> None:
    base = link_hash(GENESIS_HASH, canonical_entry(**FIELDS))
    changes = {
        "seq": 2,
        "ts": datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        "actor": "ann2",
        "actor_role": "finance",
        "action": "users.delete",
        "target": "bob2",
        "outcome": "denied",
        "summary": "{}",
    }
    for field, value in changes.items():
        assert link_hash(GENESIS_HASH, canonical_entry(**{**FIELDS, field: value})) != base, field
    assert link_hash("1" * 64, canonical_entry(**FIELDS)) != base
