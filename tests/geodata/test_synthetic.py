"""Tests of the synthetic region generator on the ``toy`` preset (and a 20,000-node benchmark graph)."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from geodata._osm import OsmExtract, read_osm
from geodata.network import build_network
from geodata.synthetic import (
    HOURS_COLUMNS,
    PRESETS,
    SyntheticRegion,
    generate_region,
    synthetic_road_graph,
    write_region,
    writer,
)

SEED = 7
NOT_DRIVE = {"footway", "track", "service"}


@pytest.fixture(scope="session")
def toy() -> SyntheticRegion:
    """The ``toy`` preset (3 former municipalities, 10,000 residents) at seed 7."""
    return generate_region("toy", seed=SEED)


@pytest.fixture(scope="session")
def toy_files(toy: SyntheticRegion, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy region written to disk."""
    return write_region(toy, tmp_path_factory.mktemp("toy") / "region")


@pytest.fixture(scope="session")
def toy_extract(toy_files: dict[str, Path]) -> OsmExtract:
    """The toy roads.osm read back with pyosmium, with buildings and land use."""
    return read_osm(toy_files["osm"], areas=True)


@pytest.fixture(scope="session")
def toy_drive(toy_extract: OsmExtract) -> nx.MultiDiGraph:
    """The toy drive network, built by geodata.network."""
    G, _ = build_network(toy_extract, mode="drive")
    return G


def _hours(text: str | None) -> float:
    if not text:
        return 0.0
    total = 0.0
    for part in text.split(","):
        a, b = part.split("-")
        (ha, ma), (hb, mb) = (map(int, a.split(":")), map(int, b.split(":")))
        total += (hb * 60 + mb - ha * 60 - ma) / 60
    return total


# -- determinism and files -------------------------------------------------------------------------------------


def test_same_seed_gives_identical_files(toy_files: dict[str, Path], tmp_path: Path) -> None:
    again = write_region(generate_region("toy", seed=SEED), tmp_path / "again")
    for key in ("osm", "areas", "municipalities", "branches", "settlements"):
        assert again[key].read_bytes() == toy_files[key].read_bytes(), key


def test_different_seed_gives_different_files(toy_files: dict[str, Path], tmp_path: Path) -> None:
    other = write_region(generate_region("toy", seed=SEED + 1), tmp_path / "other")
    assert other["osm"].read_bytes() != toy_files["osm"].read_bytes()
    assert other["areas"].read_bytes() != toy_files["areas"].read_bytes()


def test_written_files(toy: SyntheticRegion, toy_files: dict[str, Path]) -> None:
    assert set(toy_files) == {"osm", "areas", "municipalities", "branches", "settlements"}
    out = toy_files["osm"].parent
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and f"seed {SEED}" in readme and "'toy'" in readme
    head = toy_files["osm"].read_text(encoding="utf-8")[:300]
    assert '<osm version="0.6" generator="branchnet-synthetic">' in head
    assert re.search(r'<node id="1" version="1" lat="\d+\.\d{7}" lon="\d+\.\d{7}"/>', head)
    areas = gpd.read_file(toy_files["areas"])
    assert areas.crs.to_epsg() == 4326
    assert list(areas.columns) == [
        "area_id", "name", "municipality", "population", "age_0_17", "age_18_64", "age_65_plus", "geometry",
    ]  # fmt: skip
    branches = gpd.read_file(toy_files["branches"])
    assert len(branches) == len(toy.branches)
    assert branches["annual_cost"].isna().all()
    assert not list(out.parent.glob(".region*"))  # no temporary directory left behind


