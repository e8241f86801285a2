"""Each role's sidebar holds exactly its pages, in persona sections."""

from __future__ import annotations

import pytest

from console.navigation import PAGES, SECTIONS, pages_for, sections_for
from core.auth.roles import Role

PRIVACY_PAGES = {"consent", "data_requests", "retention", "pii_scanner", "dataset_anonymiser"}
MLOPS_PAGES = {"models", "monitoring", "experiments"}
BILLING_PAGES = {"revenue", "billing_customers", "billing_invoices", "billing_plans", "stripe_sync"}
EXPECTED = {
    Role.ADMIN: {
        "home",
        "organisations",
        "account",
        "audit",
        "users",
        "platform",
        "llm_compare",
        "llm_router",
        "llm_costs",
        "knowledge_base",
        "kb_documents",
        *PRIVACY_PAGES,
        *BILLING_PAGES,
        *MLOPS_PAGES,
    },
    Role.COMPLIANCE_OFFICER: {
        "home",
        "organisations",
        "account",
        "audit",
        "knowledge_base",
        "kb_documents",
        *PRIVACY_PAGES,
    },
    Role.ML_ENGINEER: {
        "home",
        "account",
        "llm_compare",
        "llm_router",
        "knowledge_base",
        "kb_documents",
        "pii_scanner",
        "dataset_anonymiser",
        *MLOPS_PAGES,
    },
    Role.FINANCE: {"home", "organisations", "account", "llm_costs", *BILLING_PAGES},
}


@pytest.mark.parametrize("role", list(Role))
def test_pages_per_role(role: Role) -> None:
    assert {p.key for p in pages_for(role)} == EXPECTED[role]


def test_every_page_has_a_script_and_a_known_section() -> None:
    for spec in PAGES:
        assert spec.script.is_file(), spec.script
        assert spec.section in SECTIONS


def test_sections_drop_empty_groups() -> None:
    sections = sections_for(Role.FINANCE)
    assert list(sections) == ["", "Finance"]
    assert list(sections_for(Role.ADMIN)) == [
        "",
        "Compliance",
        "Knowledge",
        "ML",
        "Finance",
        "Admin",
    ]
