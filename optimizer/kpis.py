"""Access KPIs of a network of open sites: who is within reach, and how far the nearest site is.

Pure arrays in, plain dictionaries out, so the CLI, the API and tests compute KPIs the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: Drive-time bands of the standard report (seconds).
DEFAULT_THRESHOLDS_S = (300.0, 600.0, 900.0, 1200.0)
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


def _block(
    time_s: np.ndarray,
    dist_m: np.ndarray | None,
    w: np.ndarray,
    thresholds_s: Sequence[float],
    distance_m: float,
) -> dict[str, Any]:
    total = float(w.sum())
    out: dict[str, Any] = {"population": total}
    for t in thresholds_s:
        pop = float(w[time_s <= t].sum())
        out[f"within_{t / 60:g}min"] = pop
        out[f"share_within_{t / 60:g}min"] = pop / total if total else 1.0
    if dist_m is not None:
        pop = float(w[dist_m <= distance_m].sum())
        out[f"within_{distance_m / 1000:.1f}km_road"] = pop
        out[f"share_within_{distance_m / 1000:.1f}km_road"] = pop / total if total else 1.0
    reach = np.isfinite(time_s)
    out["unreachable"] = float(w[~reach].sum())
    if reach.any() and w[reach].sum() > 0:
        out["mean_time_min"] = float(np.average(time_s[reach], weights=w[reach]) / 60)
        out["p95_time_min"] = _weighted_quantile(time_s[reach], w[reach], 0.95) / 60
    else:
        out["mean_time_min"] = out["p95_time_min"] = float("nan")
    return out


def access_kpis(
    time_s: np.ndarray,
    demand: np.ndarray,
    open_mask: np.ndarray,
    *,
    distance_m: np.ndarray | None = None,
    groups: Sequence[str] | np.ndarray | None = None,
    thresholds_s: Sequence[float] = DEFAULT_THRESHOLDS_S,
    distance_threshold_m: float = TWO_MILES_M,
) -> dict[str, Any]:
    """Return access KPIs overall and, when ``groups`` is given, per group label.

    Parameters
    ----------
    time_s
        (clients, sites) travel time in seconds.
    demand
        (clients,) persons.
    open_mask
        (sites,) which sites are open.
    distance_m
        Optional (clients, sites) road distance in metres, for the distance test.
    groups
        Optional (clients,) label per client (census area or former municipality).
    """
    w = np.asarray(demand, dtype=np.float64)
    t = nearest_open(time_s, open_mask)
    d = nearest_open(distance_m, open_mask) if distance_m is not None else None
    if t.shape != w.shape:
        raise ValueError(f"demand has {w.shape[0]} clients but the matrix has {t.shape[0]} rows")
    result: dict[str, Any] = {"overall": _block(t, d, w, thresholds_s, distance_threshold_m)}
    if groups is not None:
        labels = np.asarray(groups).astype(str)
        result["by_group"] = {
            g: _block(
                t[labels == g],
                None if d is None else d[labels == g],
                w[labels == g],
                thresholds_s,
                distance_threshold_m,
            )
            for g in sorted(set(labels.tolist()))
        }
    return result
