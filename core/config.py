"""Effective settings, from environment variables prefixed `OMNI_` (and an optional `.env`).

The defaults are the embedded topology of the design table: everything runs in-process on one
machine with no keys. Production switches each concern by setting its variable.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

ExecutorName = Literal["local", "ray"]
LLMProviderName = Literal["local", "openai", "anthropic", "openai_compatible"]
EmbeddingsName = Literal["minilm", "openai"]


class Settings(BaseSettings):
    # Keys can also come from a secrets store mounted as files (Docker/Kubernetes secrets): a
    # file named like the variable, e.g. /run/secrets/omni_openai_api_key.
    model_config = SettingsConfigDict(
        env_prefix="OMNI_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        secrets_dir=os.environ.get("OMNI_SECRETS_DIR")
        or ("/run/secrets" if Path("/run/secrets").is_dir() else None),
    )

    home: Path = Field(
        default=Path("./.omni"), description="Runtime state: database, indexes, models"
    )

    # Relational store
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default SQLite (WAL) in OMNI_HOME"
    )
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_recycle_s: int = Field(default=1800, ge=30)
    db_pool_timeout_s: int = Field(default=30, ge=1)
    db_echo: bool = False

    # Backends (design table)
    mlflow_uri: str | None = Field(
        default=None, description="default sqlite:///$OMNI_HOME/mlflow.db"
    )
    llm_default_provider: LLMProviderName = "local"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    anthropic_api_key: SecretStr | None = None
    embeddings: EmbeddingsName = "minilm"
    rag_max_file_mb: int = Field(default=50, ge=1, le=2048, description="per uploaded document")
    pii_max_file_mb: int = Field(
        default=200, ge=1, le=4096, description="per dataset scanned or anonymised for PII"
    )
    executor: ExecutorName = "local"
    ray_address: str | None = None
    redis_url: str | None = None
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    # Stripe's API host; only changed to point the SDK at a local Stripe-speaking server (tests)
    stripe_api_base: str | None = None
    # Billing: where the seller is established (decides domestic VAT vs reverse charge / OSS),
    # the currency dashboards convert to, and the days an invoice has before it is due
    billing_seller_country: str = Field(default="IE", min_length=2, max_length=2)
    billing_reporting_currency: str = Field(default="EUR", min_length=3, max_length=3)
    billing_days_until_due: int = Field(default=30, ge=0, le=365)
    # PII anonymisation: AES key (16, 24 or 32 bytes) for reversible encryption, and the salt that
    # makes hashed values linkable across a dataset (unset: a random salt per value)
    pii_encryption_key: SecretStr | None = None
    pii_hash_salt: SecretStr | None = None

    # Accounts
    password_min_length: int = Field(default=12, ge=8, le=128)
    lockout_threshold: int = Field(default=5, ge=1, le=100)
    lockout_minutes: int = Field(default=15, ge=1)
    session_ttl_minutes: int = Field(default=8 * 60, ge=1)
    session_idle_minutes: int = Field(default=60, ge=1)

    demo_seed: int = 20261126
    # The console's clock (core/clock.py): unset, the system clock; set to an instant with its
    # zone (2026-11-01T12:00:00Z), the clock reads that instant when the process starts and runs
    # on from there (a demo or screenshots as of a date; the browser tests use it)
    clock_start: datetime | None = None

    @field_validator("database_url")
    @classmethod
    def _url_parses(cls, value: str | None) -> str | None:
        if value:
            make_url(value)  # raises ArgumentError with a clear message on a malformed URL
        return value

    @field_validator("clock_start", mode="before")
    @classmethod
    def _clock_start_empty(cls, value: object) -> object:
        return None if value == "" else value  # an empty variable means "not set"

    @field_validator("clock_start")
    @classmethod
    def _clock_start_has_zone(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("OMNI_CLOCK_START needs a time zone, e.g. 2026-11-01T12:00:00Z")
        return value

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'omni.db').resolve()}"

    @property
    def effective_mlflow_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    def ensure_home(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home

    def masked(self) -> dict[str, Any]:
        """Every effective setting, with secrets and URL passwords masked, for display."""
        shown: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else None
            elif name.endswith(("_url", "_uri", "_address")) and isinstance(value, str):
                value = mask_url(value)
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            shown[name] = value
        shown["database_url"] = mask_url(self.effective_database_url)
        shown["mlflow_uri"] = mask_url(self.effective_mlflow_uri)
        return shown


def mask_url(url: str) -> str:
    """Hide the password in a URL (`postgresql://u:***@host/db`); leave other strings alone."""
    try:
        parsed = make_url(url)
    except Exception:
        return url
    if parsed.password:
        return parsed.render_as_string(hide_password=True)
    return url


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reload_settings() -> Settings:
    """Drop the cached settings (tests and the CLI's --home switch use this)."""
    get_settings.cache_clear()
    return get_settings()
