"""Enumeration never beats the planner: the free plan against every forced keep/close pattern.

Usage::

    python -m benchmarks.planner_exactness [--quick] [--json] [--only rutland|demo]

*Rutland* (the real case in ``<shared>/data/rutland``): the two example scenarios (``rutland_network.yaml``, and
``rutland_pareto.yaml`` as ``max_coverage`` at 75% of today's cost) and 10 scenarios whose standards, costs, fleet
and hours levels are drawn at random (seeded). Each is planned free, then forced to every one of the 15 keep/close
patterns that keep at least one of the four branches.

*Demo* (the synthetic merged municipality of ``make demo``, 14 branches): ``demo_network.yaml`` and one random
scenario, each free and forced to 50 random patterns.

A forced pattern fixes the branches' open/closed variables and nothing else: the candidate stops and desks do not
depend on the decision (``tests/service/test_planner.py`` checks it), so the forced problems are built once per
scenario. Printed per scenario: the free objective, the best forced objective and its pattern, and the violations
(a forced pattern better than the free plan by more than 0.5%, the routing's noise; target 0), and whether the
free plan's bound is valid against every objective found (at most the least cost, at least the best coverage).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import demo_sources, emit, rutland_sources, shared_dir, verdict

TOLERANCE = 0.005  # forced better than free by more than this share is a violation
RANDOM_SCENARIOS = 10
DEMO_PATTERNS = 50


def _random_scenario(
    base: dict[str, Any], rng: np.random.Generator, name: str, targets: tuple[float, float] = (0.85, 0.98)
) -> dict[str, Any]:
    """A scenario with its standards, costs, fleet and hours levels drawn at random."""
    sc = {k: v for k, v in base.items() if k not in ("budget", "budget_share", "pareto")}
    objective = str(rng.choice(["min_cost", "max_coverage"]))
    sc["name"] = name
    sc["objective"] = objective
    st = dict(base.get("standards", {}))
    st["branch_drive_min"] = round(float(rng.uniform(7.0, 13.0)), 1)
    st["stop_walk_min"] = float(rng.choice([8, 10, 12]))
    st["stop_max_interval_weeks"] = int(rng.choice([2, 4]))
    if objective == "min_cost":
        st["coverage_target"] = round(float(rng.uniform(*targets)), 3)
        st["group_targets"] = {"age_65_plus": round(float(rng.uniform(*targets)), 3)} if rng.random() < 0.6 else {}
    else:
        st["coverage_target"] = None
        st["group_targets"] = {}
        sc["budget_share"] = round(float(rng.uniform(0.45, 0.9)), 3)
    sc["standards"] = st
    costs = dict(base.get("costs", {}))
    costs["per_staffed_hour"] = round(float(rng.uniform(40, 90)))
    costs["bookmobile"] = {
        "vehicle_annual": round(float(rng.uniform(15_000, 60_000))),
        "per_hour": round(float(rng.uniform(30, 60))),
        "per_km": round(float(rng.uniform(0.5, 1.5)), 2),
    }
    costs["home_delivery_per_recipient"] = round(float(rng.uniform(200, 600)))
    sc["costs"] = costs
    fleet = dict(base.get("fleet", {}))
    fleet["max_vehicles"] = int(rng.choice([0, 1, 1, 1, 2]))
    fleet["intervals_weeks"] = sorted({int(x) for x in rng.choice([1, 2, 4], int(rng.integers(1, 4)), replace=False)})
    fleet["weekdays"] = list(range(int(rng.choice([3, 4, 5]))))
    sc["fleet"] = fleet
    sc["hours"] = {"levels": [[1.0], [0.75, 1.0], [0.75, 1.0, 1.25], [0.5, 1.0, 1.5]][int(rng.integers(4))]}
    sc["solve"] = {"time_limit_s": 60, "seed": 0}
    return sc


def _run(label: str, built: Any, patterns: list[np.ndarray], time_limit_s: float) -> dict[str, Any]:
    """The free plan and the plans forced to ``patterns``; the violations and the bound check."""
    from optimizer.errors import InfeasibleProblemError
    from optimizer.params import SolveParams
    from optimizer.planner import solve_plan

    problem = built.problem
    params = SolveParams(time_limit_s=time_limit_s, seed=built.scenario.solve.seed)
    minimise = problem.objective == "min_cost"
    t0 = time.perf_counter()
    try:
        free: Any = solve_plan(problem, params=params)
    except InfeasibleProblemError as exc:
        free = None
        reason = str(exc)
    t_free = time.perf_counter() - t0
    forced: list[tuple[str, float | None]] = []
    must = problem.keep_mask
    for open_mask in patterns:
        if (must & ~open_mask).any():
            continue
        fixed = replace(problem, keep=open_mask, close=~open_mask)
        label_p = "".join("1" if x else "0" for x in open_mask)
        try:
            r = solve_plan(fixed, params=params)
            forced.append((label_p, r.objective if r.status != "infeasible" else None))
        except InfeasibleProblemError:
            forced.append((label_p, None))
    feasible = [(p, v) for p, v in forced if v is not None]
    values = [v for _, v in feasible]
    best_forced: tuple[str | None, float | None] = (None, None)
    if feasible:
        best_forced = min(feasible, key=lambda x: x[1]) if minimise else max(feasible, key=lambda x: x[1])
    if free is None:  # no plan: then no forced pattern may have one either
        return {
            "scenario": label, "objective": problem.objective, "free_objective": None, "free_status": "infeasible",
            "free_reason": reason, "free_bound": None, "free_gap": None, "free_pattern": "", "free_s": t_free,
            "patterns": len(forced), "feasible_patterns": len(values), "best_forced": best_forced[1],
            "best_forced_pattern": best_forced[0], "violations": [p for p, _ in feasible], "bound_valid": True,
            "free_stops": 0, "free_vehicles": 0, "search": "",
        }  # fmt: skip
    if minimise:
        violations = [p for p, v in forced if v is not None and v < free.objective * (1 - TOLERANCE)]
        bound_ok = free.bound is None or free.bound <= min([free.objective, *values]) * (1 + 1e-9)
    else:
        violations = [p for p, v in forced if v is not None and v > free.objective * (1 + TOLERANCE)]
        bound_ok = free.bound is None or free.bound >= max([free.objective, *values]) * (1 - 1e-9)
    return {
        "scenario": label, "objective": problem.objective, "free_objective": free.objective, "free_status": free.status,
        "free_bound": free.bound, "free_gap": free.gap, "free_pattern": "".join("1" if x else "0" for x in
                                                                                 free.decision.branch_open),
        "free_s": t_free, "patterns": len(forced), "feasible_patterns": len(values), "best_forced": best_forced[1],
        "best_forced_pattern": best_forced[0], "violations": violations, "bound_valid": bound_ok,
        "free_stops": int(free.stop_served.sum()), "free_vehicles": free.decision.vehicles,
        "search": free.search.get("method", ""),
    }  # fmt: skip


def _rutland(args: argparse.Namespace) -> list[dict[str, Any]]:
    from geodata.region import prepare_region
    from service.plans.build import build
    from service.plans.scenario import Scenario, example

    shared = shared_dir()
    if shared is None:
        raise SystemExit("benchmarks.planner_exactness needs ../shared (or BRANCHNET_SHARED_DIR) for Rutland")
    sources = rutland_sources(shared)
    with tempfile.TemporaryDirectory() as tmp:
        region = prepare_region("rutland", sources, cache_dir=Path(tmp) / "cache")
    network = example("rutland_network")
    pareto = example("rutland_pareto", objective="max_coverage", budget_share=0.75)
    pareto.pop("pareto", None)
    specs = [("rutland_network.yaml", network), ("rutland_pareto.yaml at 75% budget", pareto)]
    rng = np.random.default_rng(20261202)
    n_random = 3 if args.quick else RANDOM_SCENARIOS
    specs += [(f"random-{q + 1}", _random_scenario(network, rng, f"rutland-random-{q + 1}")) for q in range(n_random)]
    b = len(region.branches)
    patterns = [np.array([(m >> i) & 1 for i in range(b)], dtype=bool) for m in range(1, 1 << b)]
    out = []
    for label, spec in specs:
        built = build(region, Scenario.parse(spec, source=label))
        rec = _run(f"rutland {label}", built, patterns, time_limit_s=float(spec["solve"]["time_limit_s"]))
        _report(rec, args)
        out.append(rec)
    return out


def _demo(args: argparse.Namespace) -> list[dict[str, Any]]:
    from geodata.region import prepare_region
    from service.plans.build import build
    from service.plans.scenario import Scenario, example

    with tempfile.TemporaryDirectory() as tmp:
        region = prepare_region("synthetic-demo-42", demo_sources(Path(tmp) / "demo"), cache_dir=Path(tmp) / "cache")
    network = example("demo_network")
    rng = np.random.default_rng(42)
    # the demo region is sparser than Rutland: targets a little lower, so the random scenario admits plans
    specs = [("demo_network.yaml", network),
             ("random-1", _random_scenario(network, rng, "demo-random-1", targets=(0.80, 0.90)))]  # fmt: skip
    n_patterns = 10 if args.quick else DEMO_PATTERNS
    b = len(region.branches)
    out = []
    for label, spec in specs:
        spec["solve"] = {"time_limit_s": 30, "seed": 0}
        built = build(region, Scenario.parse(spec, source=label))
        must = built.problem.keep_mask
        patterns = [rng.random(b) < rng.uniform(0.2, 0.8) for _ in range(n_patterns)]
        patterns = [p | must for p in patterns]
        rec = _run(f"demo {label}", built, patterns, time_limit_s=30.0)
        _report(rec, args)
        out.append(rec)
    return out


def _report(rec: dict[str, Any], args: argparse.Namespace) -> None:
    if args.json:
        emit(rec)
        return
    fmt = "{:,.0f}" if rec["objective"] == "min_cost" else "{:.4f}"
    if rec["free_objective"] is None:
        print(f"{rec['scenario']:<40} {rec['objective']:<12} free: infeasible ({rec['free_reason']}) | forced "
              f"feasible {rec['feasible_patterns']}/{rec['patterns']} | violations {len(rec['violations'])}",
              flush=True)  # fmt: skip
        return
    best = "-" if rec["best_forced"] is None else fmt.format(rec["best_forced"])
    bound = "none" if rec["free_bound"] is None else fmt.format(rec["free_bound"])
    print(f"{rec['scenario']:<40} {rec['objective']:<12} free {fmt.format(rec['free_objective']):>10} "
          f"({rec['free_status']}, bound {bound}, {rec['free_s']:.0f} s, {rec['free_pattern']}, "
          f"{rec['free_stops']} stops) | best forced "
          f"{best:>10} {rec['best_forced_pattern'] or '':<15} of {rec['feasible_patterns']}/{rec['patterns']} | "
          f"violations {len(rec['violations'])} | bound valid {verdict(rec['bound_valid'])}", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 random Rutland scenarios, 10 demo patterns")
    parser.add_argument("--only", choices=["rutland", "demo"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    records: list[dict[str, Any]] = []
    if args.only in (None, "rutland"):
        records += _rutland(args)
    if args.only in (None, "demo"):
        records += _demo(args)
    violations = sum(len(r["violations"]) for r in records)
    bounds = all(r["bound_valid"] for r in records)
    if args.json:
        emit({"violations": violations, "bounds_valid": bounds, "scenarios": len(records)})
        return
    print(
        f"violations (a forced pattern better than the free plan by > {TOLERANCE:.1%}): {violations} "
        f"(target 0): {verdict(violations == 0)}"
    )
    print(f"every reported bound valid against every objective found: {verdict(bounds)}")


if __name__ == "__main__":
    main()
