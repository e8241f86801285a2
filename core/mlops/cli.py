"""`omni mlops ...`: the registry's aliases, the drift monitors (for a scheduler: `omni mlops
monitors run --all` every hour or day), and the inference log's import of predictions and
actuals."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.cli_support import cli_actor, reported

mlops_app = typer.Typer(help="Model operations: registry, drift monitors.", no_args_is_help=True)
monitors_app = typer.Typer(help="Drift monitors.", no_args_is_help=True)
mlops_app.add_typer(monitors_app, name="monitors")


@mlops_app.command("models")
def models() -> None:
    """Registered models with their aliases."""
    from core.mlops.model_views import models as list_models

    with reported():
        found = list_models(cli_actor())
    for m in found:
        aliases = ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "no aliases"
        typer.echo(f"{m.name}: {m.versions} versions, latest v{m.latest_version}; {aliases}")
    if not found:
        typer.echo("No registered models.")


@mlops_app.command("promote")
def promote(
    name: str,
    alias: str,
    version: str,
    reason: Annotated[str, typer.Option(help="why (kept in the alias history and audit log)")],
) -> None:
    """Point a model's alias (e.g. champion) at a version."""
    from core.mlops.aliases import set_alias

    with reported():
        change = set_alias(cli_actor(), name, alias, version, reason)
    was = f" (was v{change.previous_version})" if change.previous_version else ""
    typer.echo(f"{name}@{change.alias} -> v{change.version}{was}: {change.action}.")


@mlops_app.command("rollback")
def rollback(
    name: str,
    alias: str,
    reason: Annotated[str, typer.Option(help="why")],
) -> None:
    """Point a model's alias back at the version it held before."""
    from core.mlops.aliases import roll_back

    with reported():
        change = roll_back(cli_actor(), name, alias, reason)
    typer.echo(f"{name}@{change.alias} -> v{change.version} (was v{change.previous_version}).")


@mlops_app.command("log-predictions")
def log_predictions(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    model: Annotated[str, typer.Option(help="registered model name")],
    version: Annotated[str, typer.Option(help="the version that made the predictions")],
) -> None:
    """Append predictions from CSV or Parquet (ts with time zone, prediction, the model's
    features, optionally actual)."""
    from core.mlops.inference import log_predictions as log
    from core.mlops.inference import read_table
    from core.mlops.monitors import model_features
    from core.mlops.tracking import configure_mlflow

    with reported():
        frame = read_table(path.read_bytes(), path.name)
        features = model_features(configure_mlflow(), model)
        rows = log(cli_actor(), model, version, frame, features)
    typer.echo(f"Logged {rows} predictions of {model} v{version}.")


@mlops_app.command("log-actuals")
def log_actuals(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    model: Annotated[str, typer.Option(help="registered model name")],
) -> None:
    """Attach observed outcomes (columns ts, actual) to logged predictions."""
    from core.mlops.inference import read_table, record_actuals

    with reported():
        rows = record_actuals(cli_actor(), model, read_table(path.read_bytes(), path.name))
    typer.echo(f"Recorded {rows} actuals for {model}.")


@monitors_app.command("list")
def list_monitors() -> None:
    from core.mlops.monitors import list_monitors as monitors

    with reported():
        found = monitors(cli_actor())
    for m in found:
        last = f"{m.last_window:%Y-%m-%d}" if m.last_window else "never"
        typer.echo(
            f"{m.id}: {m.name} [{m.kind}, {m.target}, {m.window}] {m.windows_computed} windows "
            f"(last {last}), {m.open_alerts} open alerts{'' if m.enabled else ', disabled'}"
        )
    if not found:
        typer.echo("No monitors.")


@monitors_app.command("run")
def run(
    monitor_id: Annotated[int | None, typer.Argument(help="monitor id (see `list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every enabled monitor")] = False,
    recompute: Annotated[bool, typer.Option(help="recheck windows already checked")] = False,
) -> None:
    """Check the windows completed since the last run and raise alerts."""
    from core.mlops.monitor_run import run_enabled, run_monitor

    if (monitor_id is None) == (not all_):
        raise typer.BadParameter("Give a monitor id or --all.")
    with reported():
        if all_:
            reports = run_enabled(cli_actor())
        else:
            assert monitor_id is not None
            reports = [run_monitor(cli_actor(), monitor_id, recompute=recompute)]
    for report in reports:
        typer.echo(report.summary)
        for line in report.skipped[:10]:
            typer.echo(f"  skipped {line}")
    if any(r.failed for r in reports):
        raise typer.Exit(1)
