"""The service on a real PostgreSQL + PostGIS (a throwaway cluster, see conftest.py), and the same smoke on SQLite.

- the Alembic migrations build the schema on PostGIS (extension, tables, ``result_features.geom`` in EPSG:4326),
  are idempotent and can be rolled back and re-applied;
- the API answers on both databases (health, key authentication, listing regions);
- after a successful run on PostgreSQL, ``result_features`` holds that run's layers, readable by
  ``geopandas.read_postgis`` as QGIS would read them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from service.plans.scenario import example
from service.store.db import migrate
from tests.service.api.conftest import create_keys

ACTIVE = ("queued", "running")
TABLES = {"organisations", "api_keys", "regions", "scenarios", "runs", "result_features", "alembic_version"}


def _engine(url: str) -> Any:
    import geoalchemy2  # noqa: F401  (registers the geometry type with the dialect, as QGIS knows it)

    return create_engine(url, poolclass=NullPool)


def test_migrations_build_the_postgis_schema(postgres_url: str) -> None:
    migrate(postgres_url)
    migrate(postgres_url)  # idempotent: already at head
    engine = _engine(postgres_url)
    try:
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT extname FROM pg_extension WHERE extname = 'postgis'")) == "postgis"
            assert conn.scalar(text("SELECT PostGIS_Version()"))
            row = conn.execute(text(
                "SELECT f_geometry_column, srid, type FROM geometry_columns WHERE f_table_name = 'result_features'"
            )).one()  # fmt: skip
            assert tuple(row) == ("geom", 4326, "GEOMETRY")
            cols = {c["name"] for c in inspect(conn).get_columns("result_features")}
            assert {"id", "run_id", "org_id", "layer", "properties", "geom"} <= cols
            indexes = {i["name"] for i in inspect(conn).get_indexes("result_features")}
            assert {"ix_result_features_run_layer", "ix_result_features_geom"} <= indexes
            fks = inspect(conn).get_foreign_keys("result_features")
            assert any(fk["referred_table"] == "runs" and fk["options"].get("ondelete") == "CASCADE" for fk in fks)
            assert conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()


def test_migrations_roll_back_and_forward(postgres: Any) -> None:
    from alembic import command
    from alembic.config import Config

    from service.store.db import MIGRATIONS

    url = postgres.create_database()
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.set_main_option("sqlalchemy.url", url)
        command.upgrade(cfg, "head")
        command.downgrade(cfg, "base")
        engine = _engine(url)
        try:
            assert set(inspect(engine).get_table_names()) <= {"alembic_version", "spatial_ref_sys"}
        finally:
            engine.dispose()
        command.upgrade(cfg, "head")
        engine = _engine(url)
        try:
            assert set(inspect(engine).get_table_names()) >= TABLES
        finally:
            engine.dispose()
    finally:
        postgres.drop_database(url)


def test_api_smoke_on_both_databases(api: tuple[Any, Any], keys: Any, db_url: str) -> None:
    client, services = api
    health = client.get("/healthz")
    assert health.status_code == 200, health.text
    assert health.json()["status"] == "ok"
    assert health.json()["database"] == ("postgresql" if db_url.startswith("postgresql") else "sqlite")
    assert services.postgis == db_url.startswith("postgresql")

    assert client.get("/api/v1/regions").status_code == 401
    assert client.get("/api/v1/regions", headers={"X-API-Key": "bn_nothing_here"}).status_code == 401
    for role in ("viewer", "planner", "admin"):
        r = client.get("/api/v1/regions", headers=keys.headers("a", role))
        assert r.status_code == 200, r.text
    bearer = client.get("/api/v1/regions", headers={"Authorization": f"Bearer {keys['b']['viewer']}"})
    assert bearer.status_code == 200, bearer.text
    metrics = client.get("/metrics")
    assert metrics.status_code == 200
    assert "branchnet_http_requests_total" in metrics.text


QUICK: dict[str, Any] = example("toy_quick", name="toy-postgis")


def test_run_on_postgres_fills_result_features(make_app: Any, postgres: Any, toy_region: Any, tmp_path: Path) -> None:
    """A run on PostGIS writes every layer of its layers.gpkg to result_features, in EPSG:4326, as QGIS reads it."""
    import geopandas as gpd
    import pyogrio

    from service.store.db import Region
    from service.store.regions import save_region

    url = postgres.create_database()
    engine = _engine(url)
    try:
        client, services = make_app(url)
        keys = create_keys(services)
        org = keys.org_id("a")
        folder = save_region(toy_region, services.files.regions_dir(org))
        with services.sessions() as s:
            s.add(Region(org_id=org, name=toy_region.name, path=folder.relative_to(services.files.root).as_posix(),
                         summary={}))  # fmt: skip
            s.commit()
        planner = keys.headers("a", "planner")
        sc = client.post("/api/v1/scenarios", json=QUICK, headers=planner)
        assert sc.status_code == 201, sc.text
        run = client.post(f"/api/v1/scenarios/{sc.json()['id']}/runs", headers=planner)
        assert run.status_code == 202, run.text
        run_id = run.json()["id"]
        deadline = time.monotonic() + 300
        while (state := client.get(f"/api/v1/runs/{run_id}", headers=planner).json())["status"] in ACTIVE:
            assert time.monotonic() < deadline, f"run still {state['status']} after 300 s: {state}"
            time.sleep(0.25)
        assert state["status"] == "succeeded", state

        gpkg = tmp_path / "layers.gpkg"
        got = client.get(f"/api/v1/runs/{run_id}/layers.gpkg", headers=planner)
        assert got.status_code == 200, got.text
        gpkg.write_bytes(got.content)
        expected = {str(name): len(pyogrio.read_dataframe(gpkg, layer=str(name))) for name, _ in
                    pyogrio.list_layers(gpkg)}  # fmt: skip
        assert {"demand", "branches"} <= set(expected)

        features = gpd.read_postgis(
            text("SELECT id, run_id, org_id, layer, properties, geom FROM result_features WHERE run_id = :run"),
            engine, geom_col="geom", params={"run": run_id},
        )  # fmt: skip
        assert features.crs is not None and features.crs.to_epsg() == 4326
        assert set(features["org_id"]) == {org}
        assert features.groupby("layer").size().to_dict() == expected
        demand = features[features["layer"] == "demand"]
        assert (demand.geom_type == "Point").all()
        assert demand["properties"].map(lambda p: "time_after_min" in p and "meets_after" in p).all()
        branches = features[features["layer"] == "branches"]
        decisions = {p["branch_id"]: p["decision"] for p in branches["properties"]}
        plan = client.get(f"/api/v1/runs/{run_id}/plan", headers=planner).json()
        assert decisions == {b["branch_id"]: b["decision"] for b in plan["decisions"]["branches"]}
        lon, lat = toy_region.branches.to_crs(4326).geometry.x, toy_region.branches.to_crs(4326).geometry.y
        minx, miny, maxx, maxy = branches.total_bounds
        assert (minx, miny, maxx, maxy) == pytest.approx((lon.min(), lat.min(), lon.max(), lat.max()), abs=1e-6)
        with engine.connect() as conn:  # what QGIS asks PostGIS: SRID and extent of the layer
            assert conn.scalar(text("SELECT DISTINCT ST_SRID(geom) FROM result_features WHERE run_id = :r"),
                               {"r": run_id}) == 4326  # fmt: skip

        # deleting the scenario deletes its runs and, by cascade, their features
        assert client.delete(f"/api/v1/scenarios/{sc.json()['id']}", headers=planner).status_code == 204
        with engine.connect() as conn:
            left = conn.scalar(text("SELECT count(*) FROM result_features WHERE run_id = :r"), {"r": run_id})
        assert left == 0
    finally:
        engine.dispose()
        postgres.drop_database(url)
