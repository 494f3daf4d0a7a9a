"""solve_location on the OR-Library p-median and warehouse-location sets, against their published optima and spopt.

Usage::

    python -m benchmarks.orlib pmedian FILE... [--time-limit S] [--seed N]
    python -m benchmarks.orlib cflp FILE... [--capacity N] [--uncapacitated] [--time-limit S] [--seed N]
    python -m benchmarks.orlib summary [--time-limit S] [--spopt-time-limit S] [--instances pmed1,cap41,...]
                                       [--no-spopt] [--json] [--seed N]

``pmedian`` and ``cflp`` print one JSON line per file: instance, objective, bound, gap (the solver's own bound
gap), seconds (wall clock of the ``solve_location`` call), status, and the published optimum with the relative gap
to it when the file sits beside an ``optima.csv`` that lists it.

``summary`` runs pmed1–pmed20 and every cap instance (capacitated; uncapacitated too where a published
uncapacitated optimum exists) and prints a table per set, then the targets:

- p-median: the published optimum reached on 20/20;
- p-median: a proven bound gap <= 0.5% on at least 18/20 (90% of the instances run);
- cap: the published optimum reached on all.

Then it solves the same p-median instances with spopt's ``PMedian`` (its default solver, PuLP's bundled CBC) at the
same time limit, and prints spopt's objective, its gap to the optimum, and the ratios ours/spopt of objective and
time. spopt's seconds include building the PuLP model (as ours include building the model), and CBC runs on one
thread. Exit code 0 even when a target is missed: the verdicts are printed as PASS/FAIL lines.

A value counts as the published optimum when it is within a relative 1e-6 of it (the cap values are published
to 0.001). The published capacitated cap values allow a customer's demand to be split across warehouses.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing
import os
import queue as queue_module
import re
import signal
import statistics
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import emit, shared_dir, verdict
from benchmarks.instances import CapInstance, PMedianInstance, read_cap, read_optima, read_pmedian

OPTIMUM_RTOL = 1e-6
BOUND_GAP_TARGET = 0.005
BOUND_GAP_SHARE = 0.9  # 18 of 20
DEFAULT_TIME_LIMIT_S = 20.0

Record = dict[str, Any]


# ---------------------------------------------------------------------------------------------------------------
# solving one instance


def _published(path: Path, column: str) -> float | None:
    """The value in ``column`` of the ``optima.csv`` beside ``path`` for its instance, if there is one."""
    if not (path.parent / "optima.csv").is_file():
        return None
    return read_optima(path.parent).get(path.stem, {}).get(column)


def _record(name: str, kind: str, result: Any, seconds: float, optimum: float | None, **extra: Any) -> Record:
    objective = float(result.objective)
    return {
        "instance": name,
        "kind": kind,
        "objective": objective,
        "bound": float(result.bound),
        "gap": float(result.gap),
        "seconds": seconds,
        "status": str(result.status),
        "optimum": optimum,
        "gap_to_optimum": None if optimum is None else (objective - optimum) / abs(optimum),
        **extra,
    }


def _error_record(name: str, kind: str, exc: Exception, seconds: float, optimum: float | None, **extra: Any) -> Record:
    return {
        "instance": name,
        "kind": kind,
        "objective": None,
        "bound": None,
        "gap": None,
        "seconds": seconds,
        "status": "error",
        "optimum": optimum,
        "gap_to_optimum": None,
        "error": f"{type(exc).__name__}: {exc}",
        **extra,
    }


def solve_pmedian(inst: PMedianInstance, *, time_limit_s: float, seed: int) -> tuple[Any, float]:
    """Solve a p-median instance with ``solve_location``; return the result and the wall-clock seconds."""
    # imported here so that tests can monkeypatch optimizer.location.solve_location
    from optimizer import location
    from optimizer.params import SolveParams

    t0 = time.perf_counter()
    problem = location.LocationProblem(
        time_s=inst.dist,
        demand=np.ones(inst.n),
        site_ids=tuple(str(j) for j in range(inst.n)),
        site_cost=np.zeros(inst.n),
        objective="p_median",
        p=inst.p,
    )
    result = location.solve_location(problem, params=SolveParams(time_limit_s=time_limit_s, seed=seed))
    return result, time.perf_counter() - t0


def solve_cflp(inst: CapInstance, *, uncapacitated: bool, time_limit_s: float, seed: int) -> tuple[Any, float]:
    """Solve a warehouse-location instance as a fixed-charge location problem; return the result and seconds."""
    from optimizer import location
    from optimizer.params import SolveParams

    t0 = time.perf_counter()
    problem = location.LocationProblem(
        time_s=inst.cost,
        demand=inst.demand,
        site_ids=tuple(str(j) for j in range(inst.m)),
        site_cost=inst.fixed_cost,
        objective="fixed_charge",
        assign_cost=inst.cost,
        capacity=None if uncapacitated else inst.capacity,
    )
    result = location.solve_location(problem, params=SolveParams(time_limit_s=time_limit_s, seed=seed))
    return result, time.perf_counter() - t0


def run_pmedian(path: Path, *, time_limit_s: float, seed: int) -> Record:
    """Read, solve and compare one pmed file; never raises for a solver failure (status ``error``)."""
    inst = read_pmedian(path)
    optimum = _published(path, "optimal")
    t0 = time.perf_counter()
    try:
        result, seconds = solve_pmedian(inst, time_limit_s=time_limit_s, seed=seed)
    except Exception as exc:  # a benchmark reports a failing solver and goes on to the next instance
        return _error_record(inst.name, "pmedian", exc, time.perf_counter() - t0, optimum, n=inst.n, p=inst.p)
    return _record(inst.name, "pmedian", result, seconds, optimum, n=inst.n, p=inst.p)


def run_cflp(
    path: Path, *, time_limit_s: float, seed: int, uncapacitated: bool = False, capacity: float | None = None
) -> Record:
    """Read, solve and compare one cap file; never raises for a solver failure (status ``error``)."""
    inst = read_cap(path, capacity=capacity)
    optimum = _published(path, "optimal_uncapacitated" if uncapacitated else "optimal_capacitated")
    extra = {"capacitated": not uncapacitated, "m": inst.m, "n": inst.n}
    t0 = time.perf_counter()
    try:
        result, seconds = solve_cflp(inst, uncapacitated=uncapacitated, time_limit_s=time_limit_s, seed=seed)
    except Exception as exc:  # see run_pmedian
        return _error_record(inst.name, "cflp", exc, time.perf_counter() - t0, optimum, **extra)
    return _record(inst.name, "cflp", result, seconds, optimum, **extra)


# ---------------------------------------------------------------------------------------------------------------
# spopt


def spopt_available() -> str | None:
    """None when spopt and PuLP import, else the reason they do not."""
    try:
        import pulp  # noqa: F401
        from spopt.locate import PMedian  # noqa: F401
    except Exception as exc:  # spopt pulls in a large stack; any import failure means "not available"
        return f"{type(exc).__name__}: {exc}"
    return None


def run_spopt_pmedian(path: Path, *, time_limit_s: float) -> Record:
    """Solve a pmed file with spopt's PMedian and CBC; the objective is read from the PuLP problem.

    ``status`` is ``optimal`` (CBC proved it), ``feasible`` (the incumbent at the time limit) or ``no solution``.
    ``objective_open_sites`` re-evaluates the open sites with every vertex sent to its nearest one, which is what
    the p-median objective means; it equals ``objective`` unless CBC's incumbent assigns a vertex to a farther one.
    """
    import pulp
    from spopt.locate import PMedian

    inst = read_pmedian(path)
    optimum = _published(path, "optimal")
    record: Record = {"instance": inst.name, "kind": "pmedian", "solver": "spopt+cbc", "optimum": optimum}
    with warnings.catch_warnings():
        # PuLP 3.x deprecates building variables directly (as spopt does) and PULP_CBC_CMD, its bundled CBC
        warnings.simplefilter("ignore", DeprecationWarning)
        t0 = time.perf_counter()
        model = PMedian.from_cost_matrix(np.array(inst.dist), np.ones(inst.n), p_facilities=inst.p)
        build_s = time.perf_counter() - t0
        # spopt's check_status raises RuntimeError when PuLP has no solution within the limit: the status is read
        # below. results=False skips spopt's O(n^2) client/facility tables, which are not used here.
        with contextlib.suppress(RuntimeError):
            model.solve(pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit_s), results=False)
        seconds = time.perf_counter() - t0
    problem = model.problem
    value = problem.objective.value() if problem.status == pulp.LpStatusOptimal else None
    if value is None or problem.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return {**record, "objective": None, "status": "no solution", "seconds": seconds, "build_s": build_s}
    objective = float(value)
    open_sites = np.flatnonzero(np.array([v.value() or 0.0 for v in model.fac_vars]) > 0.5)
    return {
        **record,
        "objective": objective,
        "objective_open_sites": inst.evaluate(open_sites) if open_sites.size else None,
        "status": "optimal" if problem.sol_status == pulp.LpSolutionOptimal else "feasible",
        "seconds": seconds,
        "build_s": build_s,
        "gap_to_optimum": None if optimum is None else (objective - optimum) / abs(optimum),
    }


def _spopt_child(path: Path, time_limit_s: float, queue: Any) -> None:
    os.setsid()  # own process group, so CBC (a grandchild) dies with it
    queue.put(run_spopt_pmedian(path, time_limit_s=time_limit_s))


def run_spopt_bounded(path: Path, *, time_limit_s: float) -> Record:
    """Run :func:`run_spopt_pmedian` in a child process killed at twice the limit plus 15 s.

    CBC checks its time limit only between phases and can overrun it by minutes on n >= 300.
    """
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_spopt_child, args=(path, time_limit_s, queue))
    hard = 2 * time_limit_s + 15
    t0 = time.perf_counter()
    child.start()
    try:
        return dict(queue.get(timeout=hard))
    except queue_module.Empty:
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
        inst = read_pmedian(path)
        return {"instance": inst.name, "kind": "pmedian", "solver": "spopt+cbc", "objective": None,
                "optimum": _published(path, "optimal"), "status": f"killed at {hard:g} s",
                "seconds": time.perf_counter() - t0}  # fmt: skip
    finally:
        child.join(timeout=5)


# ---------------------------------------------------------------------------------------------------------------
# summary


def _number_key(path: Path) -> tuple[str, int]:
    match = re.search(r"(\d+)$", path.stem)
    return (path.stem.rstrip("0123456789"), int(match.group(1)) if match else -1)


def _reached(record: Record) -> bool:
    gap = record.get("gap_to_optimum")
    return gap is not None and abs(gap) <= OPTIMUM_RTOL


def _fmt(value: float | None, spec: str) -> str:
    """Format ``value`` with ``spec``; None becomes a dash padded to the spec's width."""
    if value is None:
        width = re.match(r"\d*", spec)
        return "-".rjust(int(width.group()) if width and width.group() else 1)
    return format(value, spec)


