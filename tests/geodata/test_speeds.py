"""The speed model: class defaults by context, tagged limits driven below the limit, and profile files."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from geodata.errors import InvalidValueError
from geodata.speeds import CAR, WALK, SpeedProfile, add_travel_times, parse_maxspeed, road_density


@pytest.mark.parametrize(
    ("tag", "kph"),
    [("50", 50.0), ("30 mph", 48.28032), ("50 km/h", 50.0), ("50;70", 50.0), ("GB:nsl_single", 96.56064),
     ("DK:urban", 50.0), ("none", None), ("signals", None), (None, None), (["40", "60"], 40.0), ("0", None)],
)  # fmt: skip
def test_parse_maxspeed(tag: object, kph: float | None) -> None:
    assert parse_maxspeed(tag) == (pytest.approx(kph) if kph is not None else None)


def line_graph(tags: dict[str, str], *, spacing: float = 100.0, n: int = 3) -> nx.MultiDiGraph:
    """A straight road of ``n`` nodes, ``spacing`` m apart, in a projected CRS."""
    G = nx.MultiDiGraph(crs="EPSG:25832")
    for i in range(n):
        G.add_node(i, x=i * spacing, y=0.0)
    for i in range(n - 1):
        G.add_edge(i, i + 1, length=spacing, **tags)
    return G


def speed(G: nx.MultiDiGraph) -> float:
    return float(next(iter(G.edges(data="speed_kph")))[2])


def test_class_defaults_rural_and_urban() -> None:
    assert speed(add_travel_times(line_graph({"highway": "tertiary"}), CAR)) == CAR.hwy_speeds["tertiary"]
    lit = add_travel_times(line_graph({"highway": "tertiary", "lit": "yes"}), CAR)
    assert speed(lit) == CAR.urban_speeds["tertiary"] < CAR.hwy_speeds["tertiary"]
    assert all(urban for _, _, urban in lit.edges(data="urban"))
    assert speed(add_travel_times(line_graph({"highway": "no_such_class"}), CAR)) == CAR.fallback_kph


def test_a_dense_street_grid_is_urban() -> None:
    # a 1.2 km square grid of streets every 50 m: 48 km of road per km2
    G = nx.MultiDiGraph(crs="EPSG:25832")
    k = 25
    for i in range(k):
        for j in range(k):
            G.add_node((i, j), x=50.0 * i, y=50.0 * j)
    for i in range(k):
        for j in range(k):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < k and j + dj < k:
                    G.add_edge((i, j), (i + di, j + dj), length=50.0, highway="tertiary")
    add_travel_times(G, CAR)
    centre = G[(12, 12)][(13, 12)][0]
    assert centre["urban"] and centre["speed_kph"] == CAR.urban_speeds["tertiary"]
    x = np.array([50.0 * i for i in range(k) for _ in range(k)])
    y = np.array([50.0 * j for _ in range(k) for j in range(k)])
    a = np.array([i * k + j for i in range(k) for j in range(k - 1)])
    density = road_density(x, y, a, a + 1)
    assert density.max() == pytest.approx(20.0, rel=0.1)  # the vertical streets alone: 20 km/km2 at the centre


def test_a_tagged_limit_is_driven_below_it_on_fast_roads() -> None:
    slow = add_travel_times(line_graph({"highway": "unclassified", "maxspeed": "30 mph"}), CAR)
    assert speed(slow) == pytest.approx(48.28032)  # town limits are driven at the limit
    fast = add_travel_times(line_graph({"highway": "unclassified", "maxspeed": "60 mph"}), CAR)
    assert speed(fast) == pytest.approx(96.56064 * CAR.limit_factor)
    mid = add_travel_times(line_graph({"highway": "unclassified", "maxspeed": "65"}), CAR)
    assert 65 * CAR.limit_factor < speed(mid) < 65.0  # a linear blend between 50 and 80 km/h
    ignore = SpeedProfile("tags-off", use_maxspeed=False)
    assert speed(add_travel_times(line_graph({"highway": "unclassified", "maxspeed": "60 mph"}), ignore)) == 40.0


def test_travel_time_and_turn_costs_recorded() -> None:
    G = add_travel_times(line_graph({"highway": "primary"}), CAR)
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))
    assert G.graph["turn_costs"] == CAR.turn_costs.as_dict()  # type: ignore[union-attr]
    assert "turn_costs" not in add_travel_times(line_graph({"highway": "footway"}), WALK).graph


def test_profile_file_overrides(tmp_path: Path) -> None:
    f = tmp_path / "speeds.toml"
    f.write_text("limit_factor = 0.8\nurban_density = 12\n[hwy_speeds]\ntertiary = 55\n[urban_speeds]\nprimary = 45\n")
    p = SpeedProfile.from_file(f)
    assert (p.limit_factor, p.urban_density, p.hwy_speeds["tertiary"], p.urban_speeds["primary"]) == (0.8, 12, 55, 45)
    assert p.hwy_speeds["primary"] == CAR.hwy_speeds["primary"]  # merged, not replaced


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("hwy_speeds:\n  tertiary: -5\n", r"speeds\.yaml: .*hwy_speeds\.tertiary must be a positive number"),
        ("hwy_speeds:\n  tertiary: 0\n", r"speeds\.yaml: .*hwy_speeds\.tertiary must be a positive number"),
        ("urban_speeds:\n  motorwya: 90\n", r"speeds\.yaml: urban_speeds\.motorwya: unknown highway class"),
        ("limit_factor: 1.2\n", r"speeds\.yaml: .*limit_factor must lie in \(0, 1\]"),
        ("limit_factor: 0\n", r"speeds\.yaml: .*limit_factor must lie in \(0, 1\]"),
        ("hwy_speeds:\n  tertiary: fast\n", r"speeds\.yaml: hwy_speeds\.tertiary must be a number"),
        ("turn_costs:\n  signal_s: -1\n", r"speeds\.yaml: .*signal_s must be a non-negative number"),
        ("turn_costs:\n  drive_side: middle\n", r"speeds\.yaml: .*drive_side must be 'left' or 'right'"),
        ("turn_costs:\n  signals: 5\n", r"speeds\.yaml: turn_costs\.signals: unknown field"),
        ("speed: 5\n", r"speeds\.yaml: unknown speed profile field"),
        ("hwy_speeds: [1, 2]\n", r"speeds\.yaml: hwy_speeds must map highway classes"),
        ("a: [unclosed\n", r"speeds\.yaml: not a readable speed profile"),
    ],
)
def test_bad_speed_files_name_the_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    f = tmp_path / "speeds.yaml"
    f.write_text(text)
    with pytest.raises(InvalidValueError, match=match):
        SpeedProfile.from_file(f)
