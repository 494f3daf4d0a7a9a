"""Road graphs from OSM: filtering, one-ways, speeds, the strongly connected core, caching and bad files."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import pytest

from geodata._osm import read_osm
from geodata.errors import InputFileError, NetworkBuildError
from geodata.network import BOOKMOBILE, CAR, SpeedProfile, build_network, load_network


def test_drive_graph_filters_footways_keeps_core_and_projects(tiny_osm: Path) -> None:
    G, report = build_network(read_osm(tiny_osm), mode="drive")
    assert set(G.nodes) == {1, 2, 3, 4, 5}  # footway node 6 and the island 7-8 are gone
    assert report.dropped_nodes == 2  # the island
    assert not any(h == "footway" for _, _, h in G.edges(data="highway"))
    assert nx.is_strongly_connected(G)
    assert str(G.graph["crs"]).upper() == "EPSG:32632"  # the local UTM zone, in metres
    assert G.has_edge(3, 4) and not G.has_edge(4, 3)  # oneway=yes


def test_speeds_use_maxspeed_then_highway_defaults(tiny_osm: Path) -> None:
    G, _ = build_network(read_osm(tiny_osm), mode="drive")
    speed = {(u, v): d["speed_kph"] for u, v, d in G.edges(data=True)}
    assert speed[(1, 2)] == pytest.approx(80.0 * CAR.limit_factor)  # a fast limit is driven below it
    assert speed[(3, 4)] == pytest.approx(30 * 1.609344, rel=1e-3)  # "30 mph": driven at the limit in town
    assert speed[(2, 3)] == pytest.approx(CAR.hwy_speeds["residential"])  # untagged, rural
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))


def test_bookmobile_is_capped_and_slower(tiny_osm: Path) -> None:
    car, _ = build_network(read_osm(tiny_osm), mode="drive")
    van, _ = build_network(read_osm(tiny_osm), mode="bookmobile")
    limited = 80.0 * BOOKMOBILE.limit_factor
    assert van[1][2][0]["speed_kph"] == pytest.approx(min(limited, BOOKMOBILE.max_kph or 1e9) * BOOKMOBILE.factor)
    assert all(van[u][v][0]["travel_time"] > car[u][v][0]["travel_time"] for u, v in car.edges())


def test_walk_graph_keeps_footways_both_ways(tiny_osm: Path) -> None:
    G, _ = build_network(read_osm(tiny_osm), mode="walk")
    assert G.has_edge(5, 6) and G.has_edge(6, 5)
    assert G.has_edge(4, 3)  # one-way streets are two-way on foot
    assert all(d["speed_kph"] == pytest.approx(4.8) for _, _, d in G.edges(data=True))


def test_load_network_caches_by_content(tiny_osm: Path, tmp_path: Path) -> None:
    G1 = load_network(tiny_osm, cache_dir=tmp_path)
    assert len(list((tmp_path / "graphs").iterdir())) == 1
    G2 = load_network(tiny_osm, cache_dir=tmp_path)
    assert G1.graph["branchnet_hash"] == G2.graph["branchnet_hash"]
    assert nx.utils.edges_equal(G1.edges, G2.edges)
    slow = SpeedProfile("slow", fallback_kph=10.0)
    G3 = load_network(tiny_osm, cache_dir=tmp_path, profile=slow)
    assert G3.graph["branchnet_hash"] != G1.graph["branchnet_hash"]
    copy = tmp_path / "changed.osm"
    copy.write_text(tiny_osm.read_text().replace('v="80"', 'v="90"'))
    assert load_network(copy, cache_dir=tmp_path).graph["branchnet_hash"] != G1.graph["branchnet_hash"]


@pytest.mark.parametrize("content", [b"", b"this is not a pbf file at all", b"\x00\x00\x00\x0dOSMHeader garbage"])
def test_corrupt_or_empty_osm_names_the_file(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(content)
    with pytest.raises(InputFileError, match=r"broken\.osm\.pbf"):
        load_network(bad)


def test_osm_without_roads_is_explained(tmp_path: Path) -> None:
    f = tmp_path / "noroads.osm"
    f.write_text('<?xml version="1.0"?><osm version="0.6"><node id="1" version="1" lat="56" lon="9"/></osm>')
    with pytest.raises(NetworkBuildError, match=r"noroads\.osm"):
        load_network(f)


def test_speed_profile_validation() -> None:
    with pytest.raises(ValueError, match="positive"):
        SpeedProfile("bad", fallback_kph=0.0)


def test_speed_profile_from_yaml_merges_and_validates(tmp_path: Path, tiny_osm: Path) -> None:
    f = tmp_path / "speeds.yaml"
    f.write_text("name: rural\nhwy_speeds:\n  residential: 20\nfallback_kph: 35\n")
    p = SpeedProfile.from_file(f)
    assert p.hwy_speeds["residential"] == 20 and p.hwy_speeds["primary"] == CAR.hwy_speeds["primary"]
    G, _ = build_network(read_osm(tiny_osm), mode="drive", profile=p)
    assert G[2][3][0]["speed_kph"] == pytest.approx(20.0)
    f.write_text("hwy_speed: {}\n")
    with pytest.raises(ValueError, match=r"speeds\.yaml: unknown speed profile field"):
        SpeedProfile.from_file(f)
    f.write_text("fallback_kph: -3\n")
    with pytest.raises(ValueError, match=r"speeds\.yaml: .*positive"):
        SpeedProfile.from_file(f)
