"""The `omni` command line, driven as an operator would."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from core.auth.service import sign_in
from core.cli import app
from core.errors import AuthenticationFailed
from core.schema import head_revision

runner = CliRunner()


def _ok(*args: str, stdin: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def test_users_lifecycle(sqlite_db: str) -> None:
    out = _ok("users", "create", "carla", "--role", "compliance_officer", "--email", "c@x.io")
    generated = out.split("must change it): ")[1].strip()
    assert sign_in("carla", generated).must_change_password
    assert "carla" in _ok("users", "list") and "compliance_officer" in _ok("users", "list")
    _ok("users", "disable", "carla")
    assert "disabled" in _ok("users", "list", "--search", "carl")
    with pytest.raises(AuthenticationFailed, match="disabled"):
        sign_in("carla", generated)
    _ok("users", "enable", "carla")
    _ok("users", "reset-password", "carla", "--password-stdin", stdin="a brand new passphrase\n")
    assert sign_in("carla", "a brand new passphrase")
    _ok("users", "set-role", "carla", "finance")
    assert "finance" in _ok("users", "list")


def test_errors_are_messages_not_tracebacks(sqlite_db: str) -> None:
    result = runner.invoke(app, ["users", "create", "x" * 80, "--role", "admin"])
    assert result.exit_code == 1 and "Error: Invalid username" in result.output
    result = runner.invoke(app, ["users", "create", "okname", "--role", "wizard"])
    assert result.exit_code == 1 and "Unknown role 'wizard'" in result.output
    result = runner.invoke(app, ["users", "disable", "ghost"])
    assert result.exit_code == 1 and "No user named 'ghost'" in result.output


def test_config_show_masks_secrets(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.config import reload_settings

    monkeypatch.setenv("OMNI_STRIPE_API_KEY", "sk_test_should_not_print")
    reload_settings()
    out = _ok("config", "show")
    assert "OMNI_STRIPE_API_KEY" in out and "********" in out
    assert "sk_test_should_not_print" not in out
    assert "sk_test_should_not_print" not in _ok("config", "show", "--json")


def test_db_upgrade_and_demo_seed(sqlite_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.integration.test_demo_tenant import only_compared

    # the command's wiring; what every seeder writes is test_demo_tenant.py's
    only_compared(monkeypatch, "users", "organisations")
    assert f"revision {head_revision()}" in _ok("db", "upgrade")
    out = _ok("demo", "seed", "--if-empty")
    assert "2000 customer organisations" in out and "demo-admin" in out
    assert "skipped" in _ok("demo", "seed", "--if-empty")
    assert runner.invoke(app, ["demo", "seed"]).exit_code == 1


def test_audit_export_writes_csv(sqlite_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _ok("users", "create", "ann", "--role", "finance")
    out_file = tmp_path / "audit.csv"
    assert "Wrote 1 entries" in _ok("audit", "export", str(out_file))
    lines = out_file.read_text().splitlines()
    assert lines[0].startswith("seq,ts,actor") and "users.create" in lines[1]


def test_unmigrated_database_gets_an_actionable_message(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import use_home

    use_home(monkeypatch, tmp_path)  # no upgrade: the schema is missing
    result = runner.invoke(app, ["users", "create", "ann", "--role", "finance"])
    assert result.exit_code == 1
    assert "run `omni db upgrade`" in result.output
