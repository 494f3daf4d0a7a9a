"""travel_time_matrix against networkx Dijkstra, its invariants, cutoff, parallel edges and the disk cache."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geodata.matrix import clear_compiled, compile_graph, travel_time_matrix


@st.composite
def graphs(draw: st.DrawFn) -> nx.MultiDiGraph:
    n = draw(st.integers(2, 25))
    G = nx.MultiDiGraph()
    G.add_nodes_from(range(n))
    edges = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(0, 500, allow_nan=False)),
            max_size=80,
        )
    )
    for u, v, w in edges:
        if u != v:
            G.add_edge(u, v, travel_time=w)
    return G


def reference(
    G: nx.MultiDiGraph, origins: list[int], destinations: list[int], cutoff: float | None = None
) -> np.ndarray:
    out = np.full((len(origins), len(destinations)), np.inf)
    for i, o in enumerate(origins):
        dist = nx.single_source_dijkstra_path_length(G, o, weight="travel_time", cutoff=cutoff)
        for j, d in enumerate(destinations):
            out[i, j] = dist.get(d, np.inf)
    return out


@settings(max_examples=150, deadline=None)
@given(G=graphs(), data=st.data())
def test_matches_networkx(G: nx.MultiDiGraph, data: st.DataObject) -> None:
    nodes = list(G.nodes)
    origins = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=12))
    destinations = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=12))
    got = travel_time_matrix(G, origins, destinations)
    want = reference(G, origins, destinations)
    assert got.shape == (len(origins), len(destinations))
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    assert np.allclose(got[finite], want[finite], rtol=0, atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(G=graphs(), data=st.data())
def test_non_negative_with_zero_diagonal(G: nx.MultiDiGraph, data: st.DataObject) -> None:
    nodes = data.draw(st.lists(st.sampled_from(list(G.nodes)), min_size=1, max_size=10, unique=True))
    m = travel_time_matrix(G, nodes, nodes)
    assert (m >= 0).all()
    assert (np.diag(m) == 0).all()


@settings(max_examples=60, deadline=None)
@given(G=graphs(), cutoff=st.floats(0, 800), data=st.data())
def test_cutoff_matches_networkx(G: nx.MultiDiGraph, cutoff: float, data: st.DataObject) -> None:
    nodes = list(G.nodes)
    origins = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=6))
    destinations = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=6))
    got = travel_time_matrix(G, origins, destinations, cutoff=cutoff)
    want = reference(G, origins, destinations, cutoff=cutoff)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    assert np.allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=1e-6)


def test_parallel_edges_take_the_minimum_not_the_sum() -> None:
    G = nx.MultiDiGraph()
    G.add_edge("a", "b", travel_time=10.0)
    G.add_edge("a", "b", travel_time=4.0)
    G.add_edge("b", "c", travel_time=0.0)  # explicit zero weight is an edge, not a missing one
    assert travel_time_matrix(G, ["a"], ["b", "c"]).tolist() == [[4.0, 4.0]]


def test_runs_from_the_smaller_side_with_the_same_answer() -> None:
    G = nx.gnp_random_graph(60, 0.08, seed=3, directed=True)
    rng = np.random.default_rng(0)
    for u, v in G.edges:
        G[u][v]["travel_time"] = float(rng.uniform(1, 100))
    many, few = list(range(40)), [41, 50, 59]
    forward = travel_time_matrix(G, few, many)
    backward = travel_time_matrix(G, many, few)
    assert np.allclose(
        np.where(np.isinf(backward), -1, backward),
        np.where(np.isinf(reference(G, many, few)), -1, reference(G, many, few)),
    )
    assert np.allclose(
        np.where(np.isinf(forward), -1, forward),
        np.where(np.isinf(reference(G, few, many)), -1, reference(G, few, many)),
    )


def test_undirected_graph_and_unknown_node() -> None:
    G = nx.Graph()
    G.add_edge(1, 2, travel_time=3.0)
    assert travel_time_matrix(G, [2], [1]).tolist() == [[3.0]]
    with pytest.raises(KeyError, match="destination node 99"):
        travel_time_matrix(G, [1], [99])


def test_missing_or_negative_weight_is_rejected() -> None:
    G = nx.DiGraph()
    G.add_edge(1, 2)
    with pytest.raises(ValueError, match="no 'travel_time'"):
        travel_time_matrix(G, [1], [2])
    H = nx.DiGraph()
    H.add_edge(1, 2, travel_time=-1.0)
    with pytest.raises(ValueError, match="non-negative"):
        travel_time_matrix(H, [1], [2])


def test_compiled_graph_is_reused_and_refreshed_on_change() -> None:
    G = nx.DiGraph()
    G.add_edge(1, 2, travel_time=1.0)
    first = compile_graph(G)
    assert compile_graph(G) is first
    G.add_edge(2, 3, travel_time=1.0)
    assert compile_graph(G) is not first
    G[1][2]["travel_time"] = 5.0
    clear_compiled(G)
    assert travel_time_matrix(G, [1], [3]).tolist() == [[6.0]]


def test_disk_cache_serves_identical_calls(tmp_path: Path) -> None:
    G = nx.DiGraph(branchnet_hash="test-graph")
    G.add_edge(1, 2, travel_time=7.0)
    a = travel_time_matrix(G, [1], [2], cache_dir=tmp_path)
    files = list((tmp_path / "matrices").iterdir())
    assert len(files) == 1
    np.save(files[0], np.array([[123.0]]))  # prove the second call reads the file
    assert travel_time_matrix(G, [1], [2], cache_dir=tmp_path).tolist() == [[123.0]]
    assert travel_time_matrix(G, [1], [2], cutoff=100.0, cache_dir=tmp_path).tolist() == a.tolist()


@st.composite
def geometric_graphs(draw: st.DrawFn) -> nx.MultiDiGraph:
    """Nodes at random points (metres); edges at least as long as the straight line, at speeds of 1 to 30 m/s."""
    n = draw(st.integers(2, 40))
    xy = np.array(draw(st.lists(st.tuples(st.floats(0, 5000), st.floats(0, 5000)), min_size=n, max_size=n)))
    G = nx.MultiDiGraph()
    for i, (x, y) in enumerate(xy):
        G.add_node(i, x=float(x), y=float(y))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(1.0, 1.5),
                                    st.floats(1.0, 30.0)), max_size=120))  # fmt: skip
    for u, v, detour, speed in edges:
        if u != v:
            length = float(np.hypot(*(xy[u] - xy[v]))) * detour
            G.add_edge(u, v, length=length, travel_time=length / speed)
    return G


@settings(max_examples=120, deadline=None)
@given(G=geometric_graphs(), cutoff=st.floats(0, 600), chunk=st.integers(1, 8), data=st.data())
def test_local_costs_are_exact(G: nx.MultiDiGraph, cutoff: float, chunk: int, data: st.DataObject) -> None:
    """Dijkstra on the discs around a few origins at a time finds every pair within the cutoff, at its cost."""
    from geodata.matrix import local_costs

    nodes = list(G.nodes)
    origins = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=10))
    destinations = data.draw(st.lists(st.sampled_from(nodes), min_size=1, max_size=15))
    rows, cols, costs = local_costs(G, origins, destinations, cutoff=cutoff, chunk=chunk)
    got = np.full((len(origins), len(destinations)), np.inf)
    got[rows, cols] = costs
    want = reference(G, origins, destinations, cutoff=cutoff)
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) == len(rows)  # each pair once
    assert np.array_equal(np.isinf(got), np.isinf(want))
    assert np.allclose(got[np.isfinite(want)], want[np.isfinite(want)], atol=1e-6)


def test_a_cutoff_matrix_on_a_large_graph_uses_the_discs_with_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import geodata.matrix as matrix

    G = nx.grid_2d_graph(60, 60)
    H = nx.MultiDiGraph()
    for i, j in G.nodes:
        H.add_node(60 * i + j, x=100.0 * i, y=100.0 * j)
    for (ai, aj), (bi, bj) in G.edges:
        for u, v in ((60 * ai + aj, 60 * bi + bj), (60 * bi + bj, 60 * ai + aj)):
            H.add_edge(u, v, length=100.0, travel_time=100.0 / 1.4)
    origins = list(H.nodes)[::7]
    destinations = list(H.nodes)[::3]
    used: list[int] = []
    real = matrix.local_costs
    monkeypatch.setattr(matrix, "local_costs", lambda *a, **k: used.append(1) or real(*a, **k))
    monkeypatch.setattr(matrix, "LOCAL_ABOVE", 1000)
    got = travel_time_matrix(H, origins, destinations, cutoff=300.0)
    assert used, "the disc method was not used"
    cg = compile_graph(H, "travel_time")
    from scipy.sparse.csgraph import dijkstra

    full = dijkstra(cg.csr, indices=cg.positions(origins, "o"), limit=300.0)[:, cg.positions(destinations, "d")]
    assert np.array_equal(got, np.where(full <= 300.0, full, np.inf))
