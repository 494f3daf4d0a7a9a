"""Shared fixtures. Real data is read from ``BRANCHNET_SHARED_DIR`` (default ``../shared`` beside the repo)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def shared_dir() -> Path:
    return Path(os.environ.get("BRANCHNET_SHARED_DIR", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """The read-only ../shared folder; skipped on a user's fresh clone without it, a failure under CI."""
    path = shared_dir()
    if not (path / "data").is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the shared data folder {path} is missing (set BRANCHNET_SHARED_DIR)")
        pytest.skip(f"{path} is absent (a fresh clone without ../shared); set BRANCHNET_SHARED_DIR to run")
    return path


@pytest.fixture(scope="session")
def rutland_dir(shared: Path) -> Path:
    """The Rutland case: OSM extract, LSOA polygons and population, branches."""
    return shared / "data" / "rutland"


@pytest.fixture(scope="session")
def tiny_osm() -> Path:
    """A hand-made .osm file: a drive loop, a oneway, a footway, a disconnected road and a few buildings."""
    return DATA / "tiny.osm"


@pytest.fixture(scope="session")
def toy_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files of the seeded synthetic 'toy' merged municipality."""
    from geodata.synthetic import generate_region, write_region

    out = tmp_path_factory.mktemp("toy") / "toy"
    return write_region(generate_region("toy", seed=7), out)


@pytest.fixture(scope="session")
def toy_region(toy_sources: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The toy region, prepared (graphs, demand, branches, matrices)."""
    from geodata.region import RegionSources, prepare_region

    sources = RegionSources(
        osm=str(toy_sources["osm"]),
        population=str(toy_sources["areas"]),
        branches=str(toy_sources["branches"]),
        area_field="area_id",
        group_field="municipality",
        id_field="branch_id",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_region("toy", sources, cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def rutland_region(rutland_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Rutland prepared from the shared files (OSM, LSOA polygons and population, libraries, settlements)."""
    from geodata.region import RegionSources, prepare_region

    sources = RegionSources(
        osm=str(rutland_dir / "rutland-latest.osm.pbf"),
        population=str(rutland_dir / "rutland_lsoa21_boundaries.geojson"),
        population_table=str(rutland_dir / "rutland_lsoa21_population.csv"),
        branches=str(rutland_dir / "rutland_libraries.geojson"),
        settlements=str(rutland_dir / "geonames_cities500_rutland_bbox.csv"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_region("rutland", sources, cache_dir=tmp_path_factory.mktemp("rutland-cache"))


@pytest.fixture(scope="session")
def demo_region(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """The synthetic merged municipality of ``make demo`` (preset "demo", seed 42), prepared as synthetic-demo-42."""
    from geodata.region import RegionSources, prepare_region
    from geodata.synthetic import generate_region, write_region

    files = write_region(generate_region("demo", seed=42), tmp_path_factory.mktemp("demo") / "demo")
    sources = RegionSources(osm=str(files["osm"]), population=str(files["areas"]), branches=str(files["branches"]),
                            settlements=str(files["settlements"]), area_field="area_id", group_field="municipality",
                            id_field="branch_id")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_region("synthetic-demo-42", sources, cache_dir=tmp_path_factory.mktemp("demo-cache"))
