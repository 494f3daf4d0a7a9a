"""``branchnet batch``: the nightly batch of changed scenarios (see :mod:`service.batch`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from service import errors
from service.cli._common import JsonOption, app, err, print_json, settings


@app.command()
def batch(
    org: Annotated[str | None, typer.Option(help="Only this organisation's scenarios (its name).")] = None,
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only this scenario id (repeatable).")
    ] = None,
    executor: Annotated[str, typer.Option(help="processes (this machine) or dask.")] = "processes",
    workers: Annotated[int, typer.Option(help="Scenarios at once (local pool or LocalCluster workers).")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="An existing Dask scheduler, tcp://HOST:8786 [default: a LocalCluster].")
    ] = None,
    force: Annotated[bool, typer.Option(help="Recompute every selected scenario, changed or not.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Say what would run and why; run nothing.")] = False,
    retries: Annotated[int, typer.Option(help="Retries of a scenario whose worker crashed or was lost.")] = 1,
    timeout: Annotated[float, typer.Option(help="Seconds allowed per scenario.")] = 3600.0,
    report: Annotated[Path | None, typer.Option(help="Folder for batch-report.json and .html.")] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Recompute every stored scenario whose inputs changed (scenario, region files, solver settings, versions).

    Exit codes: 0 all succeeded or skipped, 1 some failed, 2 usage or configuration error, 3 nothing could run,
    75 another batch holds the lock.
    """
    from service.batch.run import BatchOptions, run_batch

    config = settings()
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=err, transient=False)  # fmt: skip
    task_id: Any = None
    failures = 0

    def on_event(kind: str, data: dict[str, Any]) -> None:
        nonlocal task_id, failures
        if kind == "selected":
            err.print(f"batch: {data['total']} scenario(s), {data['recompute']} to recompute, {data['skipped']} "
                      "unchanged", highlight=False)  # fmt: skip
            if data["recompute"] and not dry_run:
                bar.start()
                task_id = bar.add_task("scenarios", total=data["recompute"])
        elif kind == "executor":
            where = data.get("dashboard")
            err.print(f"executor: {data}" + (f"; Dask dashboard: {where}" if where else ""), highlight=False)
        elif kind in ("done", "retry"):
            line = {"ts": round(time.time(), 3), "event": f"scenario {kind}", **data}
            bar.console.print(json.dumps(line, default=str), highlight=False, soft_wrap=True)
            if kind == "done" and task_id is not None:
                failures += data["status"] == "failed"
                bar.update(task_id, advance=1, description=f"scenarios ({failures} failed)")

    try:
        options = BatchOptions(org=org, scenario_ids=tuple(scenario or ()), executor=executor,  # type: ignore[arg-type]
                               workers=workers, scheduler=scheduler, force=force, dry_run=dry_run, retries=retries,
                               timeout_s=timeout, report_dir=report)  # fmt: skip
        outcome = run_batch(config, options, on_event=on_event)
    except Exception as exc:  # usage, configuration or lock: by the error table (exit code 2, or 75 when locked)
        kind = errors.classify(exc)
        err.print(f"[bold red]{'error' if kind.user else 'internal error'}:[/] {errors.message(exc)}", highlight=False)
        raise typer.Exit(kind.exit_code) from None
    finally:
        if bar.live.is_started:
            bar.stop()
    if as_json:
        print_json(outcome.report)
    else:
        c = outcome.report["counts"]
        err.print(f"batch {outcome.batch_id or '(dry run)'}: {c['recomputed']} recomputed ({c['succeeded']} "
                  f"succeeded, {c['failed']} failed, {c['retried']} retried), {c['skipped']} skipped in "
                  f"{outcome.report['wall_s']:.1f} s (parallelism {outcome.report['parallelism']:.2f}); report: "
                  + ", ".join(str(p) for p in outcome.paths), highlight=False)  # fmt: skip
        for row in outcome.report["scenarios"]:
            if dry_run or row["status"] == "failed":
                err.print(f"  {row['status']:<9} {row['org']} / {row['name']}: {'; '.join(row['reasons'])}"
                          + (f" -- {row['error']}" if row.get("error") else ""), highlight=False)  # fmt: skip
    raise typer.Exit(outcome.exit_code)
