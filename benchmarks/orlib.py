"""solve_location on the OR-Library p-median and warehouse-location sets, against their published optima and spopt.

Usage::

    python -m benchmarks.orlib pmedian FILE... [--time-limit S] [--seed N]
    python -m benchmarks.orlib cflp FILE... [--capacity N] [--uncapacitated] [--single-source] [--time-limit S]
    python -m benchmarks.orlib summary [--time-limit S] [--spopt-time-limit S] [--instances pmed1,cap41,...]
                                       [--no-spopt] [--json] [--seed N]
    python -m benchmarks.orlib caplike [--time-limit S] [--instances capa-like-8000,...] [--json]
    python -m benchmarks.orlib pmedlike [--time-limit S] [--instances pmed21-like,...] [--instance-seed N] [--json]
    python -m benchmarks.orlib reference {caplike,pmedlike} [--time-limit S] [--instances ...]

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

``--capacity`` is needed only for files whose capacities are the placeholder ``capacity`` (capa, capb, capc) and
only when the capacities are used: ``--uncapacitated`` ignores them. Capacities that cannot hold the customers'
total demand are reported before solving (exit code 2). Such files look their optimum up in ``optima.csv`` under
``NAME-CAPACITY`` (``capa-8000``); ``summary`` runs a capa/capb/capc file found beside the cap files at its four
OR-Library capacities.

``caplike`` and ``pmedlike`` run the seeded stand-ins of :mod:`benchmarks.instances` for the sets that are not
available offline: capa/b/c-like (100 x 1,000, the four OR-Library capacities of each set; targets: within 0.1% of
the reference optimum in <= 30 s with a bound gap <= 1%) and pmed21-40-like (OR-Library's n and p; target: proven
optimal, gap 0, in <= 20 s). Their references are OUR OWN values, in ``benchmarks/reference_optima.csv``, made
once by ``reference`` (a long run of the same exact pipeline; the CSV says whether each was proven and by what) -
they are not published optima, and a reference that was not proven is a best-known value with its bound.
``pmedlike --instance-seed N`` draws other graphs of the same shapes, unseen while the solver was tuned; they have no
reference and pass on a proof alone.

A value counts as the published optimum when it is within a relative 1e-6 of it (the cap values are published
to 0.001). The published capacitated cap values allow a customer's demand to be split across warehouses.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import math
import multiprocessing
import os
import queue as queue_module
import re
import signal
import statistics
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import emit, shared_dir, verdict
from benchmarks.instances import (
    CAP_LIKE_CAPACITIES,
    PMED_LIKE_SIZES,
    CapInstance,
    PMedianInstance,
    generate_cap_like,
    pmedian_like,
    read_cap,
    read_optima,
    read_pmedian,
)

OPTIMUM_RTOL = 1e-6
BOUND_GAP_TARGET = 0.005
BOUND_GAP_SHARE = 0.9  # 18 of 20
DEFAULT_TIME_LIMIT_S = 20.0
CAPLIKE_TIME_LIMIT_S = 30.0
CAPLIKE_OPTIMUM_GAP = 0.001
CAPLIKE_BOUND_GAP = 0.01
REFERENCES = Path(__file__).resolve().parent / "reference_optima.csv"

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


def solve_cflp(
    inst: CapInstance, *, uncapacitated: bool, time_limit_s: float, seed: int, single_source: bool = False
) -> tuple[Any, float]:
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
        single_source=single_source and not uncapacitated,
    )
    result = location.solve_location(problem, params=SolveParams(time_limit_s=time_limit_s, seed=seed, workers=1))
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
    path: Path,
    *,
    time_limit_s: float,
    seed: int,
    uncapacitated: bool = False,
    capacity: float | None = None,
    single_source: bool = False,
) -> Record:
    """Read, solve and compare one cap file; never raises for a solver failure (status ``error``).

    Raises
    ------
    ValueError
        From :func:`read_cap`, before solving: a malformed file, a ``capacity`` placeholder without ``capacity``
        (when the capacities are used), or capacities that cannot hold the total demand.
    """
    inst = read_cap(path, capacity=capacity, uncapacitated=uncapacitated)
    column = "optimal_uncapacitated" if uncapacitated else "optimal_capacitated"
    optimum = _published(path, column)
    if capacity is not None and _has_placeholder(path) and (path.parent / "optima.csv").is_file():
        optimum = read_optima(path.parent).get(f"{path.stem}-{capacity:g}", {}).get(column)
    extra: dict[str, Any] = {"capacitated": not uncapacitated, "m": inst.m, "n": inst.n}
    if capacity is not None:
        extra["capacity"] = capacity
    if single_source:
        extra["single_source"] = True
    name = inst.name if capacity is None else f"{inst.name}-{capacity:g}"
    t0 = time.perf_counter()
    try:
        result, seconds = solve_cflp(inst, uncapacitated=uncapacitated, time_limit_s=time_limit_s, seed=seed,
                                     single_source=single_source)  # fmt: skip
    except Exception as exc:  # see run_pmedian
        return _error_record(name, "cflp", exc, time.perf_counter() - t0, optimum, **extra)
    return _record(name, "cflp", result, seconds, optimum, **extra)


def _has_placeholder(path: Path) -> bool:
    """Whether the cap file's capacities are the word ``capacity`` (capa, capb, capc)."""
    with path.open() as fh:
        head = fh.read(4096).split()
    return len(head) > 2 and head[2].lower() == "capacity"


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
        f"  {label:<24} {_fmt(record['objective'], '14,.3f')} {_fmt(record['optimum'], '14,.3f')} "
        f"{_fmt(record['gap_to_optimum'], '9.3%')} {_fmt(record['gap'], '9.3%')} {record['seconds']:8.2f} "
        f"{record['status']}{_note(record)}"
    )


