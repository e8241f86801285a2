"""`omni privacy ...`: subjects, the consent review queue and receipts, retention (dry run and
enforcement, for a scheduler), PII scans; data-subject requests under `omni privacy requests`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Annotated

import typer

from core.cli_support import cli_actor, reported
from core.privacy.cli_requests import requests_app

privacy_app = typer.Typer(help="Privacy: consent, requests, retention, PII.", no_args_is_help=True)
retention_app = typer.Typer(help="Retention policies and enforcement.", no_args_is_help=True)
privacy_app.add_typer(retention_app, name="retention")
privacy_app.add_typer(requests_app, name="requests")


@privacy_app.command("subjects")
def subjects(text: Annotated[str, typer.Argument(help="e-mail, name or reference")] = "") -> None:
    """Find data subjects."""
    from core.privacy.subjects import search_subjects

    with reported():
        rows = search_subjects(cli_actor(), text, limit=200)
    for s in rows:
        typer.echo(f"#{s.id:<6} {s.country}  {s.label}")
    if not rows:
        typer.echo("No data subject matches.")


@privacy_app.command("review")
def review(
    reason: Annotated[list[str] | None, typer.Option(help="stale, missing_proof, ...")] = None,
) -> None:
    """The consent review queue."""
    from core.privacy.consent_review import review_queue

    with reported():
        items = review_queue(cli_actor(), reasons=reason)
    for i in items:
        typer.echo(f"#{i.subject_id:<6} {i.purpose:<20} {', '.join(i.reasons):<32} {i.details[0]}")
    typer.echo(f"{len(items)} consent(s) need review.")


@privacy_app.command("receipt")
def receipt(subject_id: int) -> None:
    """Print a subject's consent receipt (JSON)."""
    from core.privacy.consent import consent_receipt

    with reported():
        body = consent_receipt(cli_actor(), subject_id)
    json.dump(body, sys.stdout, indent=2, ensure_ascii=False)
    typer.echo()


@retention_app.command("policies")
def policies() -> None:
    """List the retention policies."""
    from core.privacy.retention import list_policies

    with reported():
        rows = list_policies(cli_actor())
    for p in rows:
        keep = f"{p.duration_days} days, then {p.action}" if p.duration_days else "no policy"
        state = "" if p.enabled else " (disabled)"
        typer.echo(f"{p.category:<24} {keep:<28}{state} {p.legal_basis}")


@retention_app.command("dry-run")
def dry_run() -> None:
    """What enforcement would touch now; changes nothing."""
    from core.privacy.retention import dry_run as plan

    with reported():
        lines = plan(cli_actor())
    for line in lines:
        cutoff = f"before {line.cutoff:%Y-%m-%d}" if line.cutoff else ""
        typer.echo(f"{line.category:<24} {line.action:<10} {line.rows:>8} {cutoff} {line.note}")


@retention_app.command("enforce")
def enforce(
    now: Annotated[
        datetime | None, typer.Option(help="pretend it is this UTC time (for catch-up runs)")
    ] = None,
) -> None:
    """Apply every enabled policy (exit status 1 when a category failed)."""
    from datetime import UTC

    from core.privacy.retention import enforce as run_enforcement

    with reported():
        when = None
        if now is not None:  # naive means UTC; an offset is converted, not replaced
            when = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
        run = run_enforcement(cli_actor(), now=when)
    for line in run.lines:
        typer.echo(
            f"{line.category:<24} {line.action:<10} {line.rows:>8} {line.status} {line.error}"
        )
    typer.echo(f"Run #{run.id}: {run.status}, {run.rows} rows or files.")
    if run.status != "ok":
        raise typer.Exit(1)
