from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.config import Settings, mask_url


def test_defaults_are_the_embedded_topology(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, _env_file=None)
    assert settings.effective_database_url == f"sqlite:///{tmp_path.resolve() / 'omni.db'}"
    assert settings.effective_mlflow_uri == f"sqlite:///{tmp_path.resolve() / 'mlflow.db'}"
    assert (settings.executor, settings.llm_default_provider, settings.embeddings) == (
        "local",
        "local",
        "minilm",
    )
    assert settings.stripe_api_key is None and settings.redis_url is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_EXECUTOR", "ray")
    monkeypatch.setenv("OMNI_DATABASE_URL", "postgresql+psycopg://u:pw@db/omni")
    settings = Settings(_env_file=None)
    assert settings.executor == "ray"
    assert settings.effective_database_url.endswith("@db/omni")


def test_unknown_backend_name_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_EXECUTOR", "kubernetes")
    with pytest.raises(ValidationError, match="local"):
        Settings(_env_file=None)


def test_secrets_and_url_passwords_are_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMNI_STRIPE_API_KEY", "sk_test_123secret")
    monkeypatch.setenv("OMNI_OPENAI_API_KEY", "sk-abc-secret")
    monkeypatch.setenv("OMNI_DATABASE_URL", "postgresql+psycopg://omni:hunter2@db:5432/omni")
    monkeypatch.setenv("OMNI_REDIS_URL", "redis://:redispw@cache:6379/0")
    shown = Settings(_env_file=None).masked()
    text = repr(shown)
    for secret in ("sk_test_123secret", "sk-abc-secret", "hunter2", "redispw"):
        assert secret not in text
    assert shown["stripe_api_key"] == "********"
    assert shown["database_url"] == "postgresql+psycopg://omni:***@db:5432/omni"


def test_mask_url_leaves_plain_values() -> None:
    assert mask_url("auto") == "auto"
    assert mask_url("sqlite:////x/omni.db") == "sqlite:////x/omni.db"
