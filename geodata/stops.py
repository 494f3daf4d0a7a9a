"""Candidate bookmobile stops: where a mobile library could park to serve people no kept branch covers.

Stops are chosen greedily on the walk network: among road nodes where a bookmobile can safely stop (not on
trunk or primary roads), repeatedly take the one whose walking catchment holds the most still-unserved people,
until no candidate reaches ``min_population``. Each demand point is credited to one stop only, so the stops'
populations add up to the people they serve. Councils' review rules can be applied: a minimum distance from
any static library (Cheshire East's two miles) and a minimum catchment (Kent withdraws stops with too few users).

:func:`stop_catchments` gives every stop's whole walking catchment (a resident may walk to several stops) and
how much of it one visit can serve (:class:`StopCapacity`): a van serves a limited number of visitors an hour,
so a stop counts its nearest residents up to what its longest dwell can serve, and no more.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from geodata.errors import InvalidValueError
from geodata.matrix import local_costs, travel_time_matrix
from geodata.population import AGE_GROUPS

#: Road types a bookmobile may stop on: local roads and village streets, not through roads.
SAFE_HIGHWAYS = frozenset({"residential", "unclassified", "tertiary", "living_street", "road", "service", "secondary"})


@dataclass(frozen=True)
class StopRules:
    """How candidate stops are generated.

    Parameters
    ----------
    walk_min
        Walking catchment of a stop, minutes on the walk network (plus the walk from each home to the path).
    walk_kph
        Walking speed for the catchment.
    min_population
        Smallest catchment worth a stop.
    min_branch_distance_m
        Stops closer than this (straight line) to a kept branch are not generated; 3,219 m is the two-mile rule.
    max_stops
        Upper bound on the number of stops.
    """

    walk_min: float = 10.0
    walk_kph: float = 4.8
    min_population: float = 30.0
    min_branch_distance_m: float = 0.0
    max_stops: int | None = None

    def __post_init__(self) -> None:
        if not self.walk_min > 0 or not self.walk_kph > 0:
            raise InvalidValueError("walk_min and walk_kph must be positive")
        if self.min_population < 0 or self.min_branch_distance_m < 0:
            raise InvalidValueError("min_population and min_branch_distance_m must be non-negative")


@dataclass(frozen=True)
class StopCapacity:
    """How many people one bookmobile visit can serve, and the dwell it needs.

    Parameters
    ----------
    visitors_per_hour
        Visitors the van serves an hour. Default 40: 90 seconds per visitor at the counter (an issue or return
        transaction, with browsing in parallel), the dwell rule branchnet has used since its first bookmobile
        model. No visitor counts are in the shared data; set it from your own service's counts.
    uptake
        Share of the catchment that visits at each visit.
    setup_min
        Fixed time per visit: parking, opening up, closing (the shortest real stops in the 20 UK councils'
        timetables in ``../shared``, 1,897 stops, last 5 to 10 minutes; 10 minutes is their 5th percentile).
    max_dwell_min
        Longest visit. Default 120 minutes: the 95th percentile of the stop durations in those timetables
        (median 30, 90th percentile 65).
    """

    visitors_per_hour: float = 40.0
    uptake: float = 0.04
    setup_min: float = 10.0
    max_dwell_min: float = 120.0

    def __post_init__(self) -> None:
        if not self.visitors_per_hour >= 1:
            raise InvalidValueError(f"visitors_per_hour must be at least 1, not {self.visitors_per_hour!r}")
        if not 0 < self.uptake <= 1:
            raise InvalidValueError(f"uptake must lie in (0, 1], not {self.uptake!r}")
        if not 0 <= self.setup_min < self.max_dwell_min:
            raise InvalidValueError(
                f"setup_min ({self.setup_min!r}) must be non-negative and below max_dwell_min ({self.max_dwell_min!r})"
            )

    @property
    def people(self) -> float:
        """Residents one visit can serve: visitors in the longest dwell, over the uptake."""
        return self.visitors_per_hour * (self.max_dwell_min - self.setup_min) / 60.0 / self.uptake

    def dwell_s(self, people: np.ndarray) -> np.ndarray:
        """Dwell seconds a visit needs for ``people`` residents in its served catchment."""
        visitors = np.asarray(people, dtype=np.float64) * self.uptake
        need = (self.setup_min + 60.0 * visitors / self.visitors_per_hour) * 60.0
        return np.asarray(np.minimum(need, self.max_dwell_min * 60.0))


def stop_catchments(
    walk: nx.MultiDiGraph,
    demand: gpd.GeoDataFrame,
    stops: gpd.GeoDataFrame,
    *,
    walk_min: float,
    walk_kph: float = 4.8,
    capacity: StopCapacity | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Walking times from every demand point to every stop, each stop limited to what one visit can serve.

    Returns ``(walk_s, catchment, served)``: (points, stops) walking seconds, ``inf`` beyond ``walk_min`` or
    beyond the stop's capacity (residents are taken nearest first, whole demand points, up to
    :attr:`StopCapacity.people`); and per stop the people within the walk and the people it counts.
    """
    crs = walk.graph["crs"]
    n, s = len(demand), len(stops)
    walk_s = np.full((n, s), np.inf)
    if not s or not n:
        return walk_s, np.zeros(s), np.zeros(s)
    pts = demand.to_crs(crs)
    pxy = np.column_stack([pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()])
    sxy = stops.to_crs(crs).get_coordinates().to_numpy()
    walk_nodes = np.fromiter(walk.nodes, dtype=np.int64)
    tree = cKDTree(_xy(walk, walk_nodes))
    p_dist, p_pos = tree.query(pxy)
    s_dist, s_pos = tree.query(sxy)
    speed = walk_kph / 3.6
    limit = walk_min * 60
    t = travel_time_matrix(walk, walk_nodes[s_pos], walk_nodes[p_pos], cutoff=limit)
    t = (t + (s_dist[:, None] + p_dist[None, :]) / speed).T
    within = t <= limit
    pop = pts["population"].to_numpy(dtype=float)
    catchment = (within * pop[:, None]).sum(axis=0)
    cap = np.inf if capacity is None else capacity.people
    for j in range(s):
        idx = np.flatnonzero(within[:, j])
        order = idx[np.lexsort((idx, t[idx, j]))]  # nearest first, ties by point
        fits = np.cumsum(pop[order]) <= cap + 1e-9
        walk_s[order[fits], j] = t[order[fits], j]
    served = (np.isfinite(walk_s) * pop[:, None]).sum(axis=0)
    return walk_s, catchment, served


