"""`omni privacy requests ...`: the data-subject request queue from the shell.

Acts as `system:cli:<user>` like every `omni` command; each change is audited. Errors print
their message and exit with status 1; `erase` also exits 1 while the erasure is not complete.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from core.cli_support import cli_actor, reported
from core.errors import ValidationError

if TYPE_CHECKING:
    from core.privacy.requests import RequestInfo

requests_app = typer.Typer(
    help="Data-subject requests (access, erasure, ...).", no_args_is_help=True
)


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date (YYYY-MM-DD or an ISO time).") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _show(info: RequestInfo) -> None:
    flag = " OVERDUE" if info.overdue else ""
    typer.echo(
        f"{info.reference}  {info.kind} ({info.regime})  {info.status}  "
        f"due {info.due_at:%Y-%m-%d} ({info.days_left:+d} days){flag}  subject #{info.subject_id}"
    )


@requests_app.command("list")
def list_cmd(
    all_: Annotated[bool, typer.Option("--all", help="closed requests too")] = False,
    overdue: Annotated[bool, typer.Option("--overdue", help="overdue only")] = False,
) -> None:
    """The queue, soonest deadline first."""
    from core.privacy.requests import STATUSES, QueueFilter, list_requests

    with reported():
        if overdue:
            flt = QueueFilter(overdue_only=True)
        else:
            flt = QueueFilter(statuses=STATUSES) if all_ else QueueFilter()
        rows = list_requests(cli_actor(), flt)
    if not rows:
        typer.echo("No requests.")
        return
    typer.echo(
        f"{'REFERENCE':<16} {'KIND':<14} {'REGIME':<6} {'STATUS':<12} {'DUE':<10} "
        f"{'DAYS':>5}  ASSIGNEE"
    )
    for r in rows:
        days = f"{r.days_left:>5}" + ("!" if r.overdue else " ")
        typer.echo(
            f"{r.reference:<16} {r.kind:<14} {r.regime:<6} {r.status:<12} {r.due_at:%Y-%m-%d} "
            f"{days} {r.assignee or '-'}"
        )


@requests_app.command("open")
def open_cmd(
    subject_id: int,
    kind: Annotated[str, typer.Argument(help="access, erasure, ..., ccpa_know, ccpa_delete")],
    regime: Annotated[str | None, typer.Option(help="GDPR or CCPA (default: the kind's)")] = None,
    received: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: now)")] = None,
    channel: str = "email",
    details: str = "",
    assignee: str | None = None,
) -> None:
    """Open a request for subject SUBJECT_ID."""
    from core.privacy.requests import open_request

    with reported():
        info = open_request(
            cli_actor(),
            subject_id=subject_id,
            kind=kind,
            regime=regime,
            received_at=_date(received),
            channel=channel,
            details=details,
            assignee=assignee,
        )
    _show(info)


@requests_app.command("verify")
def verify_cmd(
    reference: str,
    method: Annotated[str, typer.Option(help="email_link, id_document, ...")],
    note: str = "",
) -> None:
    """Record how the requester's identity was verified."""
    from core.privacy.requests import verify_identity

    with reported():
        _show(verify_identity(cli_actor(), reference, method=method, note=note))


@requests_app.command("assign")
def assign_cmd(reference: str, assignee: str) -> None:
    """Assign the request to a console user ('-' unassigns)."""
    from core.privacy.requests import assign_request

    with reported():
        _show(assign_request(cli_actor(), reference, None if assignee == "-" else assignee))


@requests_app.command("extend")
def extend_cmd(
    reference: str, reason: Annotated[str, typer.Option(help="told to the subject")]
) -> None:
    """Use the one deadline extension the regime allows."""
    from core.privacy.requests import extend_deadline

    with reported():
        _show(extend_deadline(cli_actor(), reference, reason))


@requests_app.command("export")
def export_cmd(
    reference: str,
    out: Annotated[Path | None, typer.Option(help="also copy the zip here")] = None,
) -> None:
    """Build the access/portability export (zip of JSON and CSV per data source)."""
    from core.privacy.export import export_request, read_export

    with reported():
        info = export_request(cli_actor(), reference)
        # the copy leaves the system: checked against the stored checksum and audited
        data = read_export(cli_actor(), reference)[1] if out is not None else b""
    for source, count in info.counts.items():
        typer.echo(f"  {source:<16} {count:>6} records")
    typer.echo(f"{info.path} ({info.size_bytes:,} bytes, sha256 {info.sha256})")
    if out is not None:
        out.write_bytes(data)
        typer.echo(f"Copied to {out}")


@requests_app.command("erase")
def erase_cmd(reference: str) -> None:
    """Run (or resume) the erasure across every data source."""
    from core.privacy.erasure import run_erasure

    def progress(done: int, total: int, label: str, state: str) -> None:
        if label:
            typer.echo(f"[{done + 1}/{total}] {label}...")

    with reported():
        status = run_erasure(cli_actor(), reference, progress)
    for s in status.steps:
        detail = s.error if s.status == "failed" else s.reason
        typer.echo(f"  {s.source:<16} {s.status:<8} {s.action or '-':<11} {s.rows:>6}  {detail}")
    typer.echo(status.message)
    if status.state != "completed":
        raise typer.Exit(1)


@requests_app.command("close")
def close_cmd(
    reference: str, resolution: Annotated[str, typer.Option(help="how it was answered")]
) -> None:
    """Close an answered (non-erasure) request."""
    from core.privacy.requests import close_request

    with reported():
        _show(close_request(cli_actor(), reference, resolution))


@requests_app.command("reject")
def reject_cmd(
    reference: str, reason: Annotated[str, typer.Option(help="told to the subject")]
) -> None:
    """Reject a request with the reason."""
    from core.privacy.requests import reject_request

    with reported():
        _show(reject_request(cli_actor(), reference, reason))


@requests_app.command("certificate")
def certificate_cmd(
    reference: str, out: Annotated[Path | None, typer.Option(help="write the JSON here")] = None
) -> None:
    """Print (or save) the erasure completion certificate, after checking its digest."""
    from core.privacy.erasure import get_certificate

    with reported():
        certificate = get_certificate(cli_actor(), reference)
    text = json.dumps(certificate, indent=2, ensure_ascii=False)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"Wrote {out} (sha256 {certificate['sha256']})")