def _note(record: Record) -> str:
    gap = record.get("gap_to_optimum")
    if gap is not None and gap < -OPTIMUM_RTOL:
        return "  BELOW THE PUBLISHED OPTIMUM: check the model"
    return f"  {record['error']}" if "error" in record else ""


def _row(label: str, record: Record) -> str:
    return (
        f"  {label:<16} {_fmt(record['objective'], '14,.3f')} {_fmt(record['optimum'], '14,.3f')} "
        f"{_fmt(record['gap_to_optimum'], '9.3%')} {_fmt(record['gap'], '9.3%')} {record['seconds']:8.2f} "
        f"{record['status']}{_note(record)}"
    )


HEADER = f"  {'instance':<16} {'objective':>14} {'optimum':>14} {'to opt.':>9} {'bound gap':>9} {'seconds':>8} status"


def _select(files: Iterable[Path], wanted: set[str] | None) -> list[Path]:
    return sorted((f for f in files if wanted is None or f.stem in wanted), key=_number_key)


def summary(args: argparse.Namespace) -> int:
    """Run the sets, print the tables, the targets and the spopt side-by-side; return 0."""
    shared = shared_dir()
    if shared is None:
        print("OR-Library benchmark: skipped, ../shared is absent (set BRANCHNET_SHARED_DIR)")
        return 0
    root = shared / "benchmarks"
    wanted = {s.strip() for s in args.instances.split(",") if s.strip()} if args.instances else None
    pmed_files = _select((root / "pmedian").glob("pmed*.txt"), wanted)
    cap_dir = root / "facility_location"
    cap_files = _select(cap_dir.glob("cap*.txt"), wanted)
    if wanted is not None:
        unknown = sorted(wanted - {f.stem for f in [*pmed_files, *cap_files]})
        if unknown:
            print(f"unknown instance(s), ignored: {', '.join(unknown)}")
    cap_optima = read_optima(cap_dir) if (cap_dir / "optima.csv").is_file() else {}
    text = not args.json
    limit, seed = args.time_limit, args.seed

    def show(label: str, record: Record) -> None:
        if text:
            print(_row(label, record), flush=True)
        else:
            emit({"solver": "branchnet", **record})

    pm: list[Record] = []
    if pmed_files:
        if text:
            print(f"p-median (OR-Library pmed, Beasley 1985), solve_location at {limit:g} s\n{HEADER}", flush=True)
        for path in pmed_files:
            pm.append(run_pmedian(path, time_limit_s=limit, seed=seed))
            show(f"{path.stem} (p={pm[-1]['p']})", pm[-1])

    cap: list[Record] = []
    if cap_files:
        if text:
            print(f"\nwarehouse location (OR-Library cap, Beasley 1988), solve_location at {limit:g} s\n{HEADER}")
        for path in cap_files:
            cap.append(run_cflp(path, time_limit_s=limit, seed=seed))
            show(f"{path.stem}", cap[-1])
            if cap_optima.get(path.stem, {}).get("optimal_uncapacitated") is not None:
                cap.append(run_cflp(path, time_limit_s=limit, seed=seed, uncapacitated=True))
                show(f"{path.stem} uncap.", cap[-1])

    totals: Record = {"summary": "orlib", "time_limit_s": limit}
    lines: list[str] = []
    if pm:
        n = len(pm)
        reached = sum(_reached(r) for r in pm)
        tight = sum(r["gap"] is not None and r["gap"] <= BOUND_GAP_TARGET for r in pm)
        need = math.ceil(BOUND_GAP_SHARE * n)
        totals |= {"pmedian_optimum": [reached, n], "pmedian_bound_gap_ok": [tight, n]}
        totals |= {"pmedian_optimum_pass": reached == n, "pmedian_bound_gap_pass": tight >= need}
        lines += [
            f"p-median: published optimum reached on {reached}/{n} (target {n}/{n}): {verdict(reached == n)}",
            f"p-median: bound gap <= {BOUND_GAP_TARGET:.1%} on {tight}/{n} (target >= {need}/{n}): "
            f"{verdict(tight >= need)}",
        ]
    if cap:
        n, reached = len(cap), sum(_reached(r) for r in cap)
        totals |= {"cap_optimum": [reached, n], "cap_optimum_pass": reached == n}
        lines.append(f"cap: published optimum on {reached}/{n} (target {n}/{n}): {verdict(reached == n)}")
    if text and lines:
        print("\n" + "\n".join(lines), flush=True)

    if pm and not args.no_spopt:
        totals |= side_by_side(pmed_files, pm, time_limit_s=args.spopt_time_limit or limit, text=text)
    if not text:
        emit(totals)
    return 0