def test_write_region_replaces_atomically(
    toy: SyntheticRegion, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "region"
    write_region(toy, out)
    before = (out / "roads.osm").read_bytes()

    def broken(region: SyntheticRegion, path: Path) -> None:
        path.write_text("<osm")
        raise OSError("disk full")

    monkeypatch.setattr(writer, "_write_osm", broken)  # write_region looks _write_osm up in its own module
    with pytest.raises(OSError, match="disk full"):
        write_region(toy, out)
    assert (out / "roads.osm").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["region"]


# -- population --------------------------------------------------------------------------------------------------


def test_population_adds_up(toy: SyntheticRegion) -> None:
    total = toy.spec.population
    assert int(toy.areas["population"].sum()) == total
    assert int(toy.municipalities["population"].sum()) == total
    assert int(toy.settlements["population"].sum()) + toy.farm_population == total
    assert 0 < toy.farm_population < 0.2 * total
    for name, pop in zip(toy.municipalities["municipality"], toy.municipalities["population"], strict=True):
        assert toy.areas.loc[toy.areas["municipality"] == name, "population"].sum() == pop


def test_age_groups(toy: SyntheticRegion) -> None:
    a = toy.areas
    ages = a[["age_0_17", "age_18_64", "age_65_plus"]].to_numpy()
    assert (ages >= 0).all()
    assert (ages.sum(axis=1) == a["population"].to_numpy()).all()
    shares = ages.sum(axis=0) / ages.sum()
    assert 0.15 < shares[0] < 0.26 and 0.5 < shares[1] < 0.68 and 0.14 < shares[2] < 0.28
    # The areas holding a main town are younger than the countryside.
    towns = toy.settlements[toy.settlements["kind"] == "town"]
    town_pts = gpd.GeoSeries(gpd.points_from_xy(towns["lon"], towns["lat"]), crs=4326)
    urban = a.geometry.apply(lambda g: bool(town_pts.within(g).any()))
    old = a["age_65_plus"] / a["population"].clip(lower=1)
    assert old[urban].mean() < old[~urban & (a["population"] > 0)].mean()


def test_settlement_sizes_are_heavy_tailed(toy: SyntheticRegion) -> None:
    s = toy.settlements
    towns, villages, hamlets = (s[s["kind"] == k]["population"] for k in ("town", "village", "hamlet"))
    assert len(towns) == toy.spec.n_municipalities
    assert towns.between(2_000, 15_000).all()
    assert s["population"].idxmax() == towns.index[0]  # the merged seat is the biggest
    assert hamlets.between(30, 199).all() and villages.between(200, 1_500).all()
    assert villages.max() > 5 * hamlets.median()
    assert s["name"].is_unique


# -- geometry ------------------------------------------------------------------------------------------------------


def test_areas_partition_the_region(toy: SyntheticRegion) -> None:
    areas = toy.areas.to_crs(25832)
    munis = toy.municipalities.to_crs(25832)
    union = shapely.union_all(areas.geometry.values)
    assert union.geom_type == "Polygon"
    assert areas.area.sum() == pytest.approx(union.area, rel=1e-6)  # no overlaps
    assert shapely.union_all(munis.geometry.values).area == pytest.approx(union.area, rel=1e-6)
    assert (munis.geom_type == "Polygon").all()  # former municipalities are contiguous
    for _, area in areas.iterrows():
        overlap = munis.geometry.intersection(area.geometry).area / area.geometry.area
        assert (overlap > 0.999).sum() == 1
        assert munis.loc[overlap.idxmax(), "municipality"] == area["municipality"]
    assert toy.areas["area_id"].is_unique and toy.areas["name"].is_unique


def test_region_lies_in_inland_jutland(toy: SyntheticRegion) -> None:
    minx, miny, maxx, maxy = toy.areas.total_bounds
    assert 9.0 <= minx < maxx <= 10.0 and 56.0 <= miny < maxy <= 56.5
    assert toy.crs == "EPSG:25832"


def test_branches(toy: SyntheticRegion) -> None:
    b = toy.branches
    assert b.crs.to_epsg() == 4326
    assert int(b["must_keep"].sum()) == 1
    assert (b["closable"] == ~b["must_keep"]).all()
    assert b["branch_id"].is_unique and b["branch_id"].str.fullmatch(r"[a-z0-9-]+-library").all()
    assert b["annual_cost"].isna().all()
    assert b["closure_cost"].between(50_000, 150_000).all()
    munis = toy.municipalities.set_index("municipality")
    for _, row in b.iterrows():
        assert munis.loc[row["municipality"], "geometry"].contains(row.geometry)
    weekly = b[list(HOURS_COLUMNS)].apply(lambda r: sum(_hours(v) for v in r), axis=1)
    main = b["Library name"].str.replace(" Bibliotek", "").isin(munis.index)
    assert main.sum() == toy.spec.n_municipalities
    assert weekly[main].between(35, 50).all() and weekly[~main].between(8, 20).all()
    assert b.loc[b["must_keep"], "municipality"].item() == toy.settlements["name"].iloc[0]


def test_buildings_match_population(toy: SyntheticRegion) -> None:
    kinds = [tags["building"] for _, _, tags in toy.buildings]
    residential = [k for k in kinds if k in {"house", "detached", "terrace", "apartments", "yes"}]
    assert len(residential) == pytest.approx(toy.spec.population / 2.2, rel=0.12)
    assert {"industrial", "commercial", "school"} <= set(kinds)
    lon = dict(zip(toy.node_ids.tolist(), toy.node_lon.tolist(), strict=True))
    lat = dict(zip(toy.node_ids.tolist(), toy.node_lat.tolist(), strict=True))
    centres = np.array(
        [[np.mean([lon[r] for r in refs[:-1]]), np.mean([lat[r] for r in refs[:-1]])] for _, refs, _ in toy.buildings]
    )
    assert all(refs[0] == refs[-1] and len(refs) == 5 for _, refs, _ in toy.buildings)
    tree = shapely.STRtree(toy.areas.geometry.values)
    pts, areas = tree.query(shapely.points(centres), predicate="within")
    assert len(np.unique(pts)) >= 0.99 * len(centres)
    # Buildings stand where people are counted: every populated area holds buildings, in proportion.
    per_area = np.bincount(areas, minlength=len(toy.areas))
    pop = toy.areas["population"].to_numpy()
    assert (per_area[pop > 0] > 0).all()
    big = pop >= 300
    assert np.all((pop[big] / per_area[big] > 1.5) & (pop[big] / per_area[big] < 3.5))


def test_without_buildings_keeps_population_and_landuse(toy: SyntheticRegion) -> None:
    bare = generate_region(replace(toy.spec, buildings=False), seed=SEED)
    assert bare.buildings == []
    assert len(bare.landuse) == len(toy.landuse)
    assert bare.areas.drop(columns="geometry").equals(toy.areas.drop(columns="geometry"))
    assert len(bare.node_ids) == len(toy.node_ids) - 4 * len(toy.buildings)


def test_landuse(toy: SyntheticRegion) -> None:
    uses = [tags["landuse"] for _, _, tags in toy.landuse]
    assert uses.count("industrial") == toy.spec.n_municipalities
    assert uses.count("residential") >= (toy.settlements["population"] >= 30).sum() - 1


def test_road_tags(toy: SyntheticRegion) -> None:
    highways = {tags["highway"] for _, _, tags in toy.ways}
    assert {"primary", "tertiary", "unclassified", "residential", "service", "track", "footway"} <= highways
    assert any(tags.get("oneway") == "yes" for _, _, tags in toy.ways)
    assert any(t["highway"] == "primary" and t.get("maxspeed") == "80" for _, _, t in toy.ways)
    assert any(t.get("maxspeed") == "50" for _, _, t in toy.ways)
    ids = [w for w, _, _ in toy.ways + toy.buildings + toy.landuse]
    assert len(set(ids)) == len(ids) and min(ids) > 0
    assert toy.node_ids[0] == 1 and (np.diff(toy.node_ids) == 1).all()


def test_roads_cross_only_at_junctions(toy: SyntheticRegion) -> None:
    index = {int(n): k for k, n in enumerate(toy.node_ids.tolist())}
    xy = np.column_stack([toy.node_lon, toy.node_lat])
    segs = np.array([[index[a], index[b]] for _, refs, _ in toy.ways for a, b in itertools.pairwise(refs.tolist())])
    lines = shapely.linestrings(np.stack([xy[segs[:, 0]], xy[segs[:, 1]]], axis=1))
    left, right = shapely.STRtree(lines).query(lines, predicate="crosses")
    shared = (segs[left][:, :, None] == segs[right][:, None, :]).any(axis=(1, 2))
    assert not (~shared).any()


def test_osm_reads_back_as_a_drive_network(
    toy: SyntheticRegion, toy_extract: OsmExtract, toy_drive: nx.MultiDiGraph
) -> None:
    assert len(toy_extract.ways) == len(toy.ways)
    assert len(toy_extract.buildings) == len(toy.buildings)
    assert len(toy_extract.landuse) == len(toy.landuse)
    drive_nodes = {int(r) for w in toy_extract.ways if w.tags["highway"] not in NOT_DRIVE for r in w.refs}
    assert toy_drive.number_of_nodes() >= 0.95 * len(drive_nodes)
    assert set(toy_drive.nodes) <= drive_nodes
    assert not {h for _, _, h in toy_drive.edges(data="highway")} & NOT_DRIVE
    assert all(t > 0 for _, _, t in toy_drive.edges(data="travel_time"))


def test_branches_are_near_the_drive_network(toy: SyntheticRegion, toy_drive: nx.MultiDiGraph) -> None:
    nodes = np.array([[d["x"], d["y"]] for _, d in toy_drive.nodes(data=True)])
    pts = toy.branches.to_crs(toy_drive.graph["crs"]).geometry
    dist, _ = cKDTree(nodes).query(np.column_stack([pts.x, pts.y]))
    assert dist.max() < 300.0


# -- benchmark graph -----------------------------------------------------------------------------------------------


def test_synthetic_road_graph() -> None:
    G = synthetic_road_graph(20_000, seed=3)
    assert 18_000 <= G.number_of_nodes() <= 22_000
    assert G.graph["crs"] == "EPSG:25832"
    assert nx.is_strongly_connected(G)
    attrs = next(iter(G.nodes.values()))
    assert {"x", "y", "lon", "lat"} <= set(attrs) and 9.0 < attrs["lon"] < 10.5
    for _, _, d in G.edges(data=True):
        assert d["length"] > 0 and d["speed_kph"] > 0
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))
        assert d["highway"] not in NOT_DRIVE
    oneway = sum(1 for _, _, o in G.edges(data="oneway") if o)
    assert G.number_of_edges() > 1.9 * (G.number_of_edges() - oneway) / 2


