"""Coverage against budget: the sweep of a ``pareto`` scenario, its table, its recommended plan and its plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.errors import InvalidProblemError
from optimizer.params import SolveParams
from optimizer.planner import PlannerResult, non_dominated, pareto_front
from service.plans.build import Built

Progress = Callable[[str, float], None]


def sweep(
    b: Built, params: SolveParams, progress: Progress | None
) -> tuple[PlannerResult, float, list[dict[str, Any]]]:
    """Solve the budgets of a ``pareto`` scenario (bisecting until ``pareto.min_points``); return the recommended
    plan (the cheapest non-dominated point within 1 pp of the best coverage), its budget and the table's rows."""
    spec = b.scenario.pareto
    budgets = spec.budgets or list(np.linspace(spec.from_share, spec.to_share, spec.steps) * b.today_cost)
    front = pareto_front(b.problem, [float(x) for x in budgets], params=params, progress=progress,
                         min_points=spec.min_points, max_solves=spec.max_solves)  # fmt: skip
    solved = [(bud, res) for bud, res, _ in front if res is not None]
    if not solved:
        raise InvalidProblemError(f"pareto: no budget in the sweep admits a plan ({front[0][2]})")
    years = b.problem.years
    pts = [(max(res.costs["total"][y] for y in years), res.objective) for _, res in solved]
    nd = set(non_dominated(pts))
    rows: list[dict[str, Any]] = []
    for bud, res, msg in front:
        pos = next((k for k, (bb, _) in enumerate(solved) if bb == bud), None)
        rows.append({"budget": bud, "cost": pts[pos][0] if pos is not None else None,
                     "credit_share": res.objective if res else None,
                     "covered_share": _worst_covered(res, years) if res else None,
                     "branches_kept": int(res.decision.branch_open.sum()) if res else None,
                     "stops": int(res.stop_served.sum()) if res else None,
                     "desks": int(np.sum(res.decision.desk_open)) if res else None,
                     "non_dominated": pos in nd if pos is not None else False, "status": msg})  # fmt: skip
    best_cov = max(v for _, v in pts)
    rec = min((k for k in nd if pts[k][1] >= best_cov - 0.01), key=lambda k: pts[k][0])
    return solved[rec][1], solved[rec][0], rows


def _worst_covered(res: PlannerResult, years: tuple[int, ...]) -> float:
    return min(float(res.kpis[y]["covered_share"]) for y in years)


def pareto_plot(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    pts = [r for r in rows if r["cost"] is not None]
    fig = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(fig)  # no global backend switch (notebooks keep their inline plots)
    ax = fig.add_subplot()
    xs = [r["cost"] / 1000 for r in pts]
    ys = [100 * r["credit_share"] for r in pts]
    ax.plot(xs, ys, "o-", color="#2c7bb6")
    for r, x, y in zip(pts, xs, ys, strict=True):
        ax.annotate(f"{r['branches_kept']}b/{r['stops']}s", (x, y), textcoords="offset points", xytext=(4, -10),
                    fontsize=8)  # fmt: skip
    ax.set_xlabel("annual cost (thousands)")
    ax.set_ylabel("need-weighted coverage credit (%)")
    ax.set_title(f"{title}: coverage against budget")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
