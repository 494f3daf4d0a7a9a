"""Fixtures of the bad-input catalogue, one of each per module (the bad calls change nothing, so they can share):

``region_files``
    The good tiny region's files (:func:`tests.catalogue._support.good_region`) in a module folder.
``cli_data``
    A data folder (``BRANCHNET_DATA_DIR``) with the tiny region imported by ``branchnet region import tiny``.
``service``
    A :class:`Service`: the HTTP app on SQLite in its own data folder (rate limit off), keys of organisations ``a``
    and ``b``, the tiny region uploaded by ``a``'s admin and one scenario of ``a`` on it.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.catalogue._support import cli, good_region, import_args, snapshot

API = "/api/v1"
FIELDS = {"area_field": "code", "id_field": "branch_id"}
SCENARIO: dict[str, Any] = {
    "name": "tiny-plan",
    "region": "tiny",
    "objective": "max_coverage",
    "budget_share": 0.8,
    "solve": {"time_limit_s": 5, "seed": 0},
}


@pytest.fixture(scope="module")
def region_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The good tiny region's files."""
    return good_region(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory: pytest.TempPathFactory, region_files: dict[str, Path]) -> Path:
    """A data folder holding the tiny region, imported by the CLI."""
    data = tmp_path_factory.mktemp("cli-data")
    code, out = cli(import_args("tiny", region_files), data)
    assert code == 0, out
    return data


@dataclass
class Service:
    """The app of a catalogue module and what it holds."""

    client: Any
    services: Any
    keys: Any
    data_dir: Path
    db_url: str
    region_id: str
    scenario_id: str

    def headers(self, org: str, role: str) -> dict[str, str]:
        return dict(self.keys.headers(org, role))

    def snapshot(self) -> dict[str, Any]:
        return snapshot(self.data_dir, self.db_url)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, region_files: dict[str, Path]) -> Iterator[Service]:
    """The app with organisations a and b, a's tiny region and one scenario of a."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.config import Settings
    from tests.service.api.conftest import LEAFLET, create_keys

    data = tmp_path_factory.mktemp("api-data")
    settings = Settings(data_dir=data, leaflet_dir=LEAFLET, log_json=True, rate_limit_per_s=0)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(TestClient(create_app(settings)))
        services = client.app.state.services  # type: ignore[attr-defined]
        keys = create_keys(services)
        files = {k: (p.name, p.read_bytes()) for k, p in region_files.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = client.post(f"{API}/regions", headers=keys.headers("a", "admin"), files=files,
                            data={"name": "tiny", **FIELDS})  # fmt: skip
        assert r.status_code == 201, r.text
        region_id = r.json()["id"]
        r = client.post(f"{API}/scenarios", headers=keys.headers("a", "planner"), json=SCENARIO)
        assert r.status_code == 201, r.text
        yield Service(client, services, keys, data, settings.db_url, region_id, r.json()["id"])
