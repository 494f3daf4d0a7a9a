"""``branchnet timetable``: check and re-plan a council's mobile library timetable (Libraries Hacked CSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from service.cli._common import JsonOption, app, console, print_json, settings, user_errors

timetable_app = typer.Typer(help="Check and re-plan mobile library timetables (mobile-library-stops CSV).",
                            no_args_is_help=True)  # fmt: skip
app.add_typer(timetable_app, name="timetable")

ModeOption = Annotated[str, typer.Option(help="same-day: every stop keeps its weekday; free: stops may move days.")]
TravelOption = Annotated[str, typer.Option(help="crowfly (haversine x circuity / speed) or network (needs --region).")]
CircuityOption = Annotated[float, typer.Option(help="Crow-fly model: road km per straight-line km.")]
SpeedOption = Annotated[float, typer.Option("--speed-kmh", help="Crow-fly model: driving speed, km/h.")]
RegionOption = Annotated[str | None, typer.Option(help="Stored region whose drive graph gives network times.")]
StrictOption = Annotated[
    bool,
    typer.Option(
        help="Refuse an inconsistent file (a route on two weekdays, an arrival after its departure, a start date off "
        "its weekday) instead of repairing it with a warning naming the rows."
    ),
]


def _travel_model(travel: str, circuity: float, speed_kmh: float, region: str | None) -> Any:
    from service.plans.replan import TravelModel

    if travel not in ("crowfly", "network"):
        raise typer.BadParameter(f"--travel {travel!r}: use crowfly or network")
    return TravelModel(travel, circuity, speed_kmh, region, settings().regions_dir)  # type: ignore[arg-type]


def _mode(mode: str) -> Any:
    if mode not in ("same-day", "free"):
        raise typer.BadParameter(f"--mode {mode!r}: use same-day or free")
    return mode


def _print_repairs(repairs: list[str]) -> None:
    """Say how many repairs reading the file took (each was warned above, naming its rows)."""
    if repairs:
        console.print(f"[yellow]repaired[/] {len(repairs)} inconsistency(ies) while reading (named in the warnings "
                      "above; --strict refuses them)", highlight=False)  # fmt: skip


@timetable_app.command("replan")
def timetable_replan(
    stops: Annotated[Path, typer.Argument(help="Timetable CSV (Libraries Hacked mobile-library-stops schema).")],
    out: Annotated[Path, typer.Option(help="Where to write the new timetable CSV.")],
    mode: ModeOption = "same-day",
    travel: TravelOption = "crowfly",
    circuity: CircuityOption = 1.3,
    speed_kmh: SpeedOption = 40.0,
    region: RegionOption = None,
    time_limit: Annotated[float | None, typer.Option(help="Solver time limit for the whole timetable (s).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
    calendars: Annotated[
        Path | None, typer.Option(help="Folder for one .ics calendar per vehicle [default: OUT's name + _ics/].")
    ] = None,
    geojson: Annotated[
        Path | None, typer.Option(help="GeoJSON of the route-days as lines [default: OUT's name + _routes.geojson].")
    ] = None,
    strict: StrictOption = False,
) -> None:
    """Re-plan a timetable to cut driving; print the score, old and new cycle driving and the validity check.

    Writes the new CSV, one .ics calendar per vehicle and the route lines (along the roads with --travel network).
    """
    from optimizer.params import SolveParams
    from service.plans.replan import replan_file

    config = settings()
    model, mode_ = _travel_model(travel, circuity, speed_kmh, region), _mode(mode)
    params = SolveParams(
        time_limit_s=time_limit or config.time_limit_s,
        seed=config.seed if seed is None else seed,
        workers=config.workers,
    )
    with user_errors():
        report = replan_file(
            stops, out, mode=mode_, travel=model, params=params,
            calendars=calendars or out.with_name(out.stem + "_ics"),
            geojson=geojson or out.with_name(out.stem + "_routes.geojson"),
            repair=not strict,
        )  # fmt: skip
    d = report.as_dict()
    _print_repairs(d["repairs"])
    console.print(f"travel model: {d['travel']}", highlight=False)
    console.print(
        f"cycle driving: real {d['real_cycle_driving_h']:,.2f} h -> new {d['new_cycle_driving_h']:,.2f} h "
        f"({d['mode']} mode)",
        highlight=False,
    )
    console.print(
        f"score {d['score']:.3f} (new / real; no valid {d['mode']} timetable scores below {d['bound_score']:.3f})",
        highlight=False,
    )
    if d["scored"]:
        console.print("benchmark: scored", highlight=False)
    else:
        console.print(f"benchmark: excluded ({d['excluded_reason']})", highlight=False)
    if d["valid"]:
        console.print("[green]valid[/]: every check of the project's evaluator passes")
    else:
        console.print(f"[red]INVALID[/]: {len(d['violations'])} violation(s)")
        for v in d["violations"][:20]:
            console.print(f"  {v}", highlight=False)
    more = f" and {len(report.written) - 4} more" if len(report.written) > 4 else ""
    wrote = ", ".join(str(p) for p in report.written[:4]) + more
    console.print(f"solved in {d['runtime_s']:.1f} s; wrote {wrote}", highlight=False)
    if not d["valid"]:
        raise typer.Exit(1)


@timetable_app.command("check")
def timetable_check(
    stops: Annotated[Path, typer.Argument(help="Timetable CSV to evaluate.")],
    against: Annotated[Path | None, typer.Option(help="The original timetable: validate STOPS against it.")] = None,
    mode: ModeOption = "same-day",
    travel: TravelOption = "crowfly",
    circuity: CircuityOption = 1.3,
    speed_kmh: SpeedOption = 40.0,
    region: RegionOption = None,
    strict: StrictOption = False,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Print the evaluator's report: cycle driving, span limit, overlaps, clashes; with --against, violations."""
    from service.plans.replan import check_file

    model, mode_ = _travel_model(travel, circuity, speed_kmh, region), _mode(mode)
    with user_errors():
        result = check_file(stops, against=against, mode=mode_, travel=model, repair=not strict)
    violations = result["violations"]
    if as_json:
        print_json(result)
        if violations:
            raise typer.Exit(1)
        return
    _print_repairs(result["repairs"])
    console.print(result["report"], highlight=False)
    if violations is not None:
        if violations:
            console.print(f"[red]INVALID[/] against {against} ({mode} mode): {len(violations)} violation(s)")
            for v in violations[:30]:
                console.print(f"  {v}", highlight=False)
            raise typer.Exit(1)
        console.print(f"[green]valid[/] against {against} ({mode} mode)")
