"""Junction and turn costs, and the edge-expanded graph that carries them into every shortest path.

A car loses time at junctions that an edge weight cannot hold: it waits at signals and stop lines, gives way when
it joins a bigger road, and slows to turn, more when it turns across the oncoming traffic (right in left-hand
traffic countries such as the UK, left elsewhere). These costs depend on the pair of edges, so they live on an
**edge-expanded graph**: one node per directed road edge, and an arc from edge ``(u, v)`` to each edge ``(v, w)``
weighing ``travel_time(v, w)`` plus the cost of that movement at ``v``. Each road node also gets a source node
(arcs to its out-edges, weighing their travel time) and a target node (arcs from its in-edges, weighing nothing),
so that node-to-node costs are ordinary shortest paths: no cost is charged at the start or the end of a trip.

The cost of a movement from ``e = (u, v)`` to ``f = (v, w)`` at ``v`` is the sum of:

- the control at ``v``: a traffic signal, a stop sign or a give-way sign (OSM node tags ``highway=traffic_signals``,
  ``stop``, ``give_way``; a ``mini_roundabout`` counts as give way), charged to every movement through ``v``;
- at a junction (``v`` joins three or more road nodes): a turn cost by the turn's angle and side (straight on:
  nothing; a turn with the traffic: ``turn_s``; a turn across it: ``cross_s``) and, when ``e`` is of a lower road
  class than the biggest road at ``v``, ``yield_s`` per class between them (up to four: a residential street
  joining a tertiary road gives way for 2 x ``yield_s``, a tertiary road joining a trunk road for 3 x) unless a
  sign at ``v`` already says so; entering a roundabout costs at least ``yield_s``, moving on or off it nothing;
- a U-turn (``w == u``): ``uturn_s``. U-turns are allowed everywhere, so that the expanded graph reaches what the
  road graph reaches.

Defaults and their sources. Valhalla's auto costing charges turns by type (``kTCStraight`` 0.5 s to
``kTCUnfavorableSharp`` 3.5 s, scaled by a "stop impact" of 0-7 from the classes that meet), signals and a maneuver
penalty. The defaults here are of that size: a turn with the traffic 2 s, across it 3 s, giving way 1.5 s per
class step, a stop sign 5 s, a give-way sign 2 s, a signal 4 s, a U-turn 20 s. A least-squares fit of Valhalla's
Rutland times on the routes' lengths by class and their junction events gave 2-5 s a turn and 1.5-4.6 s a
give-way (the split between them is poorly determined). With these defaults junctions make 3.3% of the drive time
between random Rutland nodes and branches, close to the 4% seen in Valhalla's routes there. A profile file can
override each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from geodata.errors import InvalidValueError

#: Road class ranks: a road gives way to any road of a higher rank at a junction. Links share their road's rank.
ROAD_RANK: Mapping[str, int] = {
    "motorway": 7, "motorway_link": 7, "trunk": 6, "trunk_link": 6, "primary": 5, "primary_link": 5,
    "secondary": 4, "secondary_link": 4, "tertiary": 3, "tertiary_link": 3, "unclassified": 2, "road": 2,
    "residential": 1, "living_street": 0, "service": 0, "track": 0,
}  # fmt: skip

#: Node controls read from OSM node tags (``highway=...``), coded on graph nodes as ``control``.
CONTROLS = ("traffic_signals", "stop", "give_way", "mini_roundabout")


@dataclass(frozen=True)
class TurnCosts:
    """Seconds lost at junctions (module docstring). ``drive_side`` says which turns cross the traffic."""

    turn_s: float = 2.0
    cross_s: float = 3.0
    yield_s: float = 1.5
    uturn_s: float = 20.0
    signal_s: float = 4.0
    stop_s: float = 5.0
    give_way_s: float = 2.0
    #: Turns within this many degrees of straight on are straight on.
    straight_deg: float = 30.0
    drive_side: Literal["left", "right"] = "left"

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "drive_side":
                if value not in ("left", "right"):
                    raise InvalidValueError(f"turn costs: drive_side must be 'left' or 'right', not {value!r}")
            elif not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise InvalidValueError(f"turn costs: {name} must be a non-negative number of seconds, not {value!r}")
        if not self.straight_deg < 90:
            raise InvalidValueError(f"turn costs: straight_deg must be below 90, not {self.straight_deg}")

    def scaled(self, factor: float) -> TurnCosts:
        """The same costs times ``factor`` (a slower, longer vehicle)."""
        d = {k: v * factor for k, v in asdict(self).items() if k not in ("drive_side", "straight_deg")}
        return TurnCosts(**d, straight_deg=self.straight_deg, drive_side=self.drive_side)

    def as_dict(self) -> dict[str, object]:
        """Plain data, for cache keys, reports and ``G.graph["turn_costs"]``."""
        return asdict(self)


@dataclass(frozen=True)
class EdgeExpanded:
    """The edge-expanded graph of a road graph with ``n`` nodes and ``m`` (distinct) directed edges.

    Rows ``0..m-1`` are the edges, ``m + i`` the source node of road node ``i`` and ``m + n + i`` its target node.
    """

    csr: sp.csr_matrix
    #: The road node each row stands at (an edge: its head).
    row_node: np.ndarray
    n_edges: int
    n_nodes: int

    def source_rows(self, pos: np.ndarray) -> np.ndarray:
        return self.n_edges + np.asarray(pos, dtype=np.int64)

    def target_rows(self, pos: np.ndarray) -> np.ndarray:
        return self.n_edges + self.n_nodes + np.asarray(pos, dtype=np.int64)


def concat_ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``concatenate([arange(s, s + c) for s, c in zip(starts, counts)])`` without the loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
    return offsets + np.arange(total, dtype=np.int64)


def movement_costs(
    costs: TurnCosts,
    *,
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    angle: np.ndarray,
    rank_in: np.ndarray,
    rank_max: np.ndarray,
    ways: np.ndarray,
    control: np.ndarray,
    round_in: np.ndarray,
    round_out: np.ndarray,
) -> np.ndarray:
    """Seconds for each movement ``u -> v -> w`` (arrays aligned per movement; module docstring).

    ``angle`` is the signed change of heading in degrees (positive: to the left), ``rank_max`` the biggest road
    rank at ``v``, ``ways`` the number of road nodes adjacent to ``v`` and ``control`` its code (0 none, else
    ``1 + CONTROLS.index(tag)``); ``round_in``/``round_out`` say whether the in- and out-edge are on a roundabout.
    """
    signal, stop, give_way, mini = (1 + CONTROLS.index(c) for c in CONTROLS)
    out = np.zeros(len(u))
    out[control == signal] += costs.signal_s
    out[control == stop] += costs.stop_s
    out[(control == give_way) | (control == mini)] += costs.give_way_s
    uturn = w == u
    out[uturn] += costs.uturn_s
    junction = (ways >= 3) & ~uturn
    straight = np.abs(angle) <= costs.straight_deg
    across = angle < 0 if costs.drive_side == "left" else angle > 0
    on_round = round_in & round_out
    turning = junction & ~straight & ~on_round & ~round_out
    out[turning & across] += costs.cross_s
    out[turning & ~across] += costs.turn_s
    # giving way costs more the bigger the road given way to: yield_s per class step, up to four
    steps = np.clip(rank_max - rank_in, 0, 4)
    gives_way = junction & (control == 0) & ~round_in & ((steps > 0) | round_out)
    out[gives_way] += costs.yield_s * np.maximum(steps[gives_way], 1)
    return out


def expand(
    costs: TurnCosts,
    *,
    n: int,
    tail: np.ndarray,
    head: np.ndarray,
    weight: np.ndarray,
    xy: np.ndarray,
    rank: np.ndarray,
    roundabout: np.ndarray,
    control: np.ndarray,
) -> EdgeExpanded:
    """Build the edge-expanded graph of ``n`` road nodes and distinct directed edges ``tail -> head``.

    ``xy`` holds the nodes' planar coordinates (x east, y north), ``rank``/``roundabout`` the edges' class rank and
    roundabout flag, ``control`` the nodes' control codes.
    """
    m = len(tail)
    tail = np.asarray(tail, dtype=np.int64)
    head = np.asarray(head, dtype=np.int64)
    heading = np.degrees(np.arctan2(xy[head, 1] - xy[tail, 1], xy[head, 0] - xy[tail, 0]))
    # the edges out of each node, contiguous
    by_tail = np.argsort(tail, kind="stable")
    out_ptr = np.searchsorted(tail[by_tail], np.arange(n + 1))
    out_deg = np.diff(out_ptr)
    # movements e -> f for every edge e and every edge f out of e's head
    e = np.repeat(np.arange(m, dtype=np.int64), out_deg[head])
    f = by_tail[concat_ranges(out_ptr[head], out_deg[head])]
    at = head[e]
    # adjacency counts on the undirected simple graph; biggest road rank at each node
    pairs = np.unique(np.concatenate([np.minimum(tail, head), np.maximum(tail, head)]).reshape(2, -1).T, axis=0)
    ways = np.bincount(pairs.ravel(), minlength=n)
    rank_max = np.full(n, -1, dtype=np.int64)
    np.maximum.at(rank_max, tail, rank)
    np.maximum.at(rank_max, head, rank)
    angle = (heading[f] - heading[e] + 180.0) % 360.0 - 180.0
    turn = movement_costs(
        costs,
        u=tail[e],
        v=at,
        w=head[f],
        angle=angle,
        rank_in=rank[e],
        rank_max=rank_max[at],
        ways=ways[at],
        control=control[at],
        round_in=roundabout[e],
        round_out=roundabout[f],
    )
    nodes = np.arange(n, dtype=np.int64)
    rows = np.concatenate([e, m + tail, np.arange(m, dtype=np.int64), m + nodes])
    cols = np.concatenate([f, np.arange(m, dtype=np.int64), m + n + head, m + n + nodes])
    vals = np.concatenate([weight[f] + turn, weight, np.zeros(m), np.zeros(n)])
    size = m + 2 * n
    # explicit zeros must survive as arcs: scipy drops stored zeros only on request, and the kernels read them
    csr = sp.csr_matrix((vals, (rows, cols)), shape=(size, size))
    csr.sort_indices()
    row_node = np.concatenate([head, nodes, nodes])
    return EdgeExpanded(csr=csr, row_node=row_node, n_edges=m, n_nodes=n)
