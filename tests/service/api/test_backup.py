"""``branchnet backup`` while a server writes, ``branchnet restore`` into a fresh installation, damaged backups.

The round trip runs on SQLite and on PostgreSQL (a fresh database without PostGIS from ``template0``): a live
``branchnet serve`` with a region, scenarios and succeeded runs keeps taking scenario writes and run submissions
while ``branchnet backup`` runs. The restored installation is compared with the source from the raw stores (the
rows of every table the runs need, every result file's SHA-256 computed here) and through the API of a new app.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from service.api.local_server import branchnet_command, local_server
from service.cli import app as cli
from service.plans.scenario import example
from service.store.backup import backup, restore
from service.store.db import ApiKey, Organisation, Region, Run, Scenario, make_engine, migrate, session_scope
from service.store.files import FileStore
from service.store.regions import save_region
from tests.service.api.conftest import LEAFLET

API = "/api/v1"
# the cheapest toy plan (no bookmobile, no timetable): about a second a run
FAST: dict[str, Any] = example("toy_quick", name="toy-fast", objective="min_cost", fleet={"max_vehicles": 0},
                               solve={"time_limit_s": 2, "seed": 0})  # fmt: skip
FAST["standards"] = {**FAST["standards"], "coverage_target": 0.8}
FAST.pop("budget_share")
ACTIVE = ("queued", "running")


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` by relative path (hidden temporaries included: nothing is skipped)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def rows(engine: Engine, model: Any) -> dict[str, dict[str, Any]]:
    """Every row of ``model``'s table as a dict of its columns, by id."""
    with engine.connect() as conn:
        return {str(row["id"]): dict(row) for row in conn.execute(select(model.__table__)).mappings()}


def seed(db_url: str, files_root: Path, toy_region: Any) -> tuple[str, str]:
    """Migrate, create an organisation with an admin key and store the toy region (folder + row)."""
    from service.api.auth import create_key

    migrate(db_url)
    engine = make_engine(db_url)
    try:
        with session_scope(sessionmaker(engine, expire_on_commit=False)) as session:
            key, row = create_key(session, "org-a", "admin", name="backup test")
            org = row.org_id
            folder = save_region(toy_region, FileStore(files_root).regions_dir(org))
            session.add(Region(org_id=org, name=toy_region.name, path=folder.relative_to(files_root).as_posix(),
                               summary={"note": "seeded"}))  # fmt: skip
    finally:
        engine.dispose()
    return key, org