HEADER = f"  {'instance':<24} {'objective':>14} {'optimum':>14} {'to opt.':>9} {'bound gap':>9} {'seconds':>8} status"


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
            if _has_placeholder(path):  # capa, capb, capc: solved at their four OR-Library capacities
                for q in CAP_LIKE_CAPACITIES.get(path.stem, ()):
                    cap.append(run_cflp(path, time_limit_s=limit, seed=seed, capacity=q))
                    show(f"{path.stem}-{q}", cap[-1])
                continue
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
# the generated stand-ins (capa/b/c-like, pmed21-40-like) against our own reference optima


def read_references(path: Path = REFERENCES) -> dict[str, Record]:
    """``reference_optima.csv``: instance -> {reference, bound, proven, seconds, method}; {} when absent."""
    if not path.is_file():
        return {}
    out: dict[str, Record] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            out[row["instance"]] = {
                "reference": float(row["reference"]),
                "bound": float(row["bound"]),
                "proven": row["proven"].strip().lower() == "true",
                "seconds": float(row["seconds"]),
                "method": row["method"],
            }
    return out


def caplike_names() -> list[tuple[str, str, int]]:
    """(name, set, capacity) of the 12 capa/b/c-like instances."""
    return [(f"{kind}-like-{q}", kind, q) for kind, caps in CAP_LIKE_CAPACITIES.items() for q in caps]


def pmedlike_names() -> list[tuple[str, int]]:
    return [(f"pmed{k}-like", k) for k in PMED_LIKE_SIZES]


def run_caplike(name: str, kind: str, capacity: int, *, time_limit_s: float, seed: int) -> Record:
    inst = generate_cap_like(kind, capacity)
    ref = read_references().get(name)
    result, seconds = solve_cflp(inst, uncapacitated=False, time_limit_s=time_limit_s, seed=seed)
    record = _record(name, "cflp", result, seconds, None if ref is None else ref["reference"], capacity=capacity)
    record["reference_proven"] = None if ref is None else ref["proven"]
    return record


def run_pmedlike(name: str, number: int, *, time_limit_s: float, seed: int, instance_seed: int | None = None) -> Record:
    """One pmed-like stand-in; with ``instance_seed``, another graph of the same shape (seed ``instance_seed +
    number``), named ``pmedN-like@SEED``, which has no reference: it passes on a proof alone."""
    inst = pmedian_like(number, seed=None if instance_seed is None else instance_seed + number)
    if instance_seed is not None:
        name = f"{name}@{instance_seed}"
    ref = None if instance_seed is not None else read_references().get(name)
    result, seconds = solve_pmedian(inst, time_limit_s=time_limit_s, seed=seed)
    record = _record(name, "pmedian", result, seconds, None if ref is None else ref["reference"], n=inst.n, p=inst.p)
    record["reference_proven"] = None if ref is None else ref["proven"]
    return record


