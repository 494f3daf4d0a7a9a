"""``branchnet plan``, ``branchnet demo`` and ``branchnet compare``: every plan goes through the one pipeline,
:func:`service.plans.pipeline.run_plan`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from service import errors
from service.cli._common import JsonOption, app, console, err, print_json, progress_bar, settings, user_errors
from service.cli.regions import print_region
from service.config import REPO_ROOT

# The planner, geodata and GeoPandas are imported inside the commands: `branchnet batch` and `--help` start fast.


@app.command()
def plan(
    region: Annotated[
        str | None, typer.Argument(help="A scenario file (YAML/JSON), or a region name with flags.")
    ] = None,
    scenario: Annotated[Path | None, typer.Option(help="Scenario file (YAML/JSON); see examples/.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/plan"),
    objective: Annotated[
        str,
        typer.Option(
            help="Branch-only study from flags: max_coverage, min_cost, p_median, attendance, p_center, fixed_charge."
        ),
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
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Plan and write plan.json, layers.gpkg, map.html and map.png (plus timetable.csv, pareto.csv, ... as it has them).

    `branchnet plan SCENARIO.yaml --out DIR` plans a scenario file: the joint planner (branches with their hours,
    bookmobile, outreach desks and home delivery; see examples/rutland_network.yaml), or a branch-only study when
    the file has a `location` section (examples/rutland_location.yaml). `branchnet plan REGION --objective ...`
    writes that branch-only study from the flags. Both go through the one pipeline.
    """
    from service.plans import pipeline
    from service.plans.scenario import Scenario
    from service.store.regions import load_region

    config = settings()
    if region is not None and scenario is None and Path(region).suffix.lower() in (".yaml", ".yml", ".json"):
        scenario, region = Path(region), None
    with user_errors():
        if scenario is not None:
            spec = Scenario.from_file(scenario)
        else:
            if region is None:
                raise errors.BadRequestError(
                    "name the region: `branchnet plan REGION ...`, or give a scenario file with its `region:`"
                )
            location = {"objective": objective, "standard_min": standard_min, "p": p, "budget": budget,
                        "budget_share": budget_share, "coverage_target": coverage_target, "keep": keep or [],
                        "close": close or []}  # fmt: skip
            spec = Scenario.parse({"name": f"{region}-{objective}", "region": region, "location": location},
                                  source="command-line flags")  # fmt: skip
        if region is not None:
            spec = spec.model_copy(update={"region": region})
        solve = {k: v for k, v in (("time_limit_s", time_limit), ("seed", seed)) if v is not None}
        if scenario is None:
            solve.setdefault("time_limit_s", config.time_limit_s)
            solve.setdefault("seed", config.seed)
        if solve:  # validated like the file's (model_copy would not check --seed -1 or --time-limit 0)
            spec = Scenario.parse({**spec.model_dump(), "solve": {**spec.solve.model_dump(), **solve}},
                                  source="command-line flags --time-limit/--seed")  # fmt: skip
        data = load_region(spec.region, config.regions_dir)
        with progress_bar() as report:
            result = pipeline.run_plan(data, spec, out, leaflet_dir=config.leaflet_dir, progress=report,
                                       workers=config.workers)  # fmt: skip
    if as_json:
        print_json(result)
    else:
        print_plan(result, out)


def print_plan(plan: dict[str, Any], out: Path) -> None:
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
                   f"{t['share_within_2_miles']:.1%} -> {p['share_within_2_miles']:.1%}")  # fmt: skip
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
        f"{s['iterations']} round(s), {s['runtime_s']:.1f} s; {s['search']['method']}"
        + (
            f" ({s['search']['patterns_searched']} of {s['search']['patterns_total']} branch patterns searched)"
            if "patterns_searched" in s["search"]
            else ""
        ),
        highlight=False,
    )
    for w in s["warnings"]:
        console.print(f"[yellow]warning[/]: {w}", highlight=False)
    console.print(f"wrote {out}/plan.json, layers.gpkg, map.html, map.png"
                  + (", timetable.csv" if mob["timetable"] else "")
                  + (", pareto.csv, pareto.png" if "pareto" in plan else ""), highlight=False)  # fmt: skip


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("out/demo"),
    preset: Annotated[str, typer.Option(help="Synthetic size: toy, small, demo, county.")] = "demo",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic region.")] = 42,
    scenario: Annotated[
        Path | None, typer.Option(help="Planner scenario to run [default: examples/demo_network.yaml].")
    ] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Run the main job on a seeded synthetic merged municipality: generate, import, plan (joint planner), map."""
    from geodata.region import RegionSources, prepare_region
    from geodata.synthetic import generate_region, write_region
    from service.plans import pipeline
    from service.plans.scenario import Scenario
    from service.store.regions import save_region

    config = settings()
    name = f"synthetic-{preset}-{seed}"
    with user_errors():
        path = scenario or REPO_ROOT / "examples" / "demo_network.yaml"
        spec = Scenario.from_file(path).model_copy(update={"region": name})
        src = config.data_dir / "sources" / name
        if not (src / "README.txt").is_file():
            err.print(f"generating synthetic region {name} ...")
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
            region = prepare_region(name, sources, cache_dir=config.cache_dir, progress=report)
            region.meta["attribution"] = "Synthetic region generated by branchnet (not a real place; no OSM data)"
            save_region(region, config.regions_dir)
            result = pipeline.run_plan(region, spec, out, leaflet_dir=config.leaflet_dir, progress=report,
                                       workers=config.workers)  # fmt: skip
    if as_json:
        print_json(result)
        return
    print_region(region.meta)
    print_plan(result, out)


@app.command()
def compare(
    dir_a: Annotated[Path, typer.Argument(help="Result folder of `branchnet plan` (A, the baseline).")],
    dir_b: Annotated[Path, typer.Argument(help="Result folder to compare with it (B); differences are B − A.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the comparison here; .csv gives a flat table.", show_default="DIR_B/compare_<A>.json"),
    ] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Compare two plans: planned KPIs and costs side by side, and the change in access by group, zone and area."""
    from service.plans.compare import compare_dirs, comparison_tables, default_output, write_comparison

    with user_errors():
        result = compare_dirs(dir_a, dir_b)
        if as_json:
            write_comparison(result, out or default_output(dir_a, dir_b))
            print_json(result)
            return
        for note in result["notes"]:
            console.print(f"[yellow]note:[/] {note}", highlight=False)
        for table in comparison_tables(result):
            console.print(table)
        path = write_comparison(result, out or default_output(dir_a, dir_b))
        console.print(f"wrote {path}", highlight=False)
