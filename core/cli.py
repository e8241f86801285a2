"""`omni`: the operator's command line. Acts as `system:cli` with admin rights; every change is
audited like a console action."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from core.billing.cli import billing_app
from core.billing.stripe.cli import webhooks_app
from core.cli_support import cli_actor, reported
from core.config import get_settings
from core.mlops.cli import mlops_app
from core.privacy.cli import privacy_app
from core.rag.cli import rag_app

app = typer.Typer(
    help="Omni Ops Console command line.", no_args_is_help=True, pretty_exceptions_enable=False
)
config_app = typer.Typer(help="Settings.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="Console accounts.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo tenant.", no_args_is_help=True)
for sub, name in (
    (config_app, "config"),
    (db_app, "db"),
    (users_app, "users"),
    (audit_app, "audit"),
    (demo_app, "demo"),
    (rag_app, "rag"),
    (privacy_app, "privacy"),
    (billing_app, "billing"),
    (mlops_app, "mlops"),
    (webhooks_app, "webhooks"),
):
    app.add_typer(sub, name=name)


_actor = cli_actor
_reported = reported


@config_app.command("show")
def config_show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the effective settings; secrets and URL passwords are masked."""
    shown = get_settings().masked()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    width = max(len(k) for k in shown)
    for key, value in shown.items():
        typer.echo(f"OMNI_{key.upper():<{width}}  {'' if value is None else value}")


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the Alembic migrations up to REVISION (default: the newest)."""
    from core.schema import current_revision, upgrade

    get_settings().ensure_home()
    upgrade(revision=revision)
    typer.echo(f"Database schema at revision {current_revision()}.")


@db_app.command("current")
def db_current() -> None:
    from core.schema import current_revision, head_revision

    typer.echo(f"current: {current_revision()}  head: {head_revision()}")


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[str, typer.Option(help="admin, compliance_officer, ml_engineer or finance")],
    email: Annotated[str | None, typer.Option()] = None,
    full_name: Annotated[str, typer.Option("--name")] = "",
    password_stdin: Annotated[
        bool, typer.Option(help="read the password from standard input")
    ] = False,
) -> None:
    """Create an account. Without --password-stdin a password is generated and printed once."""
    from core.auth.service import create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _reported():
        user, generated = create_user(
            _actor(), username, role, email=email, full_name=full_name, password=password
        )
    typer.echo(f"Created {user.username} ({user.role.value}).")
    if generated:
        typer.echo(f"Password (shown once; the user must change it): {generated}")


@users_app.command("list")
def users_list(search: str = "") -> None:
    from core.auth.service import list_users

    with _reported():
        rows = list_users(_actor(), search)
    typer.echo(f"{'USERNAME':<24} {'ROLE':<20} {'STATE':<9} {'LAST SIGN-IN':<20} E-MAIL")
    for u in rows:
        state = "disabled" if not u.is_active else ("locked" if u.is_locked else "active")
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if u.last_login_at else "never"
        typer.echo(f"{u.username:<24} {u.role.value:<20} {state:<9} {last:<20} {u.email or ''}")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account and end its sessions."""
    from core.auth.service import set_active

    with _reported():
        set_active(_actor(), username, False)
    typer.echo(f"Disabled {username}; its sessions are ended.")


@users_app.command("enable")
def users_enable(username: str) -> None:
    from core.auth.service import set_active

    with _reported():
        set_active(_actor(), username, True)
    typer.echo(f"Enabled {username}.")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    from core.auth.service import unlock

    with _reported():
        unlock(_actor(), username)
    typer.echo(f"Unlocked {username}.")


@users_app.command("set-role")
def users_set_role(username: str, role: str) -> None:
    from core.auth.service import set_role

    with _reported():
        set_role(_actor(), username, role)
    typer.echo(f"{username} is now {role}; their sessions are ended.")


@users_app.command("reset-password")
def users_reset_password(
    username: str,
    password_stdin: Annotated[
        bool, typer.Option(help="read the new password from standard input")
    ] = False,
) -> None:
    """Set a new password (generated and printed once unless given), unlock, end sessions."""
    from core.auth.service import reset_password

    given = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with _reported():
        password = reset_password(_actor(), username, given)
    typer.echo(f"Password of {username} reset; their sessions are ended.")
    if not given:
        typer.echo(f"New password (shown once; the user must change it): {password}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain; exit 1 and name the first broken entry if any row was changed,
    inserted or deleted."""
    from core.audit.verify import verify_chain
    from core.db import unit_of_work

    with _reported(), unit_of_work(read_only=True) as session:
        report = verify_chain(session)
    typer.secho(report.describe(), fg=typer.colors.GREEN if report.ok else typer.colors.RED)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(out: Path, limit: int = 100_000) -> None:
    """Write the newest LIMIT entries as CSV."""
    from core.audit.service import AuditFilter, query, record, to_csv
    from core.db import unit_of_work

    with _reported(), unit_of_work() as session:
        entries = query(session, AuditFilter(limit=limit))
        out.write_text(to_csv(entries), encoding="utf-8")
        record(session, _actor(), "audit.export", str(out)[:256], {"rows": len(entries)})
    typer.echo(f"Wrote {len(entries)} entries to {out}.")


@demo_app.command("seed")
def demo_seed(if_empty: Annotated[bool, typer.Option("--if-empty")] = False) -> None:
    """Seed the demo tenant (users, organisations, and what each domain adds)."""
    from core.demo.registry import seed_demo

    with _reported():
        report = seed_demo(_actor(), if_empty=if_empty)
    for line in report.lines:
        typer.echo(line)
    if report.credentials:
        typer.echo("")
        typer.secho(
            "Demo accounts (passwords are shown only now; reset with "
            "`omni users reset-password NAME`):",
            bold=True,
        )
        for username, password in report.credentials.items():
            typer.echo(f"  {username:<18} {password}")


if __name__ == "__main__":
    app()
