"""Roles, permissions, and the one matrix that maps one to the other.

Later domains add their permissions here, so the full matrix stays readable in one place and the
unit tests can check every cell.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    COMPLIANCE_OFFICER = "compliance_officer"
    ML_ENGINEER = "ml_engineer"
    FINANCE = "finance"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Permission(StrEnum):
    USERS_READ = "users.read"
    USERS_MANAGE = "users.manage"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_VERIFY = "audit.verify"
    PLATFORM_READ = "platform.read"
    ORGS_READ = "orgs.read"
    DEMO_SEED = "demo.seed"
    LLM_USE = "llm.use"  # send prompts through the gateway (directly or via RAG, evaluations)
    LLM_COMPARE = "llm.compare"
    LLM_ROUTER_READ = "llm.router.read"  # deployments, health, configuration
    LLM_SPEND_READ = "llm.spend.read"  # ledger, traffic, spend, prices, budgets
    LLM_ROUTER_MANAGE = "llm.router.manage"  # edit deployments/aliases, reset circuits
    LLM_BUDGETS_MANAGE = "llm.budgets.manage"
    LLM_PRICES_MANAGE = "llm.prices.manage"
    LLM_LEDGER_EXPORT = "llm.ledger.export"
    RAG_QUERY = "rag.query"  # search and ask the collections open to one's role
    RAG_MANAGE = "rag.manage"  # create collections, upload and delete documents, read query logs
    RAG_TUNE = "rag.tune"  # evaluate retrieval, fine-tune embedding models
    PRIVACY_READ = "privacy.read"  # data subjects, consent state and history, requests, policies
    CONSENT_MANAGE = "privacy.consent.manage"  # record consent events, bulk review actions
    DSR_MANAGE = "privacy.dsr.manage"  # open, verify, assign, extend, export, close requests
    DSR_ERASE = "privacy.dsr.erase"  # run an erasure across every data source
    RETENTION_MANAGE = "privacy.retention.manage"  # edit policies, enforce retention
    PII_SCAN = "privacy.pii.scan"  # scan text, datasets and documents; anonymise datasets
    BILLING_READ = "billing.read"  # customers, plans, invoices, revenue and margin dashboards
    BILLING_MANAGE = "billing.manage"  # catalogue, customers, subscriptions, coupons, usage import
    BILLING_INVOICE = "billing.invoice"  # invoice runs, finalise, void, credit notes, payments
    BILLING_SYNC = "billing.sync"  # push to Stripe, pull Stripe's events
    MLOPS_READ = "mlops.read"  # registered models, runs, monitors, drift, alerts, experiments
    MLOPS_PROMOTE = "mlops.promote"  # set, move or remove a model alias (promote, roll back)
    MLOPS_MONITOR = "mlops.monitor"  # configure and run drift monitors, acknowledge alerts
    MLOPS_EXPERIMENT = "mlops.experiment"  # create, feed and stop A/B experiments


_EVERYTHING = frozenset(Permission)

PERMISSION_MATRIX: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: _EVERYTHING,
    Role.COMPLIANCE_OFFICER: frozenset(
        {
            Permission.AUDIT_READ,
            Permission.AUDIT_EXPORT,
            Permission.AUDIT_VERIFY,
            Permission.ORGS_READ,
            Permission.LLM_USE,
            Permission.RAG_QUERY,
            Permission.RAG_MANAGE,
            Permission.PRIVACY_READ,
            Permission.CONSENT_MANAGE,
            Permission.DSR_MANAGE,
            Permission.DSR_ERASE,
            Permission.RETENTION_MANAGE,
            Permission.PII_SCAN,
        }
    ),
    Role.ML_ENGINEER: frozenset(
        {
            Permission.LLM_USE,
            Permission.LLM_COMPARE,
            Permission.LLM_ROUTER_READ,
            Permission.LLM_SPEND_READ,
            Permission.LLM_LEDGER_EXPORT,
            Permission.RAG_QUERY,
            Permission.RAG_MANAGE,
            Permission.RAG_TUNE,
            Permission.PII_SCAN,  # training data is anonymised before it reaches a model
            Permission.MLOPS_READ,
            Permission.MLOPS_PROMOTE,
            Permission.MLOPS_MONITOR,
            Permission.MLOPS_EXPERIMENT,
        }
    ),
    Role.FINANCE: frozenset(
        {
            Permission.ORGS_READ,
            Permission.LLM_SPEND_READ,
            Permission.LLM_BUDGETS_MANAGE,
            Permission.LLM_PRICES_MANAGE,
            Permission.LLM_LEDGER_EXPORT,
            Permission.BILLING_READ,
            Permission.BILLING_MANAGE,
            Permission.BILLING_INVOICE,
            Permission.BILLING_SYNC,
        }
    ),
}


def has_permission(role: Role, permission: Permission) -> bool:
    return permission in PERMISSION_MATRIX.get(role, frozenset())


def parse_role(value: str) -> Role:
    """Role from user input, with an error that lists the valid names."""
    try:
        return Role(value.strip().lower())
    except ValueError:
        from core.errors import ValidationError

        valid = ", ".join(r.value for r in Role)
        raise ValidationError(f"Unknown role {value[:40]!r}. Valid roles: {valid}.") from None
