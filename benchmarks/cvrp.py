"""solve_routing on the CVRPLIB Augerat A set, against the best-known costs and PyVRP at the same time limit.

Usage::

    python -m benchmarks.cvrp FILE.vrp... [--time-limit S] [--seed N] [--fleet unlimited|k] [--backend ortools|pyvrp]
    python -m benchmarks.cvrp summary [--time-limit S] [--instances A-n32-k5,...] [--no-pyvrp] [--json] [--seed N]
                                      [--fleet unlimited|k] [--backend ortools|pyvrp]

The per-file command prints one JSON line per file: instance, objective, bound and gap (None: routing proves no
bound), seconds (wall clock of the ``solve_routing`` call, model building included), status, the best-known cost
from the ``optima.csv`` beside the file or its folder, the relative gap to it, the number of routes used and
whether the routes are a valid CVRP solution (every customer once, loads within capacity, the recomputed cost equal
to the reported objective).

``summary`` runs every instance of ``../shared/benchmarks/cvrp/A`` with ours (``solve_routing``, by default with
OR-Tools; ``--backend pyvrp`` runs its PyVRP backend on our reader's matrix), then with PyVRP (``pyvrp.read`` with
``round_func="round"``, ``pyvrp.solve`` with ``MaxRuntime``) at the same time limit and seed, one solver at a time,
and prints both costs and gaps per instance, both mean gaps and the target:

- our mean gap to the best known <= PyVRP's mean gap + 0.3 percentage points.

Fleet. Distances are EUC_2D rounded to the nearest integer. The best-known costs in ``optima.csv`` (all proven
optimal) go with the ``k`` of the file name, which on every A instance is the minimum fleet
ceil(total demand / capacity). By default the solver may use up to n - 1 routes (an unlimited fleet, as PyVRP's
reader assumes for these files). More routes can only lower the optimum, and a cost below the best known is
flagged; none has shown up, although near-optimal solutions of A-n61-k9 use 10 routes with both solvers.
``--fleet k`` limits the solver to ``k`` routes.

Both solvers stop on wall-clock time, so their results depend on the load of the machine: run one benchmark at a
time. Exit code 0 even when the target is missed: the verdict is printed as a PASS/FAIL line.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks._common import emit, shared_dir, verdict
from benchmarks.instances import CvrpInstance, read_cvrp, read_cvrp_best_known

DEFAULT_TIME_LIMIT_S = 10.0
TARGET_MARGIN = 0.003  # 0.3 percentage points of mean gap over PyVRP's
OPTIMUM_RTOL = 1e-9

Record = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# one instance


def best_known(path: Path, name: str) -> float | None:
    """The best-known cost of ``name`` from the ``optima.csv`` beside ``path`` or in its parent folder."""
    for folder in (path.parent, path.parent.parent):
        if (folder / "optima.csv").is_file():
            return read_cvrp_best_known(folder).get(name)
    return None


def check_routes(inst: CvrpInstance, routes: Sequence[Sequence[int]], objective: float) -> str | None:
    """Why ``routes`` (customer lists, depot excluded) are not a valid solution of ``inst``; None when they are."""
    visits = [c for r in routes for c in r]
    customers = set(inst.customers.tolist())
    if sorted(visits) != sorted(customers):
        missing, extra = customers - set(visits), len(visits) - len(set(visits))
        return f"{len(missing)} customer(s) unvisited, {extra} visited twice or more, depot visits {visits.count(0)}"
    for i, r in enumerate(routes):
        load = int(inst.demand[list(r)].sum()) if len(r) else 0
        if load > inst.capacity:
            return f"route {i} carries {load} > capacity {inst.capacity}"
    cost = inst.route_cost([list(r) for r in routes])
    if abs(cost - objective) > 1e-6:
        return f"the routes cost {cost}, not the reported {objective:g}"
    return None


def _record(
    inst: CvrpInstance,
    solver: str,
    objective: float | None,
    seconds: float,
    status: str,
    known: float | None,
    routes: Sequence[Sequence[int]] | None,
    fleet: int,
    **extra: Any,
) -> Record:
    record: Record = {
        "instance": inst.name,
        "solver": solver,
        "objective": objective,
        "bound": None,
        "gap": None,
        "seconds": seconds,
        "status": status,
        "best_known": known,
        "gap_to_best_known": None if objective is None or known is None else (objective - known) / known,
        "n": inst.n,
        "fleet": fleet,
        **extra,
    }
    if routes is not None and objective is not None:
        record["routes"] = sum(1 for r in routes if len(r))
        problem = check_routes(inst, routes, objective)
        record["valid"] = problem is None
        if problem is not None:
            record["status"] = "invalid"
            record["error"] = problem
    return record


def fleet_size(inst: CvrpInstance, fleet: str) -> int:
    """``"unlimited"``: n - 1 vehicles (one per customer); ``"k"``: the k of the file name (n - 1 without one)."""
    return inst.k if fleet == "k" and inst.k is not None else inst.n - 1


def run_ours(
    path: Path, *, time_limit_s: float, seed: int, fleet: str = "unlimited", backend: str = "ortools"
) -> Record:
    """Read, solve with ``solve_routing`` and check one .vrp file; never raises for a solver failure."""
    # imported here so that tests can monkeypatch optimizer.routing.solve_routing
    from optimizer import routing
    from optimizer.params import SolveParams

    inst = read_cvrp(path)
    known = best_known(path, inst.name)
    vehicles = fleet_size(inst, fleet)
    t0 = time.perf_counter()
    try:
        problem = routing.RoutingProblem(
            travel=inst.dist,
            n_vehicles=vehicles,
            starts=(inst.depot,) * vehicles,
            ends=(inst.depot,) * vehicles,
            demand=inst.demand,
            capacity=inst.capacity,
        )
        result = routing.solve_routing(
            problem,
            params=SolveParams(time_limit_s=time_limit_s, seed=seed),
            backend=backend,  # type: ignore[arg-type]
        )
    except Exception as exc:  # a benchmark reports a failing solver and goes on to the next instance
        record = _record(inst, backend, None, time.perf_counter() - t0, "error", known, None, vehicles)
        return record | {"error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - t0
    if not math.isfinite(result.objective):
        return _record(inst, backend, None, seconds, str(result.status), known, None, vehicles)
    routes = [r[1:-1] for r in result.routes]
    return _record(inst, backend, float(result.objective), seconds, str(result.status), known, routes, vehicles)


def pyvrp_available() -> str | None:
    """None when PyVRP imports, else the reason it does not."""
    try:
        import pyvrp  # noqa: F401
    except Exception as exc:  # any import failure means "not available"
        return f"{type(exc).__name__}: {exc}"
    return None


def run_pyvrp(path: Path, *, time_limit_s: float, seed: int) -> Record:
    """Solve a .vrp file with PyVRP's own reader (rounded distances, unlimited fleet) and ``solve``.

    ``seconds`` includes reading the file. The routes are checked against our reader's instance, so that a
    disagreement between the two readers would show as an invalid solution.
    """
    import pyvrp
    from pyvrp.stop import MaxRuntime

    inst = read_cvrp(path)
    known = best_known(path, inst.name)
    t0 = time.perf_counter()
    try:
        data = pyvrp.read(path, round_func="round")
        result = pyvrp.solve(data, stop=MaxRuntime(time_limit_s), seed=seed, collect_stats=False, display=False)
    except Exception as exc:  # see run_ours; PyVRP's reader wants the depot first, for example
        record = _record(inst, "pyvrp", None, time.perf_counter() - t0, "error", known, None, inst.n - 1)
        return record | {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
    seconds = time.perf_counter() - t0
    if not result.is_feasible():
        return _record(inst, "pyvrp", None, seconds, "infeasible", known, None, data.num_vehicles)
    # PyVRP numbers locations depots first, then clients, in the file's order
    order = [inst.depot, *inst.customers.tolist()]
    routes = [[order[data.clients()[a.idx].location] for a in r if a.is_client()] for r in result.best.routes()]
    extra = {"iterations": result.num_iterations}
    return _record(inst, "pyvrp", float(result.cost()), seconds, "feasible", known, routes, data.num_vehicles, **extra)


# ---------------------------------------------------------------------------------------------------------------
# summary


def size_key(path: Path) -> tuple[int, int, str]:
    """Sort A-n33-k5 before A-n33-k6 before A-n34-k5."""
    match = re.search(r"-n(\d+)-k(\d+)", path.stem)
    return (int(match.group(1)), int(match.group(2)), path.stem) if match else (0, 0, path.stem)


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        width = re.match(r"\d*", spec)
        return "-".rjust(int(width.group()) if width and width.group() else 1)
    return format(value, spec)


def _mean_gap(records: list[Record]) -> float | None:
    gaps = [r["gap_to_best_known"] for r in records if r.get("gap_to_best_known") is not None]
    return statistics.fmean(gaps) if gaps else None


HEADER = (
    f"  {'instance':<11} {'best known':>10} {'ours':>8} {'gap':>7} {'routes':>6} {'s':>5}   "
    f"{'PyVRP':>8} {'gap':>7} {'routes':>6} {'s':>5}"
)


def _note(record: Record | None) -> str:
    if record is None:
        return ""
    gap = record.get("gap_to_best_known")
    if gap is not None and gap < -OPTIMUM_RTOL:
        return f"  {record['solver']} BELOW THE BEST KNOWN"
    return f"  {record['solver']}: {record['error']}" if "error" in record else ""


def _row(name: str, ours: Record, theirs: Record | None) -> str:
    right = (
        f"{_fmt(theirs['objective'], '8.0f')} {_fmt(theirs['gap_to_best_known'], '7.2%')} "
        f"{_fmt(theirs.get('routes'), '6d')} {theirs['seconds']:5.1f}"
        if theirs is not None
        else ""
    )
    return (
        f"  {name:<11} {_fmt(ours['best_known'], '10.0f')} {_fmt(ours['objective'], '8.0f')} "
        f"{_fmt(ours['gap_to_best_known'], '7.2%')} {_fmt(ours.get('routes'), '6d')} {ours['seconds']:5.1f}   "
        f"{right}{_note(ours)}{_note(theirs)}"
    )


def summary(args: argparse.Namespace) -> int:
    """Run the A set with ours and PyVRP, print the table and the target; return 0."""
    shared = shared_dir()
    if shared is None:
        print("CVRP benchmark: skipped, ../shared is absent (set BRANCHNET_SHARED_DIR)")
        return 0
    folder = shared / "benchmarks" / "cvrp" / "A"
    files = sorted(folder.glob("*.vrp"), key=size_key)
    if args.instances:
        wanted = {s.strip() for s in args.instances.split(",") if s.strip()}
        unknown = sorted(wanted - {f.stem for f in files})
        if unknown:
            print(f"unknown instance(s), ignored: {', '.join(unknown)}")
        files = [f for f in files if f.stem in wanted]
    text = not args.json
    limit, seed = args.time_limit, args.seed
    reason = None if args.no_pyvrp else pyvrp_available()
    with_pyvrp = not args.no_pyvrp and reason is None

    ours: list[Record] = []
    for path in files:
        ours.append(run_ours(path, time_limit_s=limit, seed=seed, fleet=args.fleet, backend=args.backend))
        if not text:
            emit(ours[-1])
    theirs: list[Record] = []
    if with_pyvrp:
        for path in files:
            theirs.append(run_pyvrp(path, time_limit_s=limit, seed=seed))
            if not text:
                emit(theirs[-1])

    mean_ours, mean_theirs = _mean_gap(ours), _mean_gap(theirs) if theirs else None
    invalid = sum(r["status"] in ("invalid", "error") or r["objective"] is None for r in ours)
    passed = mean_ours is not None and mean_theirs is not None and mean_ours <= mean_theirs + TARGET_MARGIN
    if text:
        both = " and PyVRP" if with_pyvrp else ""
        ours_label = f"solve_routing ({args.backend}, {args.fleet} fleet)"
        print(f"CVRP, Augerat set A: {ours_label}{both} at {limit:g} s each, seed {seed}")
        print(HEADER)
        for i, record in enumerate(ours):
            print(_row(record["instance"], record, theirs[i] if theirs else None))
        print(f"\nmean gap to the best known: ours {_fmt(mean_ours, '.3%')} on {len(ours)}, ", end="")
        if with_pyvrp:
            print(f"PyVRP {_fmt(mean_theirs, '.3%')} on {len(theirs)}")
        else:
            print("PyVRP not run" + (f" ({reason}; pip install -e '.[bench]')" if reason else ""))
        print(f"ours: {len(ours) - invalid}/{len(ours)} valid solutions")
        if with_pyvrp:
            print(
                f"CVRP: our mean gap {_fmt(mean_ours, '.3%')} <= PyVRP's {_fmt(mean_theirs, '.3%')} + "
                f"{TARGET_MARGIN * 100:.1f} pp: {verdict(passed)}"
            )
        else:
            print("CVRP: the target against PyVRP was not evaluated (no PyVRP run)")
    else:
        emit(
            {
                "summary": "cvrp",
                "time_limit_s": limit,
                "fleet": args.fleet,
                "backend": args.backend,
                "ours_mean_gap": mean_ours,
                "pyvrp_mean_gap": mean_theirs,
                "ours_invalid": invalid,
                "target_pass": passed if with_pyvrp else None,
            }
        )
    return 0


# ---------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    args_in = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.cvrp", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, help="seconds per instance")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--fleet", choices=("unlimited", "k"), default="unlimited", help="routes allowed")
        p.add_argument("--backend", choices=("ortools", "pyvrp"), default="ortools", help="solve_routing's backend")

    if args_in and args_in[0] == "summary":
        summ = argparse.ArgumentParser(prog="python -m benchmarks.cvrp summary")
        common(summ)
        summ.add_argument("--instances", help="comma-separated names, e.g. A-n32-k5,A-n80-k10 (default: all)")
        summ.add_argument("--no-pyvrp", action="store_true", help="skip the PyVRP side-by-side")
        summ.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
        return summary(summ.parse_args(args_in[1:]))
    parser.add_argument("files", nargs="+", type=Path, help=".vrp files, or 'summary' (see above)")
    common(parser)
    args = parser.parse_args(args_in)
    failed = False
    for path in args.files:
        record = run_ours(path, time_limit_s=args.time_limit, seed=args.seed, fleet=args.fleet, backend=args.backend)
        failed |= record["status"] in ("error", "invalid")
        emit(record)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
