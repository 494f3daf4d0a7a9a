"""Junction and turn costs: where the tags put them, and shortest paths on the edge-expanded graph against an
independent networkx search over (edge, edge) movements."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata._osm import read_osm
from geodata.matrix import travel_time_matrix
from geodata.network import build_network
from geodata.speeds import CAR, SpeedProfile
from geodata.turns import CONTROLS, ROAD_RANK, TurnCosts

COSTS = TurnCosts()


Nodes = dict[int, tuple[float, float, str | None]]


def osm(tmp_path: Path, nodes: Nodes, ways: list[tuple[list[int], dict[str, str]]]) -> Path:
    """Write an OSM XML file: nodes ``id -> (lon, lat, highway control or None)`` and ways ``(refs, tags)``."""
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="branchnet-tests">']
    for i, (lon, lat, control) in nodes.items():
        tag = f'<tag k="highway" v="{control}"/>' if control else ""
        lines.append(f'<node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}">{tag}</node>')
    for k, (refs, tags) in enumerate(ways, start=100):
        nds = "".join(f'<nd ref="{r}"/>' for r in refs)
        tg = "".join(f'<tag k="{a}" v="{b}"/>' for a, b in tags.items())
        lines.append(f'<way id="{k}" version="1">{nds}{tg}</way>')
    lines.append("</osm>")
    path = tmp_path / "junction.osm"
    path.write_text("\n".join(lines))
    return path


def crossroads(tmp_path: Path, *, centre: str | None = None, minor: str = "tertiary") -> nx.MultiDiGraph:
    """A crossroads at node 5: a tertiary road south (1) - north (2), a ``minor`` road west (3) - east (4)."""
    d = 0.004
    nodes = {5: (9.5, 56.2, centre), 1: (9.5, 56.2 - d, None), 2: (9.5, 56.2 + d, None),
             3: (9.5 - 2 * d, 56.2, None), 4: (9.5 + 2 * d, 56.2, None)}  # fmt: skip
    ways = [([1, 5, 2], {"highway": "tertiary"}), ([3, 5, 4], {"highway": minor})]
    G, _ = build_network(read_osm(osm(tmp_path, nodes, ways)), mode="drive")
    return G


def trip(G: nx.MultiDiGraph, path: list[int]) -> float:
    """The time of driving ``path`` edge by edge, junctions free."""
    return sum(min(d["travel_time"] for d in G[a][b].values()) for a, b in itertools.pairwise(path))


def cost(G: nx.MultiDiGraph, a: int, b: int) -> float:
    return float(travel_time_matrix(G, [a], [b])[0, 0])


def test_a_signal_costs_every_movement_through_it(tmp_path: Path) -> None:
    G = crossroads(tmp_path, centre="traffic_signals")
    assert G.nodes[5]["control"] == "traffic_signals"
    assert cost(G, 1, 2) == pytest.approx(trip(G, [1, 5, 2]) + COSTS.signal_s)  # straight on: the signal only
    # turning right, across the traffic where it drives on the left: the signal and the turn; no give-way on top
    assert COSTS.drive_side == "left"
    assert cost(G, 1, 4) == pytest.approx(trip(G, [1, 5, 4]) + COSTS.signal_s + COSTS.cross_s)
    G0 = crossroads(tmp_path)
    assert cost(G0, 1, 2) == pytest.approx(trip(G0, [1, 5, 2]))  # no signal, straight on: free


@pytest.mark.parametrize(
    ("side", "left_costs", "right_costs"), [("right", "cross_s", "turn_s"), ("left", "turn_s", "cross_s")]
)
def test_turns_across_the_traffic_cost_more(tmp_path: Path, side: str, left_costs: str, right_costs: str) -> None:
    G = crossroads(tmp_path)
    G.graph["turn_costs"] = {**COSTS.as_dict(), "drive_side": side}
    # from the south (1) heading north: west (3) is a left turn, east (4) a right turn
    assert cost(G, 1, 3) == pytest.approx(trip(G, [1, 5, 3]) + getattr(COSTS, left_costs))
    assert cost(G, 1, 4) == pytest.approx(trip(G, [1, 5, 4]) + getattr(COSTS, right_costs))
    assert COSTS.cross_s > COSTS.turn_s


def test_a_minor_road_gives_way_by_the_classes_that_meet(tmp_path: Path) -> None:
    G = crossroads(tmp_path, minor="residential")
    steps = ROAD_RANK["tertiary"] - ROAD_RANK["residential"]
    # residential west (3) straight across the tertiary road to the east (4): gives way, no turn
    assert cost(G, 3, 4) == pytest.approx(trip(G, [3, 5, 4]) + steps * COSTS.yield_s)
    # the tertiary road straight on does not
    assert cost(G, 1, 2) == pytest.approx(trip(G, [1, 5, 2]))
    # a stop sign replaces the implied give-way
    G = crossroads(tmp_path, minor="residential", centre="stop")
    assert cost(G, 3, 4) == pytest.approx(trip(G, [3, 5, 4]) + COSTS.stop_s)


def test_no_cost_at_the_ends_of_a_trip_or_on_a_bend(tmp_path: Path) -> None:
    d = 0.004
    nodes = {1: (9.5, 56.2, None), 2: (9.5 + d, 56.2, None), 3: (9.5 + d, 56.2 + d, None)}
    G, _ = build_network(read_osm(osm(tmp_path, nodes, [([1, 2, 3], {"highway": "tertiary"})])), mode="drive")
    assert cost(G, 1, 3) == pytest.approx(trip(G, [1, 2, 3]))  # a 90-degree bend is no junction
    assert cost(G, 2, 2) == 0.0
    assert cost(G, 1, 2) == pytest.approx(trip(G, [1, 2]))


def test_profile_file_overrides_turn_costs_and_can_switch_them_off(tmp_path: Path) -> None:
    f = tmp_path / "speeds.yaml"
    f.write_text("turn_costs:\n  signal_s: 30\n  drive_side: right\n")
    p = SpeedProfile.from_file(f)
    assert p.turn_costs is not None and p.turn_costs.signal_s == 30 and p.turn_costs.drive_side == "right"
    assert p.turn_costs.turn_s == CAR.turn_costs.turn_s  # type: ignore[union-attr]
    f.write_text("turn_costs: false\n")
    assert SpeedProfile.from_file(f).turn_costs is None


# ---- the expanded graph against an independent search over movements --------------------------------------


def movement(G: nx.DiGraph, u: int, v: int, w: int, ways: dict[int, int], rank_max: dict[int, int]) -> float:
    """The docstring's rules for one movement, written out scalar by scalar."""
    c = TurnCosts(**G.graph["turn_costs"])
    control = G.nodes[v].get("control")
    e, f = G[u][v]["d"], G[v][w]["d"]
    out = {"traffic_signals": c.signal_s, "stop": c.stop_s, "give_way": c.give_way_s,
           "mini_roundabout": c.give_way_s}.get(control, 0.0)  # fmt: skip
    if w == u:
        return out + c.uturn_s
    if ways[v] < 3:
        return out
    xy = {n: (G.nodes[n]["x"], G.nodes[n]["y"]) for n in (u, v, w)}
    h1 = math.degrees(math.atan2(xy[v][1] - xy[u][1], xy[v][0] - xy[u][0]))
    h2 = math.degrees(math.atan2(xy[w][1] - xy[v][1], xy[w][0] - xy[v][0]))
    angle = (h2 - h1 + 180.0) % 360.0 - 180.0
    r_in, r_out = e.get("junction") == "roundabout", f.get("junction") == "roundabout"
    if abs(angle) > c.straight_deg and not r_out:
        across = angle < 0 if c.drive_side == "left" else angle > 0
        out += c.cross_s if across else c.turn_s
    steps = min(max(rank_max[v] - ROAD_RANK.get(str(e.get("highway")), 0), 0), 4)
    if control is None and not r_in and (steps > 0 or r_out):
        out += c.yield_s * max(steps, 1)
    return out