def _wanted(args: argparse.Namespace) -> set[str] | None:
    return {s.strip() for s in args.instances.split(",") if s.strip()} if args.instances else None


def stand_ins(args: argparse.Namespace) -> int:
    """``caplike`` / ``pmedlike``: run the generated set, print the table and the targets; return 0."""
    wanted, text = _wanted(args), not args.json
    limit = args.time_limit
    records: list[Record] = []
    if args.command == "caplike":
        if text:
            print(f"capa/b/c-like (seeded stand-ins, 100 x 1,000), solve_location at {limit:g} s; the optimum column "
                  "is OUR reference (reference_optima.csv)\n" + HEADER.replace("optimum", "reference"))  # fmt: skip
        for name, kind, q in caplike_names():
            if wanted is None or name in wanted:
                records.append(run_caplike(name, kind, q, time_limit_s=limit, seed=args.seed))
                _show(text, name, records[-1])
        ok = [
            r["gap_to_optimum"] is not None and r["gap_to_optimum"] <= CAPLIKE_OPTIMUM_GAP
            and r["gap"] <= CAPLIKE_BOUND_GAP and r["seconds"] <= CAPLIKE_TIME_LIMIT_S
            for r in records
        ]  # fmt: skip
        line = (f"capa/b/c-like: within {CAPLIKE_OPTIMUM_GAP:.1%} of the reference with a bound gap <= "
                f"{CAPLIKE_BOUND_GAP:.0%} in <= {CAPLIKE_TIME_LIMIT_S:g} s on {sum(ok)}/{len(ok)}: "
                f"{verdict(all(ok) and bool(ok))}")  # fmt: skip
    else:
        if text:
            print(f"pmed21-40-like (seeded stand-ins), solve_location at {limit:g} s; the optimum column is OUR "
                  "reference (reference_optima.csv)\n" + HEADER.replace("optimum", "reference"))  # fmt: skip
        for name, number in pmedlike_names():
            if wanted is None or name in wanted:
                records.append(
                    run_pmedlike(name, number, time_limit_s=limit, seed=args.seed, instance_seed=args.instance_seed)
                )
                _show(text, f"{records[-1]['instance']} (p={records[-1]['p']})", records[-1])
        # proven optimal, and at the reference where one was recorded (a proof needs no reference)
        ok = [r["status"] == "optimal" and r["gap"] == 0 and (r["optimum"] is None or _reached(r)) for r in records]
        line = (
            f"pmed21-40-like: proven optimal at the reference on {sum(ok)}/{len(ok)}: {verdict(all(ok) and bool(ok))}"
        )
    slowest = max((r["seconds"] for r in records), default=0.0)
    if text:
        print(f"\n{line}\nslowest {slowest:.2f} s", flush=True)
    else:
        emit({"summary": args.command, "pass": all(ok) and bool(ok), "ok": [sum(ok), len(ok)], "slowest_s": slowest})
    return 0


def _show(text: bool, label: str, record: Record) -> None:
    if text:
        print(_row(label, record), flush=True)
    else:
        emit(record)