def wait_runs(http: httpx.Client, run_ids: list[str], timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    for run_id in run_ids:
        while (state := http.get(f"{API}/runs/{run_id}").json())["status"] in ACTIVE:
            assert time.monotonic() < deadline, f"run {run_id} still {state['status']} after {timeout_s} s"
            time.sleep(0.2)
        assert state["status"] == "succeeded", state


class Writer(threading.Thread):
    """Scenario creations, conditional updates of one scenario (If-Match) and run submissions, until stopped."""

    def __init__(self, base: str, key: str, churn_id: str, churn_body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60)
        self.churn_id = churn_id
        self.bodies = {1: churn_body}  # version -> body the scenario had at that version
        self.stop = threading.Event()
        self.created: list[str] = []
        self.runs: list[str] = []
        self.errors: list[str] = []
        self.writes_at: list[float] = []

    def run(self) -> None:
        version, i = 1, 0
        while not self.stop.is_set():
            i += 1
            body = copy.deepcopy(FAST) | {"name": f"churn-{i}"}
            r = self.http.put(f"{API}/scenarios/{self.churn_id}", json=body, headers={"If-Match": f'"{version}"'})
            if r.status_code != 200:
                self.errors.append(f"PUT {r.status_code} {r.text}")
                return
            version = r.json()["version"]
            self.bodies[version] = body
            made = self.http.post(f"{API}/scenarios", json=copy.deepcopy(FAST) | {"name": f"new-{i}"})
            if made.status_code != 201:
                self.errors.append(f"POST scenario {made.status_code} {made.text}")
                return
            self.created.append(made.json()["id"])
            if i % 3 == 0:
                run = self.http.post(f"{API}/scenarios/{made.json()['id']}/runs")
                if run.status_code != 202:
                    self.errors.append(f"POST run {run.status_code} {run.text}")
                    return
                self.runs.append(run.json()["id"])
            self.writes_at.append(time.monotonic())
            time.sleep(0.02)


def result_digests(root: Path, result_path: str) -> dict[str, str]:
    folder = root / result_path
    assert folder.is_dir(), f"{folder} is missing"
    digests = tree_digest(folder)
    assert digests, f"{folder} is empty"
    return digests


def test_backup_while_writing_then_restore_is_identical(
    db_url: str, data_dir: Path, tmp_path: Path, toy_region: Any, request: pytest.FixtureRequest
) -> None:
    postgres = db_url.startswith("postgresql")
    files_root = data_dir / "files"
    key, _org = seed(db_url, files_root, toy_region)
    settings = {"BRANCHNET_DATA_DIR": str(data_dir), "BRANCHNET_LEAFLET_DIR": str(LEAFLET),
                "BRANCHNET_RUN_WORKERS": "1", "BRANCHNET_LOG_JSON": "true"}  # fmt: skip
    if postgres:
        settings["BRANCHNET_DATABASE_URL"] = db_url
    target = tmp_path / "backup"
    writer: Writer | None = None
    with local_server(settings, cwd=tmp_path, log=tmp_path / "server.log") as server:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
            scenarios = []
            for name in ("first", "second", "churn"):
                sc = http.post(f"{API}/scenarios", json=copy.deepcopy(FAST) | {"name": name})
                assert sc.status_code == 201, sc.text
                scenarios.append(sc.json()["id"])
            runs = []
            for sc_id in (*scenarios[:2], scenarios[0]):
                r = http.post(f"{API}/scenarios/{sc_id}/runs")
                assert r.status_code == 202, r.text
                runs.append(r.json()["id"])
            wait_runs(http, runs)
        writer = Writer(server.url, key, scenarios[2], copy.deepcopy(FAST) | {"name": "churn"})
        writer.start()
        try:
            while len(writer.writes_at) < 3 and not writer.errors:  # writes under way before the backup starts
                time.sleep(0.05)
            t0 = time.monotonic()
            done = subprocess.run([branchnet_command(), "backup", str(target)], env=server.env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
            t1 = time.monotonic()
            time.sleep(0.3)
        finally:
            writer.stop.set()
            writer.join(60)
        assert done.returncode == 0, done.stderr
        assert not writer.errors, writer.errors
        during = [t for t in writer.writes_at if t0 <= t <= t1]
        assert during, "no write happened while the backup ran"
    # the server is stopped: the source's stores no longer change

    fresh = tmp_path / "restored"
    restored_url = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRANCHNET_")} | {"BRANCHNET_DATA_DIR": str(fresh)}
    if postgres:
        cluster = request.getfixturevalue("postgres")
        restored_url = cluster.create_database(template="template0")  # not even PostGIS: the restore creates it
        request.addfinalizer(lambda: cluster.drop_database(restored_url))
        env["BRANCHNET_DATABASE_URL"] = restored_url
    done = subprocess.run([branchnet_command(), "restore", str(target)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    restored_url = restored_url or f"sqlite:///{(fresh / 'branchnet.db').resolve()}"
    # again onto the restored installation: refused as it is not empty, then replaced with --force
    again = [branchnet_command(), "restore", str(target)]
    done = subprocess.run(again, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and "not empty" in done.stderr, done.stderr
    done = subprocess.run([*again, "--force"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr

    source, restored = create_engine(db_url), create_engine(restored_url)
    try:
        with restored.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
        for model in (Organisation, ApiKey, Region):
            assert rows(restored, model) == rows(source, model), model.__tablename__
        src_sc, new_sc = rows(source, Scenario), rows(restored, Scenario)
        assert set(scenarios) <= set(new_sc) <= set(src_sc)
        assert any(s in new_sc for s in writer.created), "no scenario created before the snapshot was restored"
        for sc_id, row in new_sc.items():
            if sc_id == writer.churn_id:  # updated during the backup: some version the writer wrote, whole
                assert row["version"] <= src_sc[sc_id]["version"]
                assert row["body"] == writer.bodies[row["version"]]
                assert row["name"] == writer.bodies[row["version"]]["name"]
            else:
                assert row == src_sc[sc_id], sc_id
        src_runs, new_runs = rows(source, Run), rows(restored, Run)
        assert set(runs) <= set(new_runs) <= set(src_runs)
        succeeded = [r for r, row in new_runs.items() if row["status"] == "succeeded"]
        assert set(runs) <= set(succeeded)
        for run_id in succeeded:
            assert new_runs[run_id] == src_runs[run_id], run_id
            path = new_runs[run_id]["result_path"]
            assert result_digests(fresh / "files", path) == result_digests(files_root, path), run_id
        for run_id, row in new_runs.items():  # queued or running at the snapshot: the same submission
            assert row["body"] == src_runs[run_id]["body"] and row["scenario_id"] == src_runs[run_id]["scenario_id"]
        region_path = next(iter(rows(restored, Region).values()))["path"]
        assert tree_digest(fresh / "files" / region_path) == tree_digest(files_root / region_path)
        if postgres:  # the PostGIS features of the runs came back too
            sql = text("SELECT run_id, count(*), sum(length(ST_AsBinary(geom))) FROM result_features "
                       "GROUP BY run_id ORDER BY run_id")  # fmt: skip
            with source.connect() as a, restored.connect() as b:
                src_features = {r[0]: r[1:] for r in a.execute(sql)}
                new_features = {r[0]: r[1:] for r in b.execute(sql)}
            assert new_features and all(new_features[r] == src_features[r] for r in succeeded)
    finally:
        source.dispose()
        restored.dispose()

    # a new app on the restored installation serves the same results to the same key
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings

    config = Settings(data_dir=fresh, leaflet_dir=LEAFLET, database_url=restored_url if postgres else None)
    with TestClient(create_app(config)) as client:
        auth = {"X-API-Key": key}
        listed = {s["id"] for s in client.get(f"{API}/scenarios", headers=auth).json()}
        assert set(scenarios) <= listed
        for run_id in runs:
            path = files_root / src_runs[run_id]["result_path"]
            plan = client.get(f"{API}/runs/{run_id}/plan", headers=auth)
            assert plan.status_code == 200, plan.text
            assert plan.content == (path / "plan.json").read_bytes()
            gpkg = client.get(f"{API}/runs/{run_id}/layers.gpkg", headers=auth)
            assert gpkg.status_code == 200 and gpkg.content == (path / "layers.gpkg").read_bytes()


# ---------------------------------------------------------------------------------------------------------------
# damaged backups and non-empty targets (SQLite, no server)

runner = CliRunner()


@pytest.fixture
def small_backup(tmp_path: Path, toy_region: Any) -> tuple[Path, str]:
    """A backup of an installation with a key and the toy region; (backup folder, the key)."""
    source = tmp_path / "source"
    url = f"sqlite:///{source / 'branchnet.db'}"
    key, _org = seed(url, source / "files", toy_region)
    (source / "files" / "uploads" / "u1").mkdir(parents=True)
    (source / "files" / "uploads" / "u1" / "osm").write_bytes(b"in flight")
    out = tmp_path / "backup"
    backup(url, source / "files", out)
    return out, key


def restore_cli(backup_dir: Path, data: Path, *args: str) -> tuple[int, str]:
    r = runner.invoke(cli, ["restore", str(backup_dir), *args], env={"BRANCHNET_DATA_DIR": str(data),
                                                                     "COLUMNS": "250"})  # fmt: skip
    return r.exit_code, r.output


def occupied(tmp_path: Path) -> Path:
    """A data folder already in use: a database with a key and a file in the store."""
    from service.api.auth import create_key

    data = tmp_path / "occupied"
    url = f"sqlite:///{data / 'branchnet.db'}"
    migrate(url)
    engine = make_engine(url)
    with session_scope(sessionmaker(engine)) as session:
        create_key(session, "org-b", "viewer")
    engine.dispose()
    (data / "files" / "orgs" / "x").mkdir(parents=True)
    (data / "files" / "orgs" / "x" / "note.txt").write_text("keep me")
    return data


def test_a_corrupted_file_is_refused_by_name_and_the_target_is_untouched(small_backup: tuple[Path, str],
                                                                         tmp_path: Path) -> None:  # fmt: skip
    out, _key = small_backup
    data = occupied(tmp_path)
    before = tree_digest(data)
    victim = next(p for p in sorted((out / "files").rglob("*.gpkg")))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size, one bit pattern flipped
    victim.write_bytes(bytes(raw))
    code, output = restore_cli(out, data, "--force")
    assert code == 2, output
    assert str(victim) in output and "SHA-256" in output, output
    assert tree_digest(data) == before

    shutil.copyfile(out / "database.sqlite", tmp_path / "db.copy")
    (out / "database.sqlite").write_bytes(b"")  # truncated database snapshot
    code, output = restore_cli(out, data, "--force")
    assert code == 2 and str(out / "database.sqlite") in output, output
    assert tree_digest(data) == before

    (out / "database.sqlite").unlink()  # a missing file
    code, output = restore_cli(out, data, "--force")
    assert code == 2 and f"{out / 'database.sqlite'}: missing" in output, output
    assert tree_digest(data) == before


def test_restore_refuses_a_non_empty_target_without_force(small_backup: tuple[Path, str], tmp_path: Path) -> None:
    out, key = small_backup
    data = occupied(tmp_path)
    before = tree_digest(data)
    code, output = restore_cli(out, data)
    assert code == 2 and "not empty" in output and "--force" in output, output
    assert tree_digest(data) == before

    code, output = restore_cli(out, data, "--force")
    assert code == 0, output
    assert not (data / "files" / "orgs" / "x").exists()  # replaced, not merged
    assert not (data / "files" / "uploads").exists()  # uploads in flight are not part of a backup
    engine = create_engine(f"sqlite:///{data / 'branchnet.db'}")
    try:
        with engine.connect() as conn:
            names = set(conn.execute(text("SELECT name FROM organisations")).scalars())
            hashes = set(conn.execute(text("SELECT hash FROM api_keys")).scalars())
    finally:
        engine.dispose()
    assert names == {"org-a"}
    assert hashes == {hashlib.sha256(key.encode()).hexdigest()}  # the backed-up key, and only it


def test_an_older_backup_is_migrated_to_the_newest_schema(tmp_path: Path) -> None:
    """A backup taken at schema 0002 comes back at the head, with 0003's columns and tables."""
    from alembic import command
    from alembic.config import Config

    from service.store.db import MIGRATIONS

    source = tmp_path / "old"
    source.mkdir()
    url = f"sqlite:///{source / 'branchnet.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url)
    command.upgrade(cfg, "0002")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO organisations (id, name, created_at) VALUES ('o1', 'old org', '2024-01-01')"))
    engine.dispose()
    manifest = backup(url, source / "files", tmp_path / "backup")
    assert manifest["database"]["schema_revision"] == "0002"
    assert manifest["database"]["rows"]["organisations"] == 1

    fresh = tmp_path / "fresh"
    new_url = f"sqlite:///{fresh / 'branchnet.db'}"
    restore(tmp_path / "backup", new_url, fresh / "files")
    engine = create_engine(new_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"
            assert conn.execute(text("SELECT name FROM organisations")).scalars().all() == ["old org"]
            insp = inspect(conn)
            assert "lease_expires_at" in {c["name"] for c in insp.get_columns("runs")}
            assert "audit_log" in insp.get_table_names()
    finally:
        engine.dispose()


def test_a_folder_replaced_during_the_copy_makes_the_backup_start_again(
    tmp_path: Path, toy_region: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region re-imported (its folder swapped) while the files are copied: the copy may mix two versions, so the
    backup is taken again; when it keeps happening the backup fails and leaves nothing behind."""
    import service.store.backup as backup_module

    source = tmp_path / "source"
    url = f"sqlite:///{source / 'branchnet.db'}"
    seed(url, source / "files", toy_region)
    region = next((source / "files" / "orgs").glob("*/regions/toy"))
    copy_store = backup_module._copy_store
    swaps = {"left": 1}

    def swapping_copy(*args: Any, **kwargs: Any) -> Any:
        if swaps["left"]:
            swaps["left"] -= 1
            shutil.copytree(region, region.with_name(".swap"))  # a new folder (inode) under the same name
            os.replace(region, region.with_name(".old"))
            os.replace(region.with_name(".swap"), region)
            shutil.rmtree(region.with_name(".old"))
        return copy_store(*args, **kwargs)

    monkeypatch.setattr(backup_module, "_copy_store", swapping_copy)
    manifest = backup(url, source / "files", tmp_path / "once")
    assert manifest["attempts"] == 2
    assert {f["path"] for f in manifest["files"]} >= {f"files/{region.relative_to(source / 'files').as_posix()}/"
                                                      "region.json"}  # fmt: skip

    swaps["left"] = 10
    with pytest.raises(backup_module.BackupInconsistentError, match=r"orgs/.*/regions/toy"):
        backup(url, source / "files", tmp_path / "never", attempts=3)
    assert swaps["left"] == 7
    assert not (tmp_path / "never").exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".never")]
    with pytest.raises(ValueError, match="cannot be inside the file store"):  # it would back itself up next time
        backup(url, source / "files", source / "files" / "backups" / "b1")