def _safe_nodes(G: nx.MultiDiGraph) -> np.ndarray:
    safe: set[int] = set()
    for u, v, hwy in G.edges(data="highway"):
        h = hwy[0] if isinstance(hwy, list) else hwy
        if h in SAFE_HIGHWAYS:
            safe.update((u, v))
    return np.fromiter(sorted(safe), dtype=np.int64)


def _xy(G: nx.MultiDiGraph, nodes: np.ndarray) -> np.ndarray:
    return np.array([(G.nodes[n]["x"], G.nodes[n]["y"]) for n in nodes.tolist()]).reshape(-1, 2)


def candidate_stops(
    drive: nx.MultiDiGraph,
    walk: nx.MultiDiGraph,
    demand: gpd.GeoDataFrame,
    unserved: np.ndarray,
    *,
    branches: gpd.GeoDataFrame | None = None,
    settlements: gpd.GeoDataFrame | None = None,
    rules: StopRules | None = None,
) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """Choose candidate stops for the ``unserved`` demand points.

    Parameters
    ----------
    drive, walk
        Projected graphs in the same CRS (stops are drive nodes; catchments are walked).
    demand
        Demand points (any CRS) with ``population`` and the age-group columns.
    unserved
        (points,) booleans: the people a stop should serve (for example, beyond the drive-time standard of every
        kept branch).
    branches
        Kept branches, for the minimum-distance rule.
    settlements
        Points with a ``name`` field; a stop's community is the nearest settlement within 3 km, else empty (a stop
        of its own; "one stop per community" applies only to named communities).

    Returns
    -------
    stops, served_by
        Stops (EPSG:4326) with ``stop_id``, ``node`` (drive graph), ``community``, ``area_id``, ``group``,
        ``population`` and age groups of the people credited to it; and for every demand point the index of the
        stop that serves it, or -1.
    """
    rules = rules or StopRules()
    crs = drive.graph["crs"]
    pts = demand.to_crs(crs)
    served_by = np.full(len(pts), -1, dtype=np.int64)
    want = np.flatnonzero(np.asarray(unserved, dtype=bool) & (pts["population"].to_numpy() > 0))
    empty = gpd.GeoDataFrame(
        {"stop_id": [], "node": [], "community": [], "area_id": [], "group": [], "population": []},
        geometry=[], crs="EPSG:4326",
    )  # fmt: skip
    if not len(want):
        return empty, served_by
    reach_m = rules.walk_min / 60 * rules.walk_kph * 1000
    pxy = np.column_stack([pts.geometry.x.to_numpy()[want], pts.geometry.y.to_numpy()[want]])
    cand = _safe_nodes(drive)
    cxy = _xy(drive, cand)
    near = cKDTree(pxy).query_ball_point(cxy, r=reach_m, return_length=True) > 0
    if branches is not None and len(branches) and rules.min_branch_distance_m > 0:
        bxy = np.column_stack([branches.to_crs(crs).geometry.x, branches.to_crs(crs).geometry.y])
        near &= cKDTree(bxy).query(cxy)[0] >= rules.min_branch_distance_m
    cand, cxy = cand[near], cxy[near]
    if not len(cand):
        return empty, served_by
    # walk network: homes and stops snapped to walk nodes; the snap counts as walking
    walk_nodes = np.fromiter(walk.nodes, dtype=np.int64)
    tree = cKDTree(_xy(walk, walk_nodes))
    p_dist, p_pos = tree.query(pxy)
    c_dist, c_pos = tree.query(cxy)
    speed = rules.walk_kph / 3.6
    limit = rules.walk_min * 60
    pop = pts["population"].to_numpy(dtype=float)[want]
    # who can walk to which candidate (sparse: a few hundred homes per stop, not every home in the region)
    at_c, at_p, secs = local_costs(walk, walk_nodes[c_pos], walk_nodes[p_pos], cutoff=limit)
    ok = secs + (c_dist[at_c] + p_dist[at_p]) / speed <= limit
    reach = sp.csr_matrix((np.ones(int(ok.sum())), (at_c[ok], at_p[ok])), shape=(len(cand), len(want)))
    by_point = reach.tocsc()
    chosen: list[int] = []
    left = np.ones(len(want), dtype=bool)
    gain = reach @ pop  # people each candidate would newly serve, kept up to date
    while rules.max_stops is None or len(chosen) < rules.max_stops:
        best = int(np.argmax(gain))
        if gain[best] < max(rules.min_population, 1e-9):
            break
        homes = reach.indices[reach.indptr[best] : reach.indptr[best + 1]]
        take = homes[left[homes]]
        served_by[want[take]] = len(chosen)
        left[take] = False
        gain -= by_point[:, take] @ pop[take]
        chosen.append(best)
    if not chosen:
        return empty, served_by
    rows = []
    lonlat = gpd.GeoSeries(gpd.points_from_xy(cxy[chosen, 0], cxy[chosen, 1]), crs=crs).to_crs("EPSG:4326")
    names = None
    if settlements is not None and len(settlements):
        s = settlements.to_crs(crs)
        d, i = cKDTree(np.column_stack([s.geometry.x, s.geometry.y])).query(cxy[chosen])
        names = np.where(d <= 3000, s["name"].astype(str).to_numpy()[i], "")
    for k, c in enumerate(chosen):
        mine = served_by == k
        block = pts.loc[mine]
        heaviest = block.iloc[int(np.argmax(block["population"].to_numpy()))]
        rows.append({
            "stop_id": f"stop-{k + 1:03d}", "node": int(cand[c]),
            "community": names[k] if names is not None else "",
            "area_id": str(heaviest["area_id"]), "group": str(heaviest.get("group", "")),
            "population": float(block["population"].sum()),
            **{g: float(block[g].sum()) for g in AGE_GROUPS if g in block},
        })  # fmt: skip
    stops = gpd.GeoDataFrame(pd.DataFrame(rows), geometry=lonlat.values, crs="EPSG:4326")
    return stops, served_by