def movements_graph(G: nx.MultiDiGraph) -> nx.DiGraph:
    """The graph of (start node, edge, end node) states whose arcs are the movements, with weights ``w``, built
    here from the docstring's rules (the lightest of parallel edges, as the matrix keeps)."""
    simple = nx.Graph(G.to_undirected())
    ways = {n: len(set(simple[n]) - {n}) for n in G}
    rank_max = {n: max((ROAD_RANK.get(str(d.get("highway")), 0)
                        for _, _, d in [*G.in_edges(n, data=True), *G.out_edges(n, data=True)]), default=-1)
                for n in G}  # fmt: skip
    light = nx.DiGraph(**G.graph)
    light.add_nodes_from(G.nodes(data=True))
    for u, v, d in G.edges(data=True):
        if not light.has_edge(u, v) or d["travel_time"] < light[u][v]["d"]["travel_time"]:
            light.add_edge(u, v, d=d)
    H = nx.DiGraph()
    for u, v, e in light.edges(data="d"):
        H.add_edge(("start", u), (u, v), w=e["travel_time"])
        H.add_edge((u, v), ("end", v), w=0.0)
        for w in light.successors(v):
            H.add_edge((u, v), (v, w), w=light[v][w]["d"]["travel_time"] + movement(light, u, v, w, ways, rank_max))
    return H


