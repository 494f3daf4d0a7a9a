"""The one plan pipeline: scenario -> region -> build problem -> solve -> report -> write results.

:func:`run_plan` is the only function that chains these steps. Every entry point calls it: ``branchnet plan``
and ``branchnet demo`` (:mod:`service.cli`), the API's runs (:mod:`service.runs.worker`) and the nightly batch.
The scenario decides the study: the joint planner (``min_cost``, ``max_coverage``, ``pareto``: branches with
their hours, bookmobile, outreach desks and home delivery) or a branch-only study (a ``location`` section); both
write the same ``plan.json`` layout and the same layers.

Steps: :func:`service.plans.build.build` (the optimizer's problem), :func:`optimizer.planner.solve_plan`,
:func:`service.plans.pareto.sweep` or :func:`service.plans.location.solve_branch_study` (the solve),
:mod:`service.plans.report` (plan.json), :mod:`service.plans.layers`, :mod:`service.plans.maps` and
:mod:`service.plans.mapimage` (layers.gpkg, map.html, map.png), written atomically into the output folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from geodata.libraries_hacked import timetable_from_rows, write_calendars
from geodata.region import RegionData
from optimizer.errors import CoverageUnreachableError, InvalidProblemError
from optimizer.params import SolveParams
from optimizer.planner import PlannerResult, solve_plan
from optimizer.roadmap import solve_roadmap
from service.plans import mapimage, maps, outputs, report, roadmap
from service.plans.build import Built, build
from service.plans.layers import bookmobile_outputs, plan_layers
from service.plans.location import solve_branch_study
from service.plans.pareto import pareto_plot, sweep
from service.plans.scenario import AGE_GROUPS, Scenario

Progress = Callable[[str, float], None]


def run_plan(
    region: RegionData,
    scenario: Scenario,
    out_dir: Path,
    *,
    leaflet_dir: Path,
    progress: Progress | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Plan ``scenario`` on ``region``; write plan.json, layers.gpkg, map.html and map.png (and, as the plan has them,
    timetable.csv, calendars/, bookmobile_routes.geojson, pareto.csv and pareto.png) to ``out_dir`` atomically;
    return the plan.

    A failure leaves the previous results of ``out_dir`` (or nothing), never a half-written folder.
    """
    started = time.perf_counter()
    if scenario.region != region.name:
        raise InvalidProblemError(f"region: the scenario is for {scenario.region!r}, not {region.name!r}")
    maps.check_assets(leaflet_dir)  # before solving: a missing Leaflet should not waste a solve
    b = build(region, scenario, progress=progress)
    params = SolveParams(time_limit_s=scenario.solve.time_limit_s, seed=scenario.solve.seed, workers=workers)
    if scenario.objective == "roadmap":
        return _roadmap(b, params, out_dir, leaflet_dir, progress, started)
    result, budget, pareto_rows, account = _solve(b, params, progress)
    plan = _report(b, result, budget, pareto_rows, account)
    _write(b, result, plan, pareto_rows, out_dir, leaflet_dir, progress, started)
    return plan


def _roadmap(
    b: Built, params: SolveParams, out_dir: Path, leaflet_dir: Path, progress: Progress | None, started: float
) -> dict[str, Any]:
    """A roadmap: roadmap.json, timeline.md and roadmap.png beside the target year's plan (plan.json, layers with
    a layer pair per year, the maps), so that every reader of a plan reads a roadmap's last year."""
    rb, rules = roadmap.roadmap_problem(b)
    road = solve_roadmap(rb.problem, rules, params=params, progress=progress)
    last = road.years[-1].config.result
    assert last is not None
    plan = _report(rb, last, None, [], None)
    doc = roadmap.roadmap_document(rb, rules, road, plan["attribution"])
    plan["roadmap"] = {"file": "roadmap.json", "timeline": "timeline.md", "chart": "roadmap.png",
                       "status": road.status, "objective": road.objective, "bound": road.bound, "gap": road.gap,
                       "milestones": doc["milestones"]}  # fmt: skip
    extra = {
        "roadmap.json": lambda path: outputs.write_json(doc, path),
        "timeline.md": lambda path: path.write_text(roadmap.timeline_markdown(doc), encoding="utf-8"),
        "roadmap.png": lambda path: roadmap.gantt_png(doc, path),
    }
    per_year = roadmap.year_layers(rb, road, doc)
    years = [(y.year, per_year[f"branches_{y.year}"]) for y in road.years]
    _write(rb, last, plan, [], out_dir, leaflet_dir, progress, started, extra=extra, extra_layers=per_year,
           years=years)  # fmt: skip
    return plan


