"""The full role x permission matrix, and denials being refused and audited."""

from __future__ import annotations

import pytest

from core.audit.service import AuditFilter, query
from core.auth.actor import Actor
from core.auth.guard import require
from core.auth.roles import PERMISSION_MATRIX, Permission, Role, has_permission, parse_role
from core.db import unit_of_work
from core.errors import PermissionDenied, ValidationError

A, C, M, F = Role.ADMIN, Role.COMPLIANCE_OFFICER, Role.ML_ENGINEER, Role.FINANCE
# Written out cell by cell on purpose: a change to the matrix must change this table too.
EXPECTED: dict[Permission, set[Role]] = {
    Permission.USERS_READ: {A},
    Permission.USERS_MANAGE: {A},
    Permission.AUDIT_READ: {A, C},
    Permission.AUDIT_EXPORT: {A, C},
    Permission.AUDIT_VERIFY: {A, C},
    Permission.PLATFORM_READ: {A},
    Permission.ORGS_READ: {A, C, F},
    Permission.DEMO_SEED: {A},
    Permission.LLM_USE: {A, C, M},
    Permission.LLM_COMPARE: {A, M},
    Permission.LLM_ROUTER_READ: {A, M},
    Permission.LLM_SPEND_READ: {A, M, F},
    Permission.LLM_ROUTER_MANAGE: {A},
    Permission.LLM_BUDGETS_MANAGE: {A, F},
    Permission.LLM_PRICES_MANAGE: {A, F},
    Permission.LLM_LEDGER_EXPORT: {A, M, F},
    Permission.RAG_QUERY: {A, C, M},
    Permission.RAG_MANAGE: {A, C, M},
    Permission.RAG_TUNE: {A, M},
    Permission.PRIVACY_READ: {A, C},
    Permission.CONSENT_MANAGE: {A, C},
    Permission.DSR_MANAGE: {A, C},
    Permission.DSR_ERASE: {A, C},
    Permission.RETENTION_MANAGE: {A, C},
    Permission.BILLING_READ: {A, F},
    Permission.BILLING_MANAGE: {A, F},
    Permission.BILLING_INVOICE: {A, F},
    Permission.BILLING_SYNC: {A, F},
    Permission.MLOPS_READ: {A, M},
    Permission.MLOPS_PROMOTE: {A, M},
    Permission.MLOPS_MONITOR: {A, M},
    Permission.MLOPS_EXPERIMENT: {A, M},
    Permission.PII_SCAN: {A, C, M},
}


def test_expected_table_covers_every_permission() -> None:
    assert set(EXPECTED) == set(Permission)
    assert set(PERMISSION_MATRIX) == set(Role)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_matrix_cell(role: Role, permission: Permission) -> None:
    assert has_permission(role, permission) == (role in EXPECTED[permission])


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_require_allows_or_denies_and_audits_denials(
    sqlite_db: str, role: Role, permission: Permission
) -> None:
    actor = Actor(f"user-{role.value}", role)
    allowed = role in EXPECTED[permission]
    if allowed:
        require(actor, permission, action="test.call", target="thing")
    else:
        with pytest.raises(PermissionDenied, match=permission.value):
            require(actor, permission, action="test.call", target="thing")
    with unit_of_work() as session:
        denied = query(session, AuditFilter(outcomes=["denied"]))
    if allowed:
        assert denied == []
    else:
        assert [(e.actor, e.action, e.target) for e in denied] == [
            (actor.username, "test.call", "thing")
        ]
        assert permission.value in denied[0].summary


def test_parse_role_lists_valid_names() -> None:
    assert parse_role(" Finance ") is Role.FINANCE
    with pytest.raises(ValidationError, match="admin, compliance_officer, ml_engineer, finance"):
        parse_role("superuser")