def reference(args: argparse.Namespace) -> int:
    """Recompute reference optima of a generated set with a long run and write them into reference_optima.csv.

    Capacitated: :func:`optimizer._capacitated.solve_capacitated` with no size limit on the exact MIP (HiGHS on the
    problem left by reduced-cost fixing) and ``--time-limit`` seconds; p-median: ``solve_location`` with
    ``--time-limit`` seconds (Lagrangian branch and bound). ``proven`` is true when the bound met the value.
    """
    from optimizer import _capacitated

    wanted = _wanted(args)
    rows = read_references()
    limit = args.time_limit
    if args.set == "caplike":
        for name, kind, q in caplike_names():
            if wanted is not None and name not in wanted:
                continue
            inst = generate_cap_like(kind, q)
            data = _capacitated.CapData(
                C=inst.cost, demand=inst.demand, capacity=inst.capacity, F=inst.fixed_cost,
                keep=np.zeros(inst.m, dtype=bool), allowed=np.ones(inst.m, dtype=bool),
            )  # fmt: skip
            t0 = time.perf_counter()
            out = _capacitated.solve_capacitated(data, time_limit_s=limit, gap=1e-9, mip_max_assignments=None)
            seconds = time.perf_counter() - t0
            method = f"_capacitated.solve_capacitated, exact MIP without size limit, {limit:g} s"
            rows[name] = {"reference": out.value, "bound": out.bound, "proven": out.proven, "seconds": seconds,
                          "method": method}  # fmt: skip
            print(name, rows[name], flush=True)
            _write_references(rows)
    else:
        for name, number in pmedlike_names():
            if wanted is not None and name not in wanted:
                continue
            result, seconds = solve_pmedian(pmedian_like(number), time_limit_s=limit, seed=args.seed)
            method = f"solve_location (Lagrangian branch and bound), {limit:g} s"
            rows[name] = {"reference": result.objective, "bound": result.bound, "proven": result.status == "optimal",
                          "seconds": seconds, "method": method}  # fmt: skip
            print(name, rows[name], flush=True)
            _write_references(rows)
    return 0


def _write_references(rows: dict[str, Record], path: Path = REFERENCES) -> None:
    order = [n for n, *_ in caplike_names()] + [n for n, _ in pmedlike_names()]
    names = sorted(rows, key=lambda n: (order.index(n) if n in order else len(order), n))
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["instance", "reference", "bound", "proven", "seconds", "method"])
        for n in names:
            r = rows[n]
            w.writerow([n, repr(float(r["reference"])), repr(float(r["bound"])), str(bool(r["proven"])).lower(),
                        f"{float(r['seconds']):.1f}", r["method"]])  # fmt: skip


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
    cflp.add_argument("--single-source", action="store_true", help="serve each customer from one warehouse")
    common(cflp)
    summ = sub.add_parser("summary", help="pmed1-20 and the cap set against the published optima, and spopt")
    common(summ)
    summ.add_argument("--spopt-time-limit", type=float, help="seconds per instance for spopt (default: --time-limit)")
    summ.add_argument("--instances", help="comma-separated names to run, e.g. pmed1,pmed6,cap41 (default: all)")
    summ.add_argument("--no-spopt", action="store_true", help="skip the spopt side-by-side")
    summ.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
    for name, default in (("caplike", CAPLIKE_TIME_LIMIT_S), ("pmedlike", DEFAULT_TIME_LIMIT_S)):
        gen = sub.add_parser(name, help=f"the generated {name} set against reference_optima.csv")
        gen.add_argument("--time-limit", type=float, default=default, help="seconds per instance")
        gen.add_argument("--seed", type=int, default=0)
        gen.add_argument("--instances", help="comma-separated names (default: all)")
        gen.add_argument("--json", action="store_true", help="print JSON lines instead of tables")
        if name == "pmedlike":
            gen.add_argument(
                "--instance-seed", type=int,
                help="other graphs of the same shapes (seed N + the instance number; no reference: a proof passes)",
            )  # fmt: skip
    ref = sub.add_parser("reference", help="recompute reference optima of a generated set (long runs)")
    ref.add_argument("set", choices=["caplike", "pmedlike"])
    ref.add_argument("--time-limit", type=float, default=600.0, help="seconds per instance")
    ref.add_argument("--seed", type=int, default=0)
    ref.add_argument("--instances", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)

    if args.command == "summary":
        return summary(args)
    if args.command in ("caplike", "pmedlike"):
        return stand_ins(args)
    if args.command == "reference":
        return reference(args)
    failed = False
    for path in args.files:
        try:
            if args.command == "pmedian":
                record = run_pmedian(path, time_limit_s=args.time_limit, seed=args.seed)
            else:
                record = run_cflp(
                    path,
                    time_limit_s=args.time_limit,
                    seed=args.seed,
                    uncapacitated=args.uncapacitated,
                    capacity=args.capacity,
                    single_source=args.single_source,
                )
        except ValueError as exc:  # the input, before solving: say what is wrong and stop
            print(f"error: {exc}", file=sys.stderr)
            return 2
        failed |= record["status"] == "error"
        emit(record)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
