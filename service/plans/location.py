"""The one job runner: region -> problem -> solve -> KPIs -> result files.

The CLI (and later the API and the nightly batch) are thin adapters over :func:`run_plan`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
import yaml

from geodata.region import RegionData
from geodata.timetable import timetable_from_rows, write_calendars
from optimizer.errors import InvalidProblemError
from optimizer.kpis import access_kpis, nearest_open
from optimizer.location import OBJECTIVES, Decay, LocationProblem, LocationResult, Objective, solve_location
from optimizer.params import SolveParams
from service.plans import maps, outputs
from service.plans.bookmobile import BookmobileRequest, plan_bookmobile

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class PlanRequest:
    """What the planner asks for: the ``location`` section of a scenario file.

    ``objective`` is any model of :mod:`optimizer.location`: ``max_coverage`` keeps the branches that put the most
    people within ``standard_min`` of a branch for at most ``budget`` a year (or ``budget_share`` of today's
    cost); ``min_cost`` finds the cheapest set keeping ``coverage_target`` within the standard; ``p_median``,
    ``attendance`` (with ``decay``), ``p_center`` and ``fixed_charge`` keep ``p`` branches or stay in the budget.
    """

    objective: Objective = "max_coverage"
    standard_min: float = 15.0
    p: int | None = None
    budget: float | None = None
    budget_share: float | None = None
    coverage_target: float | None = None
    decay: Decay | None = None
    keep: tuple[str, ...] = ()
    close: tuple[str, ...] = ()
    #: Years over which a branch's one-off closure cost is spread when it counts against the annual budget.
    closure_cost_years: float = 5.0
    #: A bookmobile for the people the kept branches leave beyond its standard; ``None`` for none.
    bookmobile: BookmobileRequest | None = None
    time_limit_s: float = 30.0
    seed: int = 0
    workers: int = 2

    @classmethod
    def from_mapping(cls, data: dict[str, Any], *, where: str = "location") -> PlanRequest:
        """Build a request from a scenario's ``location`` section (and optional ``solve`` section)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidProblemError(f"{where}: unknown field(s) {unknown}; known are {sorted(known)}")
        values = dict(data)
        if isinstance(values.get("decay"), dict):
            decay = dict(values["decay"])
            if "scale_min" in decay:
                decay["scale_s"] = 60 * float(decay.pop("scale_min"))
            try:
                values["decay"] = Decay(**decay)
            except TypeError as exc:
                raise InvalidProblemError(f"{where}.decay: {exc}") from None
        if isinstance(values.get("bookmobile"), dict):
            section = dict(values["bookmobile"])
            if "weekdays" in section:
                section["weekdays"] = tuple(int(d) for d in section["weekdays"])
            try:
                values["bookmobile"] = BookmobileRequest(**section)
            except TypeError as exc:
                raise InvalidProblemError(f"{where}.bookmobile: {exc}") from None
        for key in ("keep", "close"):
            if key in values:
                values[key] = tuple(str(v) for v in values[key] or ())
        try:
            return cls(**values)
        except TypeError as exc:
            raise InvalidProblemError(f"{where}: {exc}") from None

    @classmethod
    def from_file(cls, path: Path) -> tuple[str | None, PlanRequest]:
        """Read a YAML or JSON scenario file; return its ``region`` and the request of its ``location`` section."""
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidProblemError(f"{path}: not a readable YAML/JSON scenario ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("location"), dict):
            raise InvalidProblemError(f"{path}: a scenario needs a 'location' section (a mapping)")
        section = dict(data["location"])
        section.update({k: v for k, v in (data.get("solve") or {}).items() if k in ("time_limit_s", "seed", "workers")})
        region = data.get("region")
        return (str(region) if region is not None else None), cls.from_mapping(section, where=f"{path}: location")

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InvalidProblemError(f"objective must be one of {', '.join(OBJECTIVES)}, not {self.objective!r}")
        if not self.closure_cost_years > 0:
            raise InvalidProblemError(f"closure_cost_years must be positive, not {self.closure_cost_years!r}")
        if not self.standard_min > 0:
            raise InvalidProblemError(f"standard_min must be positive, not {self.standard_min!r}")
        if self.budget is not None and self.budget_share is not None:
            raise InvalidProblemError("give either budget or budget_share, not both")
        if self.budget_share is not None and not self.budget_share > 0:
            raise InvalidProblemError(f"budget_share must be positive, not {self.budget_share!r}")
        if self.objective == "min_cost" and self.coverage_target is None:
            raise InvalidProblemError("min_cost needs coverage_target (for example 0.95)")
        both = set(self.keep) & set(self.close)
        if both:
            raise InvalidProblemError(f"branch(es) {sorted(both)} are both forced open (keep) and closed (close)")


def build_problem(region: RegionData, request: PlanRequest) -> LocationProblem:
    """Turn a region and a request into a :class:`LocationProblem` (forced decisions checked by id)."""
    ids = region.branches["branch_id"].astype(str).tolist()
    for field_name, forced in (("keep", request.keep), ("close", request.close)):
        unknown = sorted(set(forced) - set(ids))
        if unknown:
            raise InvalidProblemError(
                f"{field_name}: unknown branch id(s) {unknown}; the region's branches are {', '.join(ids)}"
            )
    must_keep = region.branches["must_keep"].to_numpy(dtype=bool) | np.isin(ids, request.keep)
    forbidden = np.isin(ids, request.close)
    clash = must_keep & forbidden
    if clash.any():
        raise InvalidProblemError(
            f"close: branch(es) {np.asarray(ids)[clash].tolist()} must be kept (must_keep in the branch file)"
        )
    cost = region.branches["annual_cost"].to_numpy(dtype=float)
    budget = request.budget
    if request.budget_share is not None:
        budget = request.budget_share * float(cost.sum())
    return LocationProblem(
        time_s=region.time_s,
        demand=region.demand["population"].to_numpy(dtype=float),
        site_ids=tuple(ids),
        site_cost=cost,
        radius_s=request.standard_min * 60,
        objective=request.objective,
        p=request.p,
        budget=budget,
        coverage_target=request.coverage_target,
        must_keep=must_keep,
        forbidden=forbidden,
        closure_cost=region.branches["closure_cost"].to_numpy(dtype=float) / request.closure_cost_years,
        decay=request.decay,
    )


def region_kpis(region: RegionData, open_mask: np.ndarray) -> dict[str, Any]:
    """KPIs of a set of open branches: overall, by census area and by group."""
    demand = region.demand["population"].to_numpy(dtype=float)
    kpis = access_kpis(
        region.time_s,
        demand,
        open_mask,
        distance_m=region.dist_m,
        groups=region.demand["area_id"].astype(str).to_numpy(),
    )
    by_area = kpis.pop("by_group")
    groups = region.demand["group"].astype(str).to_numpy()
    if len(set(groups.tolist())) > 1:
        kpis["by_group"] = access_kpis(region.time_s, demand, open_mask, distance_m=region.dist_m, groups=groups)[
            "by_group"
        ]
    kpis["by_area"] = by_area
    return kpis


def _decisions(region: RegionData, result: LocationResult) -> list[dict[str, Any]]:
    opened = set(result.open_sites)
    rows = []
    for _, b in region.branches.iterrows():
        keep = b["branch_id"] in opened
        rows.append(
            {
                "branch_id": b["branch_id"],
                "name": b["name"],
                "decision": "keep" if keep else "close",
                "annual_cost": float(b["annual_cost"]),
                "cost_source": b["cost_source"],
                "annual_saving": 0.0 if keep else float(b["annual_cost"]),
                "closure_cost": 0.0 if keep else float(b["closure_cost"]),
                "staffed_hours_week": float(b["staffed_hours_week"]),
                "must_keep": bool(b["must_keep"]),
            }
        )
    return rows


def study_area(region: RegionData) -> Any:
    """The region's outline (EPSG:4326): its census areas, or the demand points' hull when it has none."""
    if len(region.areas):
        return shapely.union_all(region.areas.geometry.values)
    xy = np.column_stack([region.demand.geometry.x, region.demand.geometry.y])
    return shapely.convex_hull(shapely.multipoints(xy)).buffer(0.01)


def _layers(region: RegionData, open_mask: np.ndarray, decisions: list[dict[str, Any]]) -> dict[str, gpd.GeoDataFrame]:
    ids = region.branches["branch_id"].astype(str).to_numpy()
    all_open = np.ones(len(ids), dtype=bool)
    t_before = nearest_open(region.time_s, all_open)
    t_after = nearest_open(region.time_s, open_mask)
    nearest = (
        np.where(np.isfinite(t_after), ids[open_mask][np.argmin(region.time_s[:, open_mask], axis=1)], "")
        if open_mask.any()
        else np.full(len(t_after), "")
    )
    demand = region.demand.drop(columns=[c for c in ("node",) if c in region.demand]).copy()
    demand["time_before_min"] = np.where(np.isfinite(t_before), t_before / 60, np.nan)
    demand["time_after_min"] = np.where(np.isfinite(t_after), t_after / 60, np.nan)
    demand["nearest_branch"] = nearest
    branches = region.branches.drop(columns=[c for c in ("node",) if c in region.branches]).copy()
    branches["decision"] = [d["decision"] for d in decisions]
    study = study_area(region)
    crs = str(region.drive.graph["crs"])
    return {
        "demand": demand,
        "branches": branches,
        "catchments": outputs.catchments(region.demand, nearest, study, crs),
        "areas": region.areas,
        "roads": maps.roads_frame(region.drive),
    }


def run_plan(
    region: RegionData,
    request: PlanRequest,
    out_dir: Path,
    *,
    leaflet_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Solve the request on the region and write ``plan.json``, ``layers.gpkg`` and ``map.html`` to ``out_dir``.

    The folder is written atomically: a failure leaves the previous results (or nothing).
    """
    started = time.perf_counter()
    problem = build_problem(region, request)
    if progress:
        progress("solve", 0.0)
    result = solve_location(
        problem,
        params=SolveParams(time_limit_s=request.time_limit_s, seed=request.seed, workers=request.workers),
    )
    if progress:
        progress("solve", 1.0)
    if result.status in ("infeasible", "time_limit") and not result.open_sites:
        raise InvalidProblemError(f"the solver found no plan ({result.status}) within {request.time_limit_s:g} s")
    ids = region.branches["branch_id"].astype(str).to_numpy()
    open_mask = np.isin(ids, result.open_sites)
    decisions = _decisions(region, result)
    before = region_kpis(region, np.ones(len(ids), dtype=bool))
    after = region_kpis(region, open_mask)
    cost_before = float(region.branches["annual_cost"].sum())
    plan: dict[str, Any] = {
        "region": region.name,
        "request": asdict(request),
        "budget": problem.budget,
        "decisions": decisions,
        "kpis": {"before": before, "after": after},
        "cost": {
            "before": cost_before,
            "after": result.cost,
            "saving": cost_before - result.cost,
            "note": f"after includes one-off closure costs spread over {request.closure_cost_years:g} years",
        },
        "solver": {
            "engine": result.algorithm,
            "status": result.status,
            "objective_name": result.objective_name,
            "objective": result.objective,
            "bound": result.bound,
            "gap": result.gap,
            "runtime_s": result.runtime_s,
            **result.stats,
        },
        "notes": region.meta.get("notes", []),
        "attribution": region.meta.get("attribution", maps.OSM_ATTRIBUTION),
    }
    timetable = None
    bookmobile_routes = None
    layers = _layers(region, open_mask, decisions)
    if request.bookmobile is not None:
        if progress:
            progress("bookmobile", 0.0)
        params = SolveParams(time_limit_s=request.time_limit_s, seed=request.seed, workers=request.workers)
        mobile, stops_layer, routes_layer, timetable = plan_bookmobile(region, open_mask, request.bookmobile,
                                                                       params=params)  # fmt: skip
        layers["bookmobile_stops"] = stops_layer
        layers["bookmobile_routes"] = routes_layer
        bookmobile_routes = routes_layer
        plan["bookmobile"] = {
            "vehicles": request.bookmobile.vehicles, "cycle_weeks": mobile.cycle_weeks,
            "route_days": len(mobile.route_days), "stops_served": int(stops_layer["served"].sum()) if len(stops_layer)
            else 0, "stops_dropped": mobile.dropped, "people_served": mobile.served_prize,
            "cycle_driving_h": mobile.cycle_driving_s / 3600, "timetable": "timetable.csv",
            "routes": "bookmobile_routes.geojson", "calendars": "calendars/",
            "solver": {"status": mobile.status, "objective": mobile.objective, "bound": mobile.bound,
                       "gap": mobile.gap, "runtime_s": mobile.runtime_s},
        }  # fmt: skip
        if progress:
            progress("bookmobile", 1.0)
    if progress:
        progress("write results", 0.0)
    with outputs.atomic_dir(out_dir) as tmp:
        outputs.write_json(plan, tmp / "plan.json")
        if timetable is not None:
            timetable.to_csv(tmp / "timetable.csv", index=False)
            if len(timetable):
                text = timetable.fillna("").astype(str)
                rows = [dict(zip(text.columns.map(str), values, strict=True)) for values in text.to_numpy()]
                write_calendars(timetable_from_rows(rows, source="timetable.csv"), tmp / "calendars")
        if bookmobile_routes is not None and len(bookmobile_routes):
            bookmobile_routes.to_file(tmp / "bookmobile_routes.geojson", driver="GeoJSON")
        outputs.write_layers(tmp / "layers.gpkg", layers)
        summary = (
            f"<table><tr><td>Branches kept</td><td>{int(open_mask.sum())} of {len(ids)}</td></tr>"
            f"<tr><td>Within {request.standard_min:g} min</td><td>{result.covered_share:.1%}"
            f"</td></tr><tr><td>Annual cost</td><td>{result.cost:,.0f} (was {cost_before:,.0f})</td></tr>"
            f"<tr><td>Solver</td><td>{result.status}, gap {result.gap:.2%}</td></tr></table>"
        )
        maps.write_map(
            tmp / "map.html",
            layers,
            leaflet_dir=leaflet_dir,
            title=f"branchnet: {region.name}",
            summary_html=summary,
            attribution=plan["attribution"],
        )
    if progress:
        progress("write results", 1.0)
    plan["runtime_s"] = time.perf_counter() - started
    return plan