def side_by_side(pmed_files: list[Path], ours: list[Record], *, time_limit_s: float, text: bool) -> Record:
    """Solve the same pmed files with spopt; print its results and the ratios ours/spopt."""
    reason = spopt_available()
    if reason is not None:
        message = f"spopt side-by-side: skipped, spopt or pulp does not import ({reason}); pip install -e '.[bench]'"
        if text:
            print(message, flush=True)
        else:
            emit({"spopt": "unavailable", "reason": reason})
        return {"spopt": "unavailable"}
    if text:
        print(
            f"\nspopt PMedian + PuLP's CBC (1 thread) at {time_limit_s:g} s, same instances\n"
            f"  {'instance':<16} {'spopt obj.':>14} {'to opt.':>9} {'seconds':>8} {'status':<12} "
            f"{'ours/spopt obj.':>15} {'ours/spopt time':>15}",
            flush=True,
        )
    theirs: list[Record] = []
    for path, mine in zip(pmed_files, ours, strict=True):
        record = run_spopt_bounded(path, time_limit_s=time_limit_s)
        both = mine["objective"] is not None and record["objective"] is not None and record["objective"] > 0
        record["ratio_objective"] = mine["objective"] / record["objective"] if both else None
        record["ratio_seconds"] = mine["seconds"] / record["seconds"]
        theirs.append(record)
        if text:
            print(
                f"  {path.stem:<16} {_fmt(record['objective'], '14,.1f')} "
                f"{_fmt(record.get('gap_to_optimum'), '9.3%')} {record['seconds']:8.2f} {record['status']:<12} "
                f"{_fmt(record['ratio_objective'], '15.4f')} {_fmt(record['ratio_seconds'], '15.3f')}",
                flush=True,
            )
        else:
            emit(record)
    our_gaps = [r["gap_to_optimum"] for r in ours if r.get("gap_to_optimum") is not None]
    their_gaps = [r["gap_to_optimum"] for r in theirs if r.get("gap_to_optimum") is not None]
    unsolved = sum(r["objective"] is None for r in theirs)
    mean_ours = statistics.fmean(our_gaps) if our_gaps else None
    mean_theirs = statistics.fmean(their_gaps) if their_gaps else None
    if text:
        print(
            f"mean gap to the published optimum: ours {_fmt(mean_ours, '.3%')} on {len(our_gaps)}, "
            f"spopt {_fmt(mean_theirs, '.3%')} on {len(their_gaps)} ({unsolved} with no solution)",
            flush=True,
        )
    return {"spopt_mean_gap": mean_theirs, "ours_mean_gap": mean_ours, "spopt_no_solution": unsolved}


