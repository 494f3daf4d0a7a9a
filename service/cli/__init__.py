"""The ``branchnet`` command line: a thin adapter over geodata, the job runner and region storage."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from geodata.region import RegionSources, prepare_region
from service import errors
from service.config import REPO_ROOT, Settings
from service.plans.location import PlanRequest, region_kpis, run_plan
from service.store.regions import list_regions, load_region, save_region

app = typer.Typer(help="Plan library networks: branches, bookmobiles and outreach.", no_args_is_help=True)
region_app = typer.Typer(help="Import and inspect regions.", no_args_is_help=True)
app.add_typer(region_app, name="region")
timetable_app = typer.Typer(help="Check and re-plan mobile library timetables (mobile-library-stops CSV).",
                            no_args_is_help=True)  # fmt: skip
app.add_typer(timetable_app, name="timetable")
console = Console(width=None if Console().is_terminal else 132)
err = Console(stderr=True)

#: Errors that are the user's to fix: printed plainly, exit code 2.


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
            err.print(f"[bold red]{label}:[/] {text}", highlight=False)
            raise typer.Exit(kind.exit_code) from None
        finally:
            seen = set()
            for w in caught:
                msg = str(w.message)
                if msg not in seen and not issubclass(w.category, DeprecationWarning | FutureWarning):
                    seen.add(msg)
                    err.print(f"[yellow]warning:[/] {msg}", highlight=False)


def _settings() -> Settings:
    return Settings()


def kpi_table(kpis: dict[str, Any], title: str, *, by: str | None = None, limit: int = 40) -> Table:
    """Render access KPIs (overall, or by area/group) as a table."""
    rows = {"all": kpis["overall"]} if by is None else kpis[by]
    table = Table(title=title, title_justify="left")
    first = "area" if by == "by_area" else ("group" if by == "by_group" else "")
    table.add_column(first or "", style="bold", no_wrap=True)
    cols = [("population", "people", "{:,.0f}")]
    cols += [(f"share_within_{m}min", f"≤{m} min", "{:.1%}") for m in (5, 10, 15, 20)]
    cols += [
        ("share_within_3.2km_road", "≤2 mi road", "{:.1%}"),
        ("mean_time_min", "mean min", "{:.1f}"),
        ("p95_time_min", "p95 min", "{:.1f}"),
    ]
    for _, head, _ in cols:
        table.add_column(head, justify="right")
    for name, block in list(rows.items())[:limit]:
        table.add_row(name, *[fmt.format(block.get(k, float("nan"))) for k, _, fmt in cols])
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} more rows in plan.json"
    return table


@region_app.command("import")
def region_import(
    name: Annotated[str, typer.Argument(help="Region name (lower-case letters, digits, - and _).")],
    osm: Annotated[Path, typer.Option(help="OSM extract, .osm.pbf or .osm XML.")],
    population: Annotated[Path, typer.Option(help="Population points or census-area polygons.")],
    branches: Annotated[
        Path, typer.Option(help="Branches: public-library schema CSV with coordinates, GeoJSON or GPKG.")
    ],
    population_table: Annotated[Path | None, typer.Option(help="CSV of population to join to the polygons.")] = None,
    join_on: Annotated[str | None, typer.Option(help="POLYGON_FIELD=TABLE_FIELD; detected when omitted.")] = None,
    population_field: Annotated[str | None, typer.Option(help="Population column; detected when omitted.")] = None,
    area_field: Annotated[str | None, typer.Option(help="Census-area id column.")] = None,
    group_field: Annotated[str | None, typer.Option(help="Grouping column, e.g. former municipality.")] = None,
    id_field: Annotated[str | None, typer.Option(help="Branch id column; detected when omitted.")] = None,
    crs: Annotated[str | None, typer.Option(help="Metric CRS, e.g. EPSG:27700; local UTM when omitted.")] = None,
    speeds: Annotated[Path | None, typer.Option(help="YAML/TOML car speeds: hwy_speeds, fallback_kph, ...")] = None,
    settlements: Annotated[
        Path | None, typer.Option(help="Named places (CSV lon/lat or points): stop communities.")
    ] = None,
    age_shares: Annotated[
        str | None, typer.Option(help="Default shares 0-17,18-64,65+ where only totals are known, e.g. 0.2,0.6,0.2.")
    ] = None,
) -> None:
    """Build a region from raw files into the data directory (BRANCHNET_DATA_DIR)."""
    settings = _settings()
    sources = RegionSources(
        osm=str(osm),
        population=str(population),
        branches=str(branches),
        population_table=str(population_table) if population_table else None,
        join_on=join_on,
        population_field=population_field,
        area_field=area_field,
        group_field=group_field,
        id_field=id_field,
        crs=crs,
        speeds=str(speeds) if speeds else None,
        settlements=str(settlements) if settlements else None,
        age_shares=_parse_shares(age_shares),
    )
    with user_errors():
        from service.store.regions import check_name

        check_name(name)
        with progress_bar() as report:
            region = prepare_region(name, sources, cache_dir=settings.cache_dir, progress=report)
            report("save region", 0.0)
            folder = save_region(region, settings.regions_dir)
            report("save region", 1.0)
        _print_region(region.meta)
        console.print(f"region [bold]{name}[/] saved to {folder}")


def _parse_shares(text: str | None) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        a, b, c = (float(x) for x in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"--age-shares {text!r}: give three numbers, e.g. 0.2,0.6,0.2") from None
    return (a, b, c)


def _print_region(meta: dict[str, Any]) -> None:
    drive = meta["networks"]["drive"]
    console.print(
        f"[bold]{meta['name']}[/]: {meta['population']:,.0f} people on {meta['demand_points']:,} demand points, "
        f"{meta['branches']} branches; drive graph {drive['nodes']:,} nodes / {drive['edges']:,} edges "
        f"({drive['dropped_nodes']:,} nodes outside the largest strongly connected component dropped), "
        f"CRS {meta['crs']}"
    )
    for note in meta.get("notes", []):
        console.print(f"  note: {note}", highlight=False)


@region_app.command("show")
def region_show(
    name: Annotated[str, typer.Argument(help="Region name.")],
    by: Annotated[str, typer.Option(help="Break down by 'area', 'group' or 'none'.")] = "area",
) -> None:
    """Print the current network's access KPIs, overall and per census area or former municipality."""
    settings = _settings()
    with user_errors():
        region = load_region(name, settings.regions_dir)
        import numpy as np

        kpis = region_kpis(region, np.ones(len(region.branches), dtype=bool))
        _print_region(region.meta)
        console.print(kpi_table(kpis, "Current network: access by car to the nearest branch"))
        key = {"area": "by_area", "group": "by_group"}.get(by)
        if key == "by_group" and key not in kpis:
            key = "by_area"
        if key:
            console.print(kpi_table(kpis, f"... by {by}", by=key))


