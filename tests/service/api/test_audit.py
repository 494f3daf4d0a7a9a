"""The audit log, on SQLite and on PostgreSQL+PostGIS.

- every write request under /api/v1 (done, refused with 401 or 403, invalid, missing) leaves exactly one row naming
  the key, organisation, role, action, resource and status, recounted here from the requests this test sent;
  reads leave none;
- ``GET /api/v1/audit`` is for admins, shows only their organisation's entries, filters by since, action and key,
  and pages with ``Link: rel="next"``;
- a failed audit write is logged with the whole entry and counted at /metrics, and the response still goes out;
- ``branchnet keys create|rotate|revoke`` are audited and ``branchnet audit`` shows them.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from service.api.auth import identify
from service.plans.report import region_summary
from service.store.db import AuditEntry
from service.store.regions import store_region

API = "/api/v1"
PLAN: dict[str, Any] = {"name": "audited", "region": "toy", "objective": "max_coverage", "budget_share": 0.8,
                        "standards": {"branch_drive_min": 5}, "solve": {"time_limit_s": 5, "seed": 0}}  # fmt: skip


@pytest.fixture(scope="session")
def toy_summary(toy_region: Any) -> dict[str, Any]:
    return region_summary(toy_region)


def rows(services: Any) -> list[AuditEntry]:
    with services.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def test_every_write_is_audited_and_reads_are_not(api: Any, keys: Any, toy_region: Any, toy_summary: Any) -> None:
    client, services = api
    with services.sessions() as session:
        store_region(session, services.files, keys.org_id("a"), toy_region, toy_summary)
    # (method, path, body, org, role or a bad key, expected action); the status is whatever the server answered
    sent: list[tuple[str, str, Any, str | None, str, str]] = [
        ("POST", "/scenarios", PLAN, "a", "planner", "scenario.create"),
        ("POST", "/scenarios", {**PLAN, "budget_share": "lots"}, "a", "planner", "scenario.create"),
        ("DELETE", "/regions/nope", None, "a", "admin", "region.delete"),
        ("DELETE", "/regions/nope", None, "a", "viewer", "region.delete"),
        ("DELETE", "/runs/nope", None, "b", "planner", "run.cancel"),
        ("PUT", "/scenarios/nope", PLAN, "b", "planner", "scenario.update"),
        ("POST", "/scenarios", PLAN, None, "bn_deadbeef_notakey", "scenario.create"),
        ("POST", "/scenarios", PLAN, None, "", "scenario.create"),
        ("PATCH", "/scenarios", PLAN, "a", "admin", "PATCH /api/v1/scenarios"),  # no such method: its template
        ("POST", "/nothing/here", None, "a", "admin", "POST (no route)"),
    ]
    statuses = []
    for method, path, body, org, role, _ in sent:
        headers = keys.headers(org, role) if org else ({"X-API-Key": role} if role else {})
        statuses.append(client.request(method, API + path, json=body, headers=headers).status_code)
    assert statuses == [201, 422, 404, 403, 404, 404, 401, 401, 405, 404]
    scenario_id = client.get(f"{API}/scenarios", headers=keys.headers("a", "viewer")).json()[0]["id"]
    for path in ("/regions", "/scenarios", f"/scenarios/{scenario_id}", "/runs/nope", "/batches"):  # reads
        client.get(API + path, headers=keys.headers("a", "admin"))
    client.get(f"{API}/regions")  # an anonymous read: 401, not audited either

    with services.sessions() as session:
        principals = {(org, role): identify(session, keys[org][role]) for org in "ab" for role in keys[org]}
    got = rows(services)
    assert len(got) == len(sent)
    for row, (method, path, _body, org, role, action), status in zip(got, sent, statuses, strict=True):
        who = principals.get((org, role)) if org else None
        assert (row.action, row.resource, row.status) == (action, API + path, status)
        assert (row.key_id, row.org_id, row.role) == ((who.key_id, who.org_id, who.role) if who else (None,) * 3)
        assert row.detail is not None and row.detail["method"] == method and row.detail["client"] == "testclient"
        assert row.detail.get("key_prefix") == ("deadbeef" if role.startswith("bn_") else None)
        at = row.at if row.at.tzinfo else row.at.replace(tzinfo=UTC)
        assert abs(datetime.now(UTC) - at) < timedelta(minutes=2)


def test_admins_read_their_own_organisations_log(api: Any, keys: Any) -> None:
    client, services = api
    for org in "ab":
        for role in ("viewer", "planner", "admin"):
            for n in range(3 if org == "a" else 1):
                client.delete(f"{API}/regions/{org}{role}{n}", headers=keys.headers(org, role))
    own = [r for r in rows(services) if r.org_id == keys.org_id("a")]
    assert len(own) == 9

    assert client.get(f"{API}/audit", headers=keys.headers("a", "planner")).status_code == 403
    assert client.get(f"{API}/audit").status_code == 401
    whole = client.get(f"{API}/audit", headers=keys.headers("a", "admin"))
    assert whole.status_code == 200 and whole.headers["cache-control"] == "no-store"
    assert [e["id"] for e in whole.json()] == [r.id for r in reversed(own)]  # newest first, only a's
    assert {e["resource"] for e in whole.json()} == {r.resource for r in own}
    of_b = client.get(f"{API}/audit", headers=keys.headers("b", "admin")).json()
    assert len(of_b) == 3 and all(e["resource"].startswith(f"{API}/regions/b") for e in of_b)

    # pages of 4 by the Link header: the same entries, once each
    paged: list[int] = []
    url: str | None = f"{API}/audit?limit=4"
    while url:
        page = client.get(url, headers=keys.headers("a", "admin"))
        paged += [e["id"] for e in page.json()]
        link = page.headers.get("link")
        url = link[1 : link.index(">")] if link else None
    assert paged == [r.id for r in reversed(own)]

    viewer = next(r.key_id for r in own if r.role == "viewer")
    by_key = client.get(f"{API}/audit", params={"key": viewer}, headers=keys.headers("a", "admin")).json()
    assert [e["status"] for e in by_key] == [403] * 3 and {e["key_id"] for e in by_key} == {viewer}
    by_action = client.get(f"{API}/audit?action=region.delete&limit=1000", headers=keys.headers("a", "admin"))
    assert len(by_action.json()) == 9
    assert client.get(f"{API}/audit?action=run.cancel", headers=keys.headers("a", "admin")).json() == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.get(f"{API}/audit", params={"since": future}, headers=keys.headers("a", "admin")).json() == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len(client.get(f"{API}/audit", params={"since": past}, headers=keys.headers("a", "admin")).json()) == 9


def test_a_failed_audit_write_is_logged_and_counted(api: Any, keys: Any, caplog: pytest.LogCaptureFixture) -> None:
    client, services = api
    with services.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit_log"))
    with caplog.at_level(logging.ERROR, logger="branchnet.audit"):
        r = client.delete(f"{API}/regions/nope", headers=keys.headers("a", "admin"))
    assert r.status_code == 404  # the answer still goes out
    failed = [rec for rec in caplog.records if rec.getMessage().startswith("audit write failed")]
    assert len(failed) == 1
    entry = failed[0].fields["audit"]  # type: ignore[attr-defined]
    assert (entry["action"], entry["resource"], entry["status"]) == ("region.delete", f"{API}/regions/nope", 404)
    assert "branchnet_audit_write_failures_total 1" in client.get("/metrics").text


def test_key_commands_are_audited(make_app: Any, db_url: str, monkeypatch: pytest.MonkeyPatch, data_dir: Any) -> None:
    from service.cli import app as cli

    monkeypatch.setenv("BRANCHNET_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BRANCHNET_DATABASE_URL", db_url)
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "create", "--org", "Rutland", "--role", "admin"])
    assert made.exit_code == 0, made.output
    other = runner.invoke(cli, ["keys", "create", "--org", "Leics", "--role", "viewer"])
    prefix = made.stdout.strip().split("_")[1]
    rotated = runner.invoke(cli, ["keys", "rotate", prefix, "--grace", "1h"])
    assert rotated.exit_code == 0, rotated.output
    assert runner.invoke(cli, ["keys", "revoke", other.stdout.strip().split("_")[1]]).exit_code == 0

    client, _ = make_app(db_url)
    r = client.delete(f"{API}/regions/x", headers={"X-API-Key": rotated.stdout.strip()})
    assert r.status_code == 404
    shown = runner.invoke(cli, ["audit", "--json"])
    assert shown.exit_code == 0, shown.output
    import json

    entries = json.loads(shown.stdout)
    assert [(e["organisation"], e["action"]) for e in entries] == [
        ("Rutland", "region.delete"), ("Leics", "key.revoke"), ("Rutland", "key.create"), ("Rutland", "key.rotate"),
        ("Leics", "key.create"), ("Rutland", "key.create")]  # fmt: skip
    assert all(e["detail"]["via"] == "cli" for e in entries[1:])
    rutland = json.loads(runner.invoke(cli, ["audit", "--json", "--org", "Rutland", "--since", "1h"]).stdout)
    assert [e["action"] for e in rutland] == ["region.delete", "key.create", "key.rotate", "key.create"]
    revokes = json.loads(runner.invoke(cli, ["audit", "--json", "--action", "key.revoke"]).stdout)
    assert [e["organisation"] for e in revokes] == ["Leics"]
    table = runner.invoke(cli, ["audit"])
    assert table.exit_code == 0 and "key.rotate" in table.stdout
    bad = runner.invoke(cli, ["audit", "--org", "Nowhere"])
    assert bad.exit_code == 2 and "no such organisation" in bad.output