# ---------------------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.orlib", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, help="seconds per instance")
        p.add_argument("--seed", type=int, default=0)

    pmed = sub.add_parser("pmedian", help="solve OR-Library pmed files, one JSON line each")
    pmed.add_argument("files", nargs="+", type=Path)
    common(pmed)
    cflp = sub.add_parser("cflp", help="solve OR-Library cap files, one JSON line each")
    cflp.add_argument("files", nargs="+", type=Path)
    cflp.add_argument("--capacity", type=float, help="capacity for files with the 'capacity' placeholder")
    cflp.add_argument("--uncapacitated", action="store_true", help="ignore the capacities")
    common(cflp)
    summ = sub.add_parser("summary", help="pmed1-20 and the cap set against the published optima, and spopt")
    common(summ)
    summ.add_argument("--spopt-time-limit", type=float, help="seconds per instance for spopt (default: --time-limit)")
    summ.add_argument("--instances", help="comma-separated names to run, e.g. pmed1,pmed6,cap41 (default: all)")
    summ.add_argument("--no-spopt", action="store_true", help="skip the spopt side-by-side")
    summ.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    args = parser.parse_args(argv)

    if args.command == "summary":
        return summary(args)
    failed = False
    for path in args.files:
        if args.command == "pmedian":
            record = run_pmedian(path, time_limit_s=args.time_limit, seed=args.seed)
        else:
            record = run_cflp(
                path,
                time_limit_s=args.time_limit,
                seed=args.seed,
                uncapacitated=args.uncapacitated,
                capacity=args.capacity,
            )
        failed |= record["status"] == "error"
        emit(record)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
