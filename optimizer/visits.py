"""Expected visits: an attendance model with distance decay and opening hours (or visit frequency).

Every resident makes ``per_resident`` physical visits a year to a library on the doorstep open full hours. Fewer
when it is further away, open fewer hours or visited less often. Each service in reach has a *pull* in [0, 1]; a
resident uses at least one with probability ``1 - prod(1 - pull)`` and makes ``per_resident x need`` times that many
visits, split among the services in proportion to their pulls, where

- ``pull`` of a branch is its hours-aware credit (``PlannerProblem.credits``: ``weight x min(1, h / full) ** e``)
  times ``exp(-drive minutes / decay_min)``; of a served bookmobile stop in walking reach, its credit (from the
  hours it stands there a week) times ``exp(-walk minutes / decay_min)``; of an open desk in reach, its credit;
- ``need`` is the age group's need weight (one minus its digital uptake);
- each home-delivery recipient receives ``home_delivery_per_recipient`` deliveries a year, counted as visits.

Defaults, estimates to be replaced by local counts: 3.0 visits per resident a year (CIPFA's public library
statistics for England, 2019/20: about 180 million physical visits for 56 million residents, 3.2 a head, rounded
down for the counts' drop since), a 15-minute decay scale (visits halve about every 10 minutes of drive: the scale
of the attendance model of :mod:`optimizer.location`), and 12 deliveries a year (monthly, the usual "library comes
to you" round).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer.planner.evaluate import access, home_delivery_recipients
from optimizer.planner.problem import PlanDecision, PlannerProblem, VisitModel


@dataclass(frozen=True)
class Visits:
    """Expected visits of one decision: per year, per service, and the service each point goes to."""

    total: np.ndarray  # (Y,) all visits, home deliveries included
    by_mode: list[dict[str, float]]  # per year: branch, bookmobile, desk, home_delivery
    by_service: dict[str, float]  # first year: visits per branch id, "stop <id>", "desk <id>"
    service: np.ndarray  # (N,) the service pulling each point most ("" for none)
    mode: np.ndarray  # (N,) its mode
    facility: np.ndarray  # (Y, N) visits each point's residents make to the services in reach
    delivered: np.ndarray  # (Y, N) home deliveries to each point's recipients
    by_point_mode: dict[str, np.ndarray]  # mode -> (Y, N) visits each point's residents make by that mode

    @property
    def per_point(self) -> np.ndarray:
        """(Y, N) visits of each point's residents, home deliveries included."""
        return np.asarray(self.facility + self.delivered)


def expected_visits(
    problem: PlannerProblem, decision: PlanDecision, model: VisitModel, *, stop_served: np.ndarray | None = None
) -> Visits:
    """The visits ``decision`` attracts (module docstring)."""
    cr = problem.credits
    pulls: list[np.ndarray] = []  # (N, K) blocks: every option's pull
    names: list[str] = []
    modes: list[str] = []
    open_b = decision.branch_open
    level = np.asarray(decision.branch_level)
    hours = np.asarray(problem.branch_hours)[np.arange(len(open_b)), np.maximum(level, 0)]
    t = np.asarray(problem.branch_time_s, dtype=np.float64) / 60.0
    pulls.append(
        np.where(open_b[None, :], cr.branch.credit(np.nan_to_num(hours))[None, :] * np.exp(-t / model.decay_min), 0)
    )
    names += list(problem.branch_ids)
    modes += ["branch"] * len(open_b)
    if len(problem.stop_ids):
        interval = np.asarray(decision.stop_interval, dtype=np.int64)
        served = interval > 0 if stop_served is None else np.asarray(stop_served, dtype=bool) & (interval > 0)
        walk = np.asarray(problem.stop_walk_s, dtype=np.float64)
        reach = (walk <= problem.standards.stop_walk_s) & served[None, :]
        s_hours = np.where(served, np.asarray(problem.stop_dwell_s) / 3600.0 / np.maximum(interval, 1), 0.0)
        pulls.append(np.where(reach, cr.mobile.credit(s_hours)[None, :] * np.exp(-walk / 60.0 / model.decay_min), 0.0))
        names += [f"stop {s}" for s in problem.stop_ids]
        modes += ["bookmobile"] * len(problem.stop_ids)
    if len(problem.desk_ids):
        opened = np.asarray(decision.desk_open, dtype=bool)
        reach = np.asarray(problem.desk_reach, dtype=bool) & opened[None, :]
        pulls.append(np.where(reach, cr.desk.credit(np.asarray(problem.desk_hours))[None, :], 0.0))
        names += [f"desk {d}" for d in problem.desk_ids]
        modes += ["desk"] * len(problem.desk_ids)
    P = np.clip(np.concatenate(pulls, axis=1), 0.0, 1.0)
    # a resident uses each option within reach: at least one with probability 1 - prod(1 - pull), the visits split
    # among them in proportion to their pulls
    reached = 1.0 - np.prod(1.0 - P, axis=1)
    total_pull = P.sum(axis=1)
    share = np.divide(P, total_pull[:, None], out=np.zeros_like(P), where=total_pull[:, None] > 0)
    best = P.argmax(axis=1)
    has = total_pull > 0
    service = np.where(has, np.asarray(names, dtype=object)[best], "").astype(str)
    mode = np.where(has, np.asarray(modes, dtype=object)[best], "none").astype(str)
    pop = np.asarray(problem.population, dtype=np.float64)
    need = problem.need_weights
    acc = access(problem, decision, stop_served=stop_served)
    recipients = home_delivery_recipients(problem, acc)  # (Y, N)
    # recipients take deliveries instead of their own visits
    rest = np.einsum("ynd,d->yn", pop, need) - recipients * need[problem.senior_group]
    facility = model.per_resident * rest * reached[None, :]
    delivered = recipients * model.home_delivery_per_recipient
    per_option = facility[:, :, None] * share[None, :, :]  # (Y, N, K)
    mode_arr = np.asarray(modes)
    by_mode = []
    for y in range(pop.shape[0]):
        out = {m: float(per_option[y][:, mode_arr == m].sum()) for m in ("branch", "bookmobile", "desk")}
        out["home_delivery"] = float(delivered[y].sum())
        by_mode.append(out)
    first = per_option[0].sum(axis=0)
    by_service = {name: float(v) for name, v in zip(names, first.tolist(), strict=True) if v > 0}
    by_point_mode = {m: per_option[:, :, mode_arr == m].sum(axis=2) for m in ("branch", "bookmobile", "desk")}
    total = (facility + delivered).sum(axis=1)
    return Visits(total, by_mode, by_service, service, mode, facility, delivered, by_point_mode)


def closure_account(
    problem: PlannerProblem, today_v: Visits, plan_v: Visits, year: int = 0
) -> dict[str, dict[str, Any]]:
    """Per branch open today and closed in the plan: the visits its residents made today, and how many the plan
    keeps by mode (another branch, the bookmobile, a desk, home delivery); ``lost`` is the difference."""
    out: dict[str, dict[str, Any]] = {}
    for b in problem.branch_ids:
        mine = today_v.service == b
        if not mine.any() or (plan_v.service == b).any():
            continue
        before = float(today_v.per_point[year, mine].sum())
        recovered = {m: float(plan_v.by_point_mode[m][year, mine].sum()) for m in ("branch", "bookmobile", "desk")}
        recovered["home_delivery"] = float(plan_v.delivered[year, mine].sum())
        total_after = sum(recovered.values())
        out[b] = {"today": before, "after": total_after, "lost": before - total_after, "recovered_by": recovered}
    return out


__all__ = ["VisitModel", "Visits", "closure_account", "expected_visits"]