def reference(G: nx.MultiDiGraph, origins: list[int], destinations: list[int]) -> np.ndarray:
    """Shortest times over states (start node, edge), by networkx's Dijkstra on :func:`movements_graph`."""
    H = movements_graph(G)
    out = np.full((len(origins), len(destinations)), np.inf)
    for i, o in enumerate(origins):
        dist = nx.single_source_dijkstra_path_length(H, ("start", o), weight="w") if ("start", o) in H else {}
        for j, t in enumerate(destinations):
            out[i, j] = 0.0 if t == o else dist.get(("end", t), np.inf)
    return out


@st.composite
def road_graphs(draw: st.DrawFn) -> nx.MultiDiGraph:
    n = draw(st.integers(2, 14))
    G = nx.MultiDiGraph(crs="EPSG:25832")
    for i in range(n):
        x, y = draw(st.integers(0, 20)), draw(st.integers(0, 20))
        control = draw(st.sampled_from([None, None, None, *CONTROLS]))
        G.add_node(i, x=100.0 * x + i * 1e-3, y=100.0 * y, **({"control": control} if control else {}))
    classes = list(ROAD_RANK)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=40, unique=True))
    for u, v in pairs:
        if u != v:
            attrs = {"travel_time": draw(st.floats(0, 300, allow_nan=False)), "highway": draw(st.sampled_from(classes))}
            if draw(st.integers(0, 5)) == 0:
                attrs["junction"] = "roundabout"
            G.add_edge(u, v, **attrs)
    G.graph["turn_costs"] = {**TurnCosts().as_dict(), "drive_side": draw(st.sampled_from(["left", "right"]))}
    return G


@settings(max_examples=120, deadline=None)
@given(G=road_graphs(), data=st.data())
def test_matrix_equals_networkx_with_turn_costs(G: nx.MultiDiGraph, data: st.DataObject) -> None:
    nodes = list(G.nodes)
    origins = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=8))
    destinations = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=8))
    got = travel_time_matrix(G, origins, destinations)
    want = reference(G, origins, destinations)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], rtol=0, atol=1e-6)
    # the costs never fall below those without junctions, and a cutoff cuts the same matrix
    plain = travel_time_matrix(nx.MultiDiGraph(G, turn_costs=None), origins, destinations)
    assert (got >= plain - 1e-9).all()
    cut = travel_time_matrix(G, origins, destinations, cutoff=200.0)
    assert np.array_equal(cut, np.where(got <= 200.0, got, np.inf))