@region_app.command("list")
def region_list() -> None:
    """List imported regions."""
    for name in list_regions(_settings().regions_dir):
        console.print(name)


@app.command()
def plan(
    region: Annotated[str | None, typer.Argument(help="Region name (or give it in the scenario file).")] = None,
    scenario: Annotated[Path | None, typer.Option(help="YAML/JSON scenario with a 'location' section.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/plan"),
    objective: Annotated[
        str, typer.Option(help="max_coverage, min_cost, p_median, attendance, p_center, fixed_charge.")
    ] = "max_coverage",
    standard_min: Annotated[float, typer.Option(help="Drive-time standard in minutes.")] = 15.0,
    p: Annotated[int | None, typer.Option("--p", help="Number of branches to keep.")] = None,
    budget: Annotated[float | None, typer.Option(help="Annual budget for branches.")] = None,
    budget_share: Annotated[float | None, typer.Option(help="Budget as a share of today's cost, e.g. 0.75.")] = None,
    coverage_target: Annotated[float | None, typer.Option(help="min_cost: share to cover, e.g. 0.95.")] = None,
    keep: Annotated[list[str] | None, typer.Option(help="Branch id to keep (repeatable).")] = None,
    close: Annotated[list[str] | None, typer.Option(help="Branch id to close (repeatable).")] = None,
    time_limit: Annotated[float | None, typer.Option(help="Solver time limit (s).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,
) -> None:
    """Plan the network and write plan.json, layers.gpkg and map.html (plus timetable.csv, pareto.csv, ...).

    `branchnet plan SCENARIO.yaml --out DIR` runs the joint planner (branches with their hours, bookmobile,
    outreach desks and home delivery; see examples/rutland_network.yaml). A scenario with a `location` section, or
    `branchnet plan REGION --objective ...`, runs the branch-only location models.
    """
    settings = _settings()
    if region is not None and scenario is None and Path(region).suffix.lower() in (".yaml", ".yml", ".json"):
        scenario, region = Path(region), None
    with user_errors():
        if scenario is not None and _is_planner_file(scenario):
            from service.plans.pipeline import run_network_plan
            from service.plans.scenario import Scenario

            spec = Scenario.from_file(scenario)
            if time_limit is not None or seed is not None:
                solve = spec.solve.model_copy(
                    update={k: v for k, v in (("time_limit_s", time_limit), ("seed", seed)) if v is not None}
                )
                spec = spec.model_copy(update={"solve": solve})
            data = load_region(region or spec.region, settings.regions_dir)
            with progress_bar() as report:
                plan_json = run_network_plan(data, spec, out, leaflet_dir=settings.leaflet_dir, progress=report,
                                             workers=settings.workers)  # fmt: skip
            print_network_plan(plan_json, out)
            return
        if scenario is not None:
            file_region, request = PlanRequest.from_file(scenario)
            region = region or file_region
        else:
            request = PlanRequest(
                objective=objective,  # type: ignore[arg-type]
                standard_min=standard_min, p=p, budget=budget, budget_share=budget_share,
                coverage_target=coverage_target, keep=tuple(keep or ()), close=tuple(close or ()),
                time_limit_s=time_limit or settings.time_limit_s, seed=settings.seed if seed is None else seed,
                workers=settings.workers,
            )  # fmt: skip
        if region is None:
            raise errors.BadRequestError(
                "name the region: `branchnet plan REGION ...` or `region:` in the scenario file"
            )
        data = load_region(region, settings.regions_dir)
        with progress_bar() as report:
            result = run_plan(data, request, out, leaflet_dir=settings.leaflet_dir, progress=report)
        print_plan(result, out)


def _is_planner_file(path: Path) -> bool:
    import yaml

    from service.plans.scenario import is_planner_scenario

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True  # the planner's reader reports the error with the file name
    return is_planner_scenario(data)


def print_network_plan(plan: dict[str, Any], out: Path) -> None:
    """Print the joint plan: decisions, KPIs today and planned, costs, closures explained, solver stats."""
    table = Table(title="Branch decisions", title_justify="left")
    for col in ("branch", "decision", "hours today", "hours plan", "annual saving"):
        table.add_column(col, justify="left" if col in ("branch", "decision") else "right")
    for d in plan["decisions"]["branches"]:
        table.add_row(d["name"], d["decision"], f"{d['hours_today']:g}", f"{d['hours_plan']:g}",
                      f"{d['annual_saving']:,.0f}")  # fmt: skip
    console.print(table)
    mob = plan["decisions"]["bookmobile"]
    out_r = plan["decisions"]["outreach"]
    console.print(
        f"bookmobile: {mob['vehicles']} vehicle(s), {mob['stops_served']} of {mob['stops_selected']} selected stops "
        f"timetabled ({mob['route_days']} route-days, {mob['cycle_weeks']}-week cycle); outreach desks: "
        f"{len(out_r['desks'])}; home-delivery recipients: "
        + ", ".join(f"{x:,.0f}" for x in out_r["home_delivery_recipients"]),
        highlight=False,
    )
    kt = Table(title="KPIs (today -> plan)", title_justify="left")
    kt.add_column("year")
    for col in ("meet standard", "credit", "mean drive min", "p95 drive min", "within 2 miles"):
        kt.add_column(col, justify="right")
    for year, k in plan["kpis"].items():
        t, p = k["today"], k["plan"]
        kt.add_row(year, f"{t['covered_share']:.1%} -> {p['covered_share']:.1%}",
                   f"{t['credit_share']:.1%} -> {p['credit_share']:.1%}",
                   f"{t['mean_drive_min']:.1f} -> {p['mean_drive_min']:.1f}",
                   f"{t['p95_drive_min']:.1f} -> {p['p95_drive_min']:.1f}",
                   f"{t['within_2_miles_share']:.1%} -> {p['within_2_miles_share']:.1%}")  # fmt: skip
    console.print(kt)
    c0, c1 = plan["costs"]["today"], plan["costs"]["plan"]
    console.print(
        f"annual cost: {c0['total']:,.0f} -> {c1['total']:,.0f} (branches {c1['branches']:,.0f}, closures "
        f"{c1['closures']:,.0f}, bookmobile {c1['bookmobile']:,.0f}, desks {c1['desks']:,.0f}, home delivery "
        f"{max(c1['home_delivery'].values()):,.0f})",
        highlight=False,
    )
    for d in plan["decisions"]["branches"]:
        if d["decision"] == "close":
            console.print(f"[bold]{d['name']}[/]: {d['explanation']['text']}", highlight=False)
    for c in plan["statutory_checks"]:
        mark = "[green]pass[/]" if c["passed"] else "[red]FAIL[/]"
        val = f"{c['value']:.1%}" if isinstance(c["value"], float) else str(c["value"])
        console.print(f"{mark} {c['name']}: {val}", highlight=False)
    s = plan["solver"]
    bound = "none" if s["bound"] is None else f"{s['bound']:,.4f}"
    gap = "unknown" if s["gap"] is None else f"{s['gap']:.2%}"
    console.print(
        f"solver: {s['status']}, objective {s['objective']:,.4f}, bound {bound}, gap {gap}, "
        f"{s['iterations']} round(s), {s['runtime_s']:.1f} s; {s['search']['method']} "
        f"({s['search']['patterns_searched']} of {s['search']['patterns_total']} branch patterns searched)",
        highlight=False,
    )
    for w in s["warnings"]:
        console.print(f"[yellow]warning[/]: {w}", highlight=False)
    console.print(f"wrote {out}/plan.json, layers.gpkg, map.html" + (", timetable.csv" if mob["timetable"] else "")
                  + (", pareto.csv, pareto.png" if "pareto" in plan else ""), highlight=False)  # fmt: skip


def print_plan(result: dict[str, Any], out: Path) -> None:
    """Print a plan's decisions, KPIs before and after, and solver stats."""
    table = Table(title="Branch decisions", title_justify="left")
    for col in ("branch", "decision", "staffed h/wk", "annual cost", "saving"):
        table.add_column(col, justify="right" if col != "branch" else "left")
    for d in result["decisions"]:
        colour = "green" if d["decision"] == "keep" else "red"
        table.add_row(
            d["name"],
            f"[{colour}]{d['decision']}[/]",
            f"{d['staffed_hours_week']:g}",
            f"{d['annual_cost']:,.0f}",
            f"{d['annual_saving']:,.0f}",
        )
    console.print(table)
    console.print(kpi_table(result["kpis"]["before"], "Before: access by car to the nearest branch"))
    console.print(kpi_table(result["kpis"]["after"], "After"))
    if "by_group" in result["kpis"]["after"]:
        console.print(kpi_table(result["kpis"]["after"], "After, by group", by="by_group"))
    s = result["solver"]
    console.print(
        f"cost {result['cost']['before']:,.0f} -> {result['cost']['after']:,.0f} a year; "
        f"solver {s['engine']}: {s['status']}, objective {s['objective']:,.1f}, bound {s['bound']:,.1f}, "
        f"gap {s['gap']:.2%}, {s['runtime_s']:.2f} s"
    )
    console.print(f"wrote {out / 'plan.json'}, {out / 'layers.gpkg'}, {out / 'map.html'}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/demo"),
    preset: Annotated[str, typer.Option(help="Synthetic size: toy, small, demo, county.")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic region.")] = 42,
    scenario: Annotated[
        Path | None, typer.Option(help="Planner scenario to run [default: examples/demo_network.yaml].")
    ] = None,
) -> None:
    """Run the main job on a seeded synthetic merged municipality: generate, import, plan (joint planner), map."""
    from geodata.synthetic import generate_region, write_region
    from service.plans.pipeline import run_network_plan
    from service.plans.scenario import Scenario

    settings = _settings()
    name = f"synthetic-{preset}-{seed}"
    with user_errors():
        path = scenario or REPO_ROOT / "examples" / "demo_network.yaml"
        spec = Scenario.from_file(path).model_copy(update={"region": name})
        src = settings.data_dir / "sources" / name
        if not (src / "README.txt").is_file():
            console.print(f"generating synthetic region {name} ...")
            paths = write_region(generate_region(preset, seed=seed), src)
        else:
            paths = {
                k: src / f
                for k, f in (
                    ("osm", "roads.osm"),
                    ("areas", "areas.geojson"),
                    ("branches", "branches.geojson"),
                    ("settlements", "settlements.csv"),
                )
            }
        sources = RegionSources(
            osm=str(paths["osm"]),
            population=str(paths["areas"]),
            branches=str(paths["branches"]),
            area_field="area_id",
            group_field="municipality",
            id_field="branch_id",
            settlements=str(paths["settlements"]),
        )
        with progress_bar() as report:
            region = prepare_region(name, sources, cache_dir=settings.cache_dir, progress=report)
            region.meta["attribution"] = "Synthetic region generated by branchnet (not a real place; no OSM data)"
            save_region(region, settings.regions_dir)
            result = run_network_plan(region, spec, out, leaflet_dir=settings.leaflet_dir, progress=report,
                                      workers=settings.workers)  # fmt: skip
        _print_region(region.meta)
        print_network_plan(result, out)


# ---------------------------------------------------------------------------------------------------------------
# timetables

ModeOption = Annotated[str, typer.Option(help="same-day: every stop keeps its weekday; free: stops may move days.")]
TravelOption = Annotated[str, typer.Option(help="crowfly (haversine x circuity / speed) or network (needs --region).")]
CircuityOption = Annotated[float, typer.Option(help="Crow-fly model: road km per straight-line km.")]
SpeedOption = Annotated[float, typer.Option("--speed-kmh", help="Crow-fly model: driving speed, km/h.")]
RegionOption = Annotated[str | None, typer.Option(help="Stored region whose drive graph gives network times.")]
SwapOption = Annotated[
    bool, typer.Option(help="Read a row whose arrival is after its departure as swapped (warned), not an error.")
]


def _travel_model(travel: str, circuity: float, speed_kmh: float, region: str | None) -> Any:
    from service.plans.replan import TravelModel

    if travel not in ("crowfly", "network"):
        raise typer.BadParameter(f"--travel {travel!r}: use crowfly or network")
    return TravelModel(travel, circuity, speed_kmh, region, _settings().regions_dir)  # type: ignore[arg-type]


def _mode(mode: str) -> Any:
    if mode not in ("same-day", "free"):
        raise typer.BadParameter(f"--mode {mode!r}: use same-day or free")
    return mode


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
    swap_reversed_times: SwapOption = False,
) -> None:
    """Re-plan a timetable to cut driving; print the score, old and new cycle driving and the validity check.

    Writes the new CSV, one .ics calendar per vehicle and the route lines (along the roads with --travel network).
    """
    from optimizer.params import SolveParams
    from service.plans.replan import replan_file

    settings = _settings()
    model, mode_ = _travel_model(travel, circuity, speed_kmh, region), _mode(mode)
    params = SolveParams(
        time_limit_s=time_limit or settings.time_limit_s,
        seed=settings.seed if seed is None else seed,
        workers=settings.workers,
    )
    with user_errors():
        report = replan_file(
            stops, out, mode=mode_, travel=model, params=params,
            calendars=calendars or out.with_name(out.stem + "_ics"),
            geojson=geojson or out.with_name(out.stem + "_routes.geojson"),
            reversed_times="swap" if swap_reversed_times else "error",
        )  # fmt: skip
    d = report.as_dict()
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
    swap_reversed_times: SwapOption = False,
) -> None:
    """Print the evaluator's report: cycle driving, span limit, overlaps, clashes; with --against, violations."""
    from service.plans.replan import check_file

    model, mode_ = _travel_model(travel, circuity, speed_kmh, region), _mode(mode)
    with user_errors():
        report, violations = check_file(
            stops, against=against, mode=mode_, travel=model, reversed_times="swap" if swap_reversed_times else "error"
        )
    console.print(report, highlight=False)
    if violations is not None:
        if violations:
            console.print(f"[red]INVALID[/] against {against} ({mode} mode): {len(violations)} violation(s)")
            for v in violations[:30]:
                console.print(f"  {v}", highlight=False)
            raise typer.Exit(1)
        console.print(f"[green]valid[/] against {against} ({mode} mode)")


# ---------------------------------------------------------------------------------------------------------------
# compare


@app.command()
def compare(
    dir_a: Annotated[Path, typer.Argument(help="Result folder of `branchnet plan` (A, the baseline).")],
    dir_b: Annotated[Path, typer.Argument(help="Result folder to compare with it (B); differences are B − A.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the comparison here; .csv gives a flat table.", show_default="DIR_B/compare_<A>.json"),
    ] = None,
) -> None:
    """Compare two plans: planned KPIs and costs side by side, and the change in access by group, zone and area."""
    from service.plans.compare import compare_dirs, comparison_tables, default_output, write_comparison

    with user_errors():
        result = compare_dirs(dir_a, dir_b)
        for note in result["notes"]:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
        for table in comparison_tables(result):
            console.print(table)
        path = write_comparison(result, out or default_output(dir_a, dir_b))
        console.print(f"wrote {path}", highlight=False)


# ---------------------------------------------------------------------------------------------------------------
# web service: API keys and the server

keys_app = typer.Typer(help="Manage the web service's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation name; created when new.")],
    role: Annotated[str, typer.Option(help="viewer (reads), planner (+ scenarios, runs) or admin (+ regions).")],
    name: Annotated[str, typer.Option(help="A label for the key, e.g. who holds it.")] = "",
) -> None:
    """Create an API key and print it once (only its hash is stored); the database is migrated first."""
    from sqlalchemy.orm import sessionmaker

    from service.api.auth import create_key
    from service.store.db import ROLES, make_engine, migrate, session_scope

    if role not in ROLES:
        raise typer.BadParameter(f"--role {role!r}: use {', '.join(ROLES)}")
    settings = _settings()
    with user_errors():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(settings.db_url)
        engine = make_engine(settings.db_url)
        try:
            with session_scope(sessionmaker(engine)) as session:
                plain, row = create_key(session, org, role, name)
                key_id = row.id
        finally:
            engine.dispose()
    err.print(
        f"created {role} key {key_id} for organisation {org!r}; it is shown only once:", highlight=False, soft_wrap=True
    )
    print(plain)  # alone on stdout, for KEY=$(branchnet keys create ...)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (docs at /api/v1/docs) with uvicorn; settings from BRANCHNET_* or .env."""
    import uvicorn

    # our structured request log replaces uvicorn's access log (one line per request, not two)
    uvicorn.run("service.api.app:create_app", factory=True, host=host, port=port, access_log=False)


if __name__ == "__main__":
    app()