def _solve(
    b: Built, params: SolveParams, progress: Progress | None
) -> tuple[PlannerResult, float | None, list[dict[str, Any]], dict[str, Any] | None]:
    """The study's solve: (result, the budget it had, the Pareto table's rows, a branch-only study's account)."""
    sc = b.scenario
    if progress:
        progress("solve", 0.0)
    if sc.location is not None:
        result, account = solve_branch_study(b, params)
        return result, b.budget, [], account
    if sc.objective == "pareto":
        result, budget, rows = sweep(b, params, progress)
        return result, budget, rows, None
    try:
        result = solve_plan(b.problem, params=params, max_iterations=sc.solve.max_iterations, progress=progress)
    except CoverageUnreachableError as exc:
        if not b.candidates["cap_binds"]:
            raise
        raise CoverageUnreachableError(
            f"{exc}; stops.max_candidates={b.candidates['cap']} kept only {b.candidates['cap']} of the "
            f"{b.candidates['found']} candidate stops: raise it"
        ) from None
    return result, b.budget, [], None


def _report(
    b: Built, r: PlannerResult, budget: float | None, pareto_rows: list[dict[str, Any]],
    account: dict[str, Any] | None,
) -> dict[str, Any]:  # fmt: skip
    """The plan.json document."""
    sc, region = b.scenario, b.region
    years = b.year_labels
    plan: dict[str, Any] = {
        "scenario": sc.name,
        "region": region.name,
        "objective": sc.objective,
        "study": "branches" if sc.location is not None else "network",
        "budget": budget,
        "years": list(years),
        "optimised_for": [years[y] for y in b.problem.years],
        "decisions": {"branches": report.branch_decisions(b, r), **report.decision_json(b, r)},
        "kpis": report.kpi_blocks(b, r),
        "costs": {"today": report.cost_json(r.costs_today, years), "plan": report.cost_json(r.costs, years)},
        "winners_losers": report.winners_losers(b, r),
        "statutory_checks": report.statutory_checks(b, r.decision, r.stop_served),
        "visits": report.visits_json(b, r),
        "assumptions": {
            "digital_uptake": {g: sc.digital_uptake.get(g, 0.0) for g in AGE_GROUPS},  # type: ignore[call-overload]
            "need_weight": dict(zip(AGE_GROUPS, b.problem.need_weights.tolist(), strict=True)),
            "projection": sc.projection.model_dump() if sc.projection else None,
            "credits": sc.credits.model_dump(),
            "standards": sc.standards.model_dump(),
            "hours_levels": sc.hours.levels,
        },
        "solver": report.solver_json(b, r, account),
        "attribution": region.meta.get("attribution", maps.OSM_ATTRIBUTION),
        "scenario_file": sc.model_dump(),
    }
    if account is not None:
        plan["location"] = account
    if pareto_rows:
        plan["pareto"] = {"points": pareto_rows, "file": "pareto.csv", "plot": "pareto.png"}
    return plan


def _write(
    b: Built, r: PlannerResult, plan: dict[str, Any], pareto_rows: list[dict[str, Any]], out_dir: Path,
    leaflet_dir: Path, progress: Progress | None, started: float, *,
    extra: dict[str, Callable[[Path], Any]] | None = None, extra_layers: dict[str, Any] | None = None,
    years: list[tuple[int, Any]] | None = None,
) -> None:  # fmt: skip
    """Write the results into ``out_dir`` atomically (``extra``: more files, each written by its function;
    ``extra_layers``: more GeoPackage layers, not drawn on the maps)."""
    timetable, stops_layer, routes = bookmobile_outputs(b, r)
    layers = plan_layers(b, r, stops_layer, routes, plan["decisions"]["branches"])
    if progress:
        progress("write results", 0.0)
    with outputs.atomic_dir(out_dir) as tmp:
        if timetable is not None:
            timetable.to_csv(tmp / "timetable.csv", index=False)
            text = timetable.fillna("").astype(str)
            rows = [dict(zip(text.columns.map(str), v, strict=True)) for v in text.to_numpy()]
            write_calendars(timetable_from_rows(rows, source="timetable.csv"), tmp / "calendars")
        if len(routes):
            routes.to_file(tmp / "bookmobile_routes.geojson", driver="GeoJSON")
        if pareto_rows:
            pd.DataFrame(pareto_rows).to_csv(tmp / "pareto.csv", index=False)
            pareto_plot(pareto_rows, tmp / "pareto.png", b.scenario.name)
        outputs.write_layers(tmp / "layers.gpkg", {**layers, **(extra_layers or {})})
        for name, write in (extra or {}).items():
            write(tmp / name)
        summary = report.summary_html(b, r, plan["kpis"][b.year_labels[0]])
        title = f"branchnet: {b.scenario.name}"
        maps.write_map(tmp / "map.html", layers, leaflet_dir=leaflet_dir, title=title, summary_html=summary,
                       attribution=plan["attribution"], years=years)  # fmt: skip
        mapimage.write_map_png(tmp / "map.png", layers, title=title, attribution=plan["attribution"])
        plan["runtime_s"] = time.perf_counter() - started
        outputs.write_json(plan, tmp / "plan.json")
    if progress:
        progress("write results", 1.0)
