"""Shared pieces of the command line: the app, the consoles, progress bars, the error reporting, JSON output."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from service import errors
from service.config import Settings

app = typer.Typer(help="Plan library networks: branches, bookmobiles and outreach.", no_args_is_help=True)
console = Console(width=None if Console().is_terminal else 132)
err = Console(stderr=True, soft_wrap=True)  # one message, one line (logs and tests read it whole)
JsonOption = typer.Option("--json", help="Print the same numbers as one JSON document, for scripts and the batch.")


@contextmanager
def progress_bar() -> Iterator[Callable[[str, float], None]]:
    """Yield a progress callback (stage, fraction) that draws one bar per stage."""
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, fraction: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=1.0)
            bar.update(tasks[stage], completed=min(max(fraction, 0.0), 1.0))

        yield report


@contextmanager
def user_errors() -> Iterator[None]:
    """Report errors by the one error table (:mod:`service.errors`): the user's as a one-line message with their
    exit code (2), anything else as an internal error (exit 1); show assumption warnings once."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            kind = errors.classify(exc)
            label = "error" if kind.user else "internal error (a bug; please report it)"
            text = str(exc).strip() if kind.user else errors.message(exc)
            err.print(f"[bold red]{label}:[/] {escape(text)}", highlight=False)  # '[key]' is text, not markup
            raise typer.Exit(kind.exit_code) from None
        finally:
            seen = set()
            for w in caught:
                msg = str(w.message)
                if msg not in seen and not issubclass(w.category, DeprecationWarning | FutureWarning):
                    seen.add(msg)
                    err.print(f"[yellow]warning:[/] {escape(msg)}", highlight=False)


def settings() -> Settings:
    return Settings()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """Write ``data`` to stdout as one JSON document (NaN and infinities as null)."""
    typer.echo(json.dumps(_finite(data), default=str, indent=1))
