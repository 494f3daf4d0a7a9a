"""solve_covering_tour on the m-CTP instances (Hà et al. 2013), against the proven optima.

Usage::

    python -m benchmarks.mctp FILE.ctp... [--time-limit S] [--seed N]
    python -m benchmarks.mctp summary [--time-limit S] [--seed N] [--json]

A FILE run prints one JSON line per file: instance, objective (total route cost), bound and gap (NaN: the solver
proves no bound: null), seconds (wall clock of the solve), status, p, q, the number of routes and visited vertices, and
the published optimum (``upper_bound`` in the ``optima.csv`` one folder up) with the relative gap to it.

``summary`` runs the instances listed in ``optima.csv`` and prints a table, then the target: every instance
within 1% of its optimum. Exit code 0 even when the target is missed (the verdict is a PASS/FAIL line).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from benchmarks._common import emit, instance_main, shared_dir, verdict
from benchmarks.routing_instances import read_covering_tour, read_ctp_optima

TARGET_GAP = 0.01
DEFAULT_TIME_LIMIT_S = 10.0

Record = dict[str, Any]


def _optimum(path: Path) -> float | None:
    table = path.resolve().parent.parent / "optima.csv"
    return read_ctp_optima(table).get(path.stem) if table.is_file() else None


def run_file(path: Path, *, time_limit_s: float, seed: int) -> Record:
    """Read, solve and compare one ``.ctp`` file; never raises for a solver failure (status ``error``)."""
    from optimizer.covering_tour import CoveringTourProblem, solve_covering_tour
    from optimizer.params import SolveParams

    inst = read_covering_tour(path)
    optimum = _optimum(path)
    record: Record = {"instance": inst.name, "p": inst.p, "q": inst.q, "optimum": optimum}
    t0 = time.perf_counter()
    try:
        problem = CoveringTourProblem(inst.cost, inst.cover, tuple(range(inst.n_mandatory)), inst.p, inst.q)
        result = solve_covering_tour(problem, params=SolveParams(time_limit_s=time_limit_s, seed=seed))
    except Exception as exc:  # a benchmark reports a failing solver and goes on
        return {**record, "objective": None, "bound": None, "gap": None, "seconds": time.perf_counter() - t0,
                "status": "error", "gap_to_optimum": None, "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip
    return {
        **record,
        "objective": result.objective,
        "bound": None if math.isnan(result.bound) else result.bound,
        "gap": None if math.isnan(result.gap) else result.gap,
        "seconds": time.perf_counter() - t0,
        "status": result.status,
        "routes": len(result.routes),
        "visited": len(result.visited),
        "gap_to_optimum": None if optimum is None else (result.objective - optimum) / optimum,
    }


def summary(args: argparse.Namespace) -> int:
    """Run the instances with proven optima, print the table and the target; return 0."""
    shared = shared_dir()
    if shared is None:
        print("m-CTP benchmark: skipped, ../shared is absent (set BRANCHNET_SHARED_DIR)")
        return 0
    root = shared / "benchmarks" / "covering_tour"
    optima = read_ctp_optima(root / "optima.csv")
    text = not args.json
    if text:
        print(f"m-CTP (Hà et al. 2013), solve_covering_tour at {args.time_limit:g} s\n  {'instance':<20} {'p':>2} "
              f"{'q':>6} {'objective':>10} {'optimum':>10} {'to opt.':>8} {'seconds':>8} status")  # fmt: skip
    records: list[Record] = []
    for name in optima:
        rec = run_file(root / "instances" / f"{name}.ctp", time_limit_s=args.time_limit, seed=args.seed)
        records.append(rec)
        if text:
            obj = "-" if rec["objective"] is None else f"{rec['objective']:10,.0f}"
            gap = "-" if rec["gap_to_optimum"] is None else f"{rec['gap_to_optimum']:8.3%}"
            note = f"  {rec['error']}" if "error" in rec else ""
            if rec["gap_to_optimum"] is not None and rec["gap_to_optimum"] < -1e-9:
                note = "  BELOW THE PROVEN OPTIMUM: check the model"
            print(f"  {rec['instance']:<20} {rec['p']:>2} {rec['q']:6g} {obj:>10} {rec['optimum']:10,.0f} {gap:>8} "
                  f"{rec['seconds']:8.2f} {rec['status']}{note}", flush=True)  # fmt: skip
        else:
            emit(rec)
    n = len(records)
    within = sum(r["gap_to_optimum"] is not None and r["gap_to_optimum"] <= TARGET_GAP for r in records)
    exact = sum(r["gap_to_optimum"] is not None and abs(r["gap_to_optimum"]) <= 1e-9 for r in records)
    total_s = sum(r["seconds"] for r in records)
    ok = n > 0 and within == n
    if text:
        print(f"\noptimum reached on {exact}/{n}; total solve time {total_s:.1f} s")
        print(f"m-CTP: within {TARGET_GAP:.0%} of the proven optimum on {within}/{n} (target {n}/{n}): {verdict(ok)}")
    else:
        emit({"summary": "mctp", "within_1pct": [within, n], "optimal": [exact, n], "pass": ok, "seconds": total_s,
              "time_limit_s": args.time_limit})  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    return instance_main(argv, module="benchmarks.mctp", doc=__doc__, files_help=".ctp files, or 'summary'",
                         default_time_limit_s=DEFAULT_TIME_LIMIT_S, run_file=run_file, summary=summary)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
