"""Access KPIs of a network of open sites: who is within reach, and how far the nearest site is.

The one KPI engine: region reports, branch-only studies and the joint planner's reports
(:func:`optimizer.planner.evaluate.kpis`) all count access here. Pure arrays in, plain dictionaries out. KPI
keys are fixed names (``share_within_10_min``, ``share_within_2_miles``, ``share_within_standard``,
``mean_drive_min``, ...), never built from a float.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Drive-time bands of the standard report, whole minutes.
DRIVE_BANDS_MIN = (5, 10, 15, 20)
#: Two miles in metres, the UK statutory-style distance test.
TWO_MILES_M = 3218.688


def nearest_open(matrix: np.ndarray, open_mask: np.ndarray) -> np.ndarray:
    """Return each client's value to its nearest open site (``np.inf`` when none is open or reachable)."""
    m = np.asarray(matrix, dtype=np.float64)
    mask = np.asarray(open_mask, dtype=bool)
    if m.ndim != 2 or mask.shape != (m.shape[1],):
        raise ValueError(f"matrix {m.shape} and open mask {mask.shape} do not match")
    if not mask.any():
        return np.full(m.shape[0], np.inf)
    return np.asarray(m[:, mask].min(axis=1))


def _weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    if cum[-1] <= 0:
        return float("nan")
    return float(v[np.searchsorted(cum, q * cum[-1], side="left")])


def access_block(
    time_s: np.ndarray,
    dist_m: np.ndarray | None,
    w: np.ndarray,
    *,
    bands_min: Sequence[int] = DRIVE_BANDS_MIN,
    standard_s: float | None = None,
) -> dict[str, Any]:
    """KPIs of clients with weights ``w`` whose nearest open site is ``time_s`` seconds (``dist_m`` metres) away.

    Keys: ``population``; per band m (whole minutes) ``within_{m}_min`` (people) and ``share_within_{m}_min``;
    with distances ``within_2_miles`` and ``share_within_2_miles``; with a standard ``within_standard`` and
    ``share_within_standard``; ``unreachable`` (people); ``mean_drive_min`` and ``p95_drive_min`` over the
    reachable.
    """
    total = float(w.sum())
    out: dict[str, Any] = {"population": total}

    def share(name: str, mask: np.ndarray) -> None:
        pop = float(w[mask].sum())
        out[f"within_{name}"] = pop
        out[f"share_within_{name}"] = pop / total if total else 1.0

    for m in bands_min:
        if int(m) != m or m <= 0:
            raise ValueError(f"drive-time bands are whole positive minutes, not {m!r}")
        share(f"{int(m)}_min", time_s <= 60 * int(m))
    if dist_m is not None:
        share("2_miles", dist_m <= TWO_MILES_M)
    if standard_s is not None:
        share("standard", time_s <= standard_s)
    reach = np.isfinite(time_s)
    out["unreachable"] = float(w[~reach].sum())
    if reach.any() and w[reach].sum() > 0:
        out["mean_drive_min"] = float(np.average(time_s[reach], weights=w[reach]) / 60)
        out["p95_drive_min"] = _weighted_quantile(time_s[reach], w[reach], 0.95) / 60
    else:
        out["mean_drive_min"] = out["p95_drive_min"] = float("nan")
    return out


def access_kpis(
    time_s: np.ndarray,
    demand: np.ndarray,
    open_mask: np.ndarray,
    *,
    distance_m: np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    bands_min: Sequence[int] = DRIVE_BANDS_MIN,
    standard_s: float | None = None,
) -> dict[str, Any]:
    """Return access KPIs (:func:`access_block`) overall and, when ``groups`` is given, per group label.

    Parameters
    ----------
    time_s
        (clients, sites) travel time in seconds.
    demand
        (clients,) persons.
    open_mask
        (sites,) which sites are open.
    distance_m
        Optional (clients, sites) road distance in metres, for the two-mile test.
    groups
        Optional (clients,) label per client (census area or former municipality).
    standard_s
        Optional drive-time standard in seconds, for ``share_within_standard``.
    """
    w = np.asarray(demand, dtype=np.float64)
    t = nearest_open(time_s, open_mask)
    d = nearest_open(distance_m, open_mask) if distance_m is not None else None
    if t.shape != w.shape:
        raise ValueError(f"demand has {w.shape[0]} clients but the matrix has {t.shape[0]} rows")
    result: dict[str, Any] = {"overall": access_block(t, d, w, bands_min=bands_min, standard_s=standard_s)}
    if groups is not None:
        labels = np.asarray(groups).astype(str)
        result["by_group"] = {
            g: access_block(
                t[labels == g],
                None if d is None else d[labels == g],
                w[labels == g],
                bands_min=bands_min,
                standard_s=standard_s,
            )
            for g in sorted(set(labels.tolist()))
        }
    return result