def test_synthetic_road_graph_rejects_tiny_sizes() -> None:
    with pytest.raises(ValueError, match="n_nodes"):
        synthetic_road_graph(10)


# -- specification -------------------------------------------------------------------------------------------------


def test_presets() -> None:
    assert list(PRESETS) == ["toy", "small", "demo", "county", "national"]
    assert [PRESETS[k].n_municipalities for k in PRESETS] == [3, 4, 5, 12, 98]
    assert not PRESETS["national"].buildings and PRESETS["national"].population == 5_900_000
    assert 6_000 <= PRESETS["toy"].population <= 10_000
    with pytest.raises(ValueError, match="unknown preset"):
        generate_region("atlantis")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"n_municipalities": 1}, "n_municipalities"),
        ({"population": 500}, "population"),
        ({"population": 6_000}, "population"),  # too few for three towns of 2,000
        ({"density_per_km2": 0.0}, "density_per_km2"),
        ({"urban_share": 1.2}, "urban_share"),
        ({"farm_share": -0.1}, "farm_share"),
        ({"town_population": (5_000, 2_000)}, "town_population"),
        ({"zipf_exponent": 0.1}, "zipf_exponent"),
        ({"min_settlement": 0}, "min_settlement"),
        ({"village_threshold": 10}, "village_threshold"),
        ({"village_max": 100}, "village_max"),
        ({"persons_per_building": 0.5}, "persons_per_building"),
        ({"node_spacing_m": (300.0, 100.0)}, "node_spacing_m"),
        ({"centre": (-3.0, 40.0)}, "centre"),
    ],
)
def test_spec_validation(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        replace(PRESETS["toy"], **changes)
