"""What every `omni` command group shares: who the CLI acts as, and how errors are reported."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from core.auth.actor import Actor
from core.errors import DomainError


def cli_actor() -> Actor:
    return Actor.system(f"cli:{getpass.getuser()}")


@contextmanager
def reported() -> Iterator[None]:
    """A `DomainError` becomes its message and exit status 1, never a traceback."""
    try:
        yield
    except DomainError as exc:
        typer.secho(f"Error: {exc.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from None
