"""`omni billing stripe push|pull|status` and `omni webhooks serve`."""

from __future__ import annotations

from typing import Annotated

import typer

from core.cli_support import cli_actor, reported

stripe_app = typer.Typer(
    help="Stripe sync: push the ledger to Stripe, pull Stripe's events.", no_args_is_help=True
)
webhooks_app = typer.Typer(help="Inbound webhooks (Stripe).", no_args_is_help=True)


@stripe_app.command("push")
def push() -> None:
    """Create in Stripe every ledger object not synced yet; safe to re-run after a failure."""
    from core.billing.stripe.push import push_all

    with reported():
        report = push_all(cli_actor())
    typer.echo(report.describe())
    for line in report.skipped:
        typer.echo(f"  skipped: {line}")
    for line in report.warnings:
        typer.secho(f"  warning: {line}", fg=typer.colors.YELLOW)


@stripe_app.command("pull")
def pull(
    page_size: Annotated[int, typer.Option(min=1, max=100, help="events per API page")] = 100,
) -> None:
    """Apply Stripe's events newer than the stored cursor (the webhook's safety net)."""
    from core.billing.stripe.pull import pull_events

    with reported():
        report = pull_events(cli_actor(), page_size=page_size)
    typer.echo(report.describe())
    if report.cursor:
        typer.echo(f"Cursor: {report.cursor}")


@stripe_app.command("status")
def status() -> None:
    """What is synced, what is pending, the events cursor and the last error."""
    from core.billing.stripe.status import sync_status

    with reported():
        st = sync_status(cli_actor())
    typer.echo(f"Stripe sync: {'on (' + st.mode + ' mode)' if st.enabled else st.message}")
    typer.echo(f"Webhooks:    {'on' if st.webhooks_enabled else st.webhooks_message}")
    typer.echo(f"{'KIND':<15} {'SYNCED':>7} {'PENDING':>8}")
    for c in st.counts:
        typer.echo(f"{c.kind:<15} {c.synced:>7} {c.pending:>8}")
    push_at = st.last_push_at.strftime("%Y-%m-%d %H:%M UTC") if st.last_push_at else "never"
    pull_at = st.last_pull_at.strftime("%Y-%m-%d %H:%M UTC") if st.last_pull_at else "never"
    typer.echo(f"Last push: {push_at}   last pull: {pull_at}   cursor: {st.events_cursor or '-'}")
    via = ", ".join(f"{n} by {k}" for k, n in sorted(st.events_by_via.items())) or "none"
    typer.echo(f"Events applied: {via}")
    if st.last_error:
        typer.secho(f"Last error ({st.last_error_operation}): {st.last_error}", fg="red")


@webhooks_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8502,
) -> None:
    """Serve POST /stripe/webhook (put it behind the TLS proxy Stripe posts to)."""
    import uvicorn

    from core.billing.stripe.client import WEBHOOKS_OFF, webhook_secret
    from core.billing.stripe.webhook import PATH, create_app

    if webhook_secret() is None:
        typer.secho(f"Warning: {WEBHOOKS_OFF}", fg=typer.colors.YELLOW, err=True)
    typer.echo(f"Stripe webhooks on http://{host}:{port}{PATH}")
    uvicorn.run(create_app(), host=host, port=port, log_level="info", proxy_headers=True)
