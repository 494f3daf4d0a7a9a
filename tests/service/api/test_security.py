"""Keys that expire and rotate, the rate limit per key, and the security headers of every response.

- an expired key answers 401 saying when it expired, also while the key cache still holds it; a key whose expiry
  is brought forward in the database (a rotation with a grace period) stops within the cache time;
- ``branchnet keys create --expires-in/--expires``, ``keys list``, ``keys rotate [--grace]`` and ``keys revoke``,
  on SQLite and PostgreSQL;
- the token bucket, against a clock of our own; over HTTP, a burst over the limit gets 429 with ``Retry-After``, a
  wait lets it through again, and other keys and addresses are not affected;
- every operation of both OpenAPI documents, plus errors, 404s, the web app and an unhandled 500, carries the
  security headers.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from typer.testing import CliRunner

from service.api import deps
from service.api.auth import create_key, parse_duration, parse_expiry, utc
from service.api.ratelimit import RateLimiter
from service.errors import BadRequestError
from service.store.db import ApiKey

API = "/api/v1"


# ---------------------------------------------------------------------------------------------------------------
# expiry and rotation


def test_an_expired_key_is_refused_saying_when(api: Any, keys: Any) -> None:
    client, services = api
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    with services.sessions() as session:
        plain, row = create_key(session, "org-a", "planner", "temp", expires_at=soon)
        session.commit()
    assert client.get(f"{API}/regions", headers={"X-API-Key": plain}).status_code == 200  # now in the key cache
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.1)
    r = client.get(f"{API}/regions", headers={"X-API-Key": plain})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["detail"].startswith(f"this API key expired at {soon:%Y-%m-%d %H:%M:%S} UTC")
    basic = client.get("/ogc/collections", auth=("qgis", plain))
    assert basic.status_code == 401 and basic.headers["www-authenticate"] == 'Basic realm="branchnet"'
    # the refused write is audited under the key that tried
    assert client.delete(f"{API}/regions/x", headers={"X-API-Key": plain}).status_code == 401
    from service.store.db import AuditEntry

    with services.sessions() as session:
        entry = session.scalars(select(AuditEntry)).one()
    assert (entry.key_id, entry.status, entry.action) == (row.id, 401, "region.delete")
    assert client.get(f"{API}/regions", headers=keys.headers("a", "planner")).status_code == 200


def test_an_expiry_brought_forward_stops_the_key_within_the_cache_time(
    api: Any, keys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, services = api
    monkeypatch.setattr(deps, "KEY_CACHE_S", 0.5)
    headers = keys.headers("a", "viewer")
    assert client.get(f"{API}/regions", headers=headers).status_code == 200
    with services.sessions() as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == keys["a"]["viewer"].split("_")[1])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))  # fmt: skip
        session.commit()
    changed = time.monotonic()
    while client.get(f"{API}/regions", headers=headers).status_code == 200:
        # a generous margin for a busy machine, still below the default cache time of 5 s
        assert time.monotonic() - changed < deps.KEY_CACHE_S + 3.5, "the expired key still works"
        time.sleep(0.05)
    assert "expired at" in client.get(f"{API}/regions", headers=headers).json()["detail"]


def test_durations_and_expiry_dates() -> None:
    assert parse_duration("90d") == timedelta(days=90) and parse_duration("12h") == timedelta(hours=12)
    assert parse_duration("1.5w") == timedelta(days=10.5) and parse_duration("0") == timedelta(0)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert parse_expiry("30m", None, now=now) == now + timedelta(minutes=30)
    assert parse_expiry(None, "2030-03-31", now=now) == datetime(2030, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert parse_expiry(None, None, now=now) is None
    for bad, message in ((("90", None), "use a number and a unit"), (("1d", "2031-01-01"), "not both"),
                         ((None, "2029-12-31"), "in the past"), ((None, "31/12/2030"), "YYYY-MM-DD")):  # fmt: skip
        with pytest.raises(BadRequestError, match=message):
            parse_expiry(*bad, now=now)


def test_key_commands_create_list_rotate_revoke(
    make_app: Any, db_url: str, data_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.cli import app as cli

    monkeypatch.setenv("BRANCHNET_DATA_DIR", str(data_dir))
    monkeypatch.setenv("BRANCHNET_DATABASE_URL", db_url)
    runner = CliRunner()
    before = datetime.now(UTC)
    made = runner.invoke(cli, ["keys", "create", "--org", "Rutland", "--role", "planner", "--name", "ops",
                               "--expires-in", "90d"])  # fmt: skip
    assert made.exit_code == 0, made.output
    old_key = made.stdout.strip()
    dated = runner.invoke(cli, ["keys", "create", "--org", "Leics", "--role", "viewer", "--expires", "2099-12-31"])
    assert dated.exit_code == 0, dated.output
    listed = json.loads(runner.invoke(cli, ["keys", "list", "--json"]).stdout)
    assert [(k["organisation"], k["role"], k["name"], k["revoked"]) for k in listed] == [
        ("Leics", "viewer", "", False), ("Rutland", "planner", "ops", False)]  # fmt: skip
    expiry = datetime.fromisoformat(listed[1]["expires"])
    assert before + timedelta(days=90) <= expiry <= datetime.now(UTC) + timedelta(days=90)
    assert listed[0]["expires"].startswith("2099-12-31T23:59:59")
    assert old_key not in json.dumps(listed) and listed[1]["prefix"] == old_key.split("_")[1]
    assert "Rutland" in runner.invoke(cli, ["keys", "list"]).stdout

    client, _ = make_app(db_url)
    # rotate with a grace period: the new key (printed alone) works at once, the old one until the grace ends
    rotated = runner.invoke(cli, ["keys", "rotate", listed[1]["id"], "--grace", "1d"])
    assert rotated.exit_code == 0, rotated.output
    new_key = rotated.stdout.strip()
    assert re.fullmatch(r"bn_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", new_key), rotated.stdout
    deps._key_cache.clear()
    assert client.get(f"{API}/regions", headers={"X-API-Key": new_key}).status_code == 200
    assert client.get(f"{API}/regions", headers={"X-API-Key": old_key}).status_code == 200
    after = {k["id"]: k for k in json.loads(runner.invoke(cli, ["keys", "list", "--json", "--org", "Rutland"]).stdout)}
    old, new = after[listed[1]["id"]], next(k for i, k in after.items() if i != listed[1]["id"])
    assert (new["role"], new["name"], new["revoked"], old["revoked"]) == ("planner", "ops", False, False)
    grace_end = datetime.fromisoformat(old["expires"])
    assert abs(grace_end - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=1)
    lifetime = datetime.fromisoformat(new["expires"]) - datetime.fromisoformat(new["created"])
    assert abs(lifetime - timedelta(days=90)) < timedelta(minutes=1)  # the old key's lifetime, from now

    # rotate at once: the old key stops, the newest works; a revoked key cannot be rotated
    again = runner.invoke(cli, ["keys", "rotate", new_key.split("_")[1]])
    assert again.exit_code == 0, again.output
    deps._key_cache.clear()
    assert client.get(f"{API}/regions", headers={"X-API-Key": new_key}).status_code == 401
    assert client.get(f"{API}/regions", headers={"X-API-Key": again.stdout.strip()}).status_code == 200
    refused = runner.invoke(cli, ["keys", "rotate", new_key.split("_")[1]])
    assert refused.exit_code == 2 and "is revoked" in refused.output

    revoked = runner.invoke(cli, ["keys", "revoke", again.stdout.strip().split("_")[1]])
    assert revoked.exit_code == 0, revoked.output
    deps._key_cache.clear()
    assert client.get(f"{API}/regions", headers={"X-API-Key": again.stdout.strip()}).status_code == 401
    missing = runner.invoke(cli, ["keys", "revoke", "nosuchkey"])
    assert missing.exit_code == 2 and "no API key with the id or prefix 'nosuchkey'" in missing.output
    bad = runner.invoke(cli, ["keys", "create", "--org", "X", "--role", "viewer", "--expires-in", "soon"])
    assert bad.exit_code == 2 and "--expires-in 'soon'" in bad.output


# ---------------------------------------------------------------------------------------------------------------
# rate limit


def test_token_bucket_against_its_own_clock() -> None:
    now = [100.0]
    limiter = RateLimiter(per_s=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k") == pytest.approx(0.5)  # no token: one comes back in 1 / 2 s
    assert limiter.take("other") == 0.0
    now[0] += 0.25  # half a token back
    assert limiter.take("k") == pytest.approx(0.25)
    now[0] += 0.25
    assert limiter.take("k") == 0.0 and limiter.take("k") == pytest.approx(0.5)
    now[0] += 60  # refills to the burst, never above
    assert [limiter.take("k") for _ in range(4)][-1] == pytest.approx(0.5)


def test_a_burst_over_the_limit_gets_429_with_retry_after(make_app: Any, db_url: str) -> None:
    from tests.service.api.conftest import create_keys

    client, services = make_app(db_url, rate_limit_per_s=1.0, rate_limit_burst=5)
    keys = create_keys(services)
    headers = keys.headers("a", "viewer")
    codes = [client.get(f"{API}/regions", headers=headers).status_code for _ in range(12)]
    # the key's first request counts against the address (until it proved valid), the next 5 against the key
    assert codes[:6] == [200] * 6 and 429 in codes[6:8], codes
    r = client.get(f"{API}/regions", headers=headers)
    assert r.status_code == 429 and r.json()["detail"].startswith("too many requests: this API key")
    retry = int(r.headers["retry-after"])
    assert retry >= 1 and r.headers["content-type"] == "application/json"
    assert r.headers["x-frame-options"] == "DENY"  # the refusal has the security headers too
    # other keys are unaffected
    assert client.get(f"{API}/regions", headers=keys.headers("a", "planner")).status_code == 200
    assert client.get(f"{API}/regions", headers=keys.headers("b", "viewer")).status_code == 200
    time.sleep(retry)
    assert client.get(f"{API}/regions", headers=headers).status_code == 200
    assert client.get("/healthz").status_code == 200  # never limited


def test_requests_without_a_valid_key_are_limited_per_address(make_app: Any) -> None:
    from tests.service.api.conftest import create_keys

    client, services = make_app(rate_limit_per_s=0.5, rate_limit_burst=4)
    keys = create_keys(services, ("a",))
    assert client.get(f"{API}/regions", headers=keys.headers("a", "admin")).status_code == 200  # learnt
    made_up = [client.get(f"{API}/regions", headers={"X-API-Key": f"bn_{i:08x}_x"}).status_code for i in range(6)]
    assert made_up[:3] == [401] * 3 and made_up[3:] == [429] * 3, made_up  # one token went on the admin's 1st
    r = client.get(f"{API}/regions")
    assert r.status_code == 429 and "from your address" in r.json()["detail"]
    assert client.get(f"{API}/regions", headers=keys.headers("a", "admin")).status_code == 200
    other = TestClient(client.app, client=("192.0.2.7", 40000))
    assert other.get(f"{API}/regions").status_code == 401  # another address has its own bucket


def test_a_zero_rate_turns_the_limit_off(make_app: Any) -> None:
    client, _ = make_app(rate_limit_per_s=0, rate_limit_burst=1)
    assert {client.get(f"{API}/regions").status_code for _ in range(30)} == {401}


# ---------------------------------------------------------------------------------------------------------------
# security headers

COMMON = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def check_headers(r: Any, what: str, *, no_store: bool, hsts: bool = False) -> None:
    for name, value in COMMON.items():
        assert r.headers.get(name) == value, f"{what} ({r.status_code}): {name} is {r.headers.get(name)!r}"
    policy = r.headers.get("permissions-policy", "")
    assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy, what
    if no_store:
        assert r.headers.get("cache-control") == "no-store", f"{what} ({r.status_code}): cache"
    assert ("strict-transport-security" in r.headers) == hsts, what


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m.upper(), re.sub(r"\{[^}]+\}", "x", p)) for p, ops in document["paths"].items() for m in ops
            if m in ("get", "post", "put", "patch", "delete")]  # fmt: skip


def test_every_response_has_the_security_headers(api: Any, keys: Any) -> None:
    client, _ = api
    api_ops = operations(client.get(f"{API}/openapi.json").json())
    ogc_doc = client.get("/ogc/api", headers=keys.headers("a", "admin")).json()
    ogc_ops = [(m, "/ogc" + p) for m, p in operations(ogc_doc)]
    assert len(api_ops) >= 29 and len(ogc_ops) >= 6
    seen: set[int] = set()
    for method, path in api_ops + ogc_ops:
        anonymous: dict[str, str] = {}
        for headers in (keys.headers("a", "admin"), anonymous):
            r = client.request(method, path, headers=headers)
            seen.add(r.status_code)
            check_headers(r, f"{method} {path}", no_store=path.startswith((API, "/ogc")))
    assert {200, 401, 404} <= seen
    admin = keys.headers("a", "admin")
    extra = [
        ("GET", "/nowhere", {}, False),  # 404 outside the API
        ("GET", f"{API}/nowhere", admin, True),
        ("PATCH", f"{API}/regions", admin, True),  # 405
        ("POST", f"{API}/scenarios", {**admin, "content-type": "text/plain"}, True),  # 415
        ("GET", f"{API}/audit?limit=0", admin, True),  # 422
        ("GET", f"{API}/docs", {}, False),
        ("GET", "/", {}, False),
        ("GET", "/ui/", {}, False),
        ("GET", "/ui/static/app.js", {}, False),
        ("GET", "/healthz", {}, False),
        ("GET", "/metrics", {}, False),
        ("GET", "/ui/session", admin, True),
    ]
    for method, path, headers, no_store in extra:
        r = client.request(method, path, headers=headers, follow_redirects=False)
        check_headers(r, f"{method} {path}", no_store=no_store)
    assert client.get("/ui/static/app.js").headers["cache-control"] == "no-cache"  # the app's files revalidate


def test_an_unhandled_error_and_https_have_the_headers(make_app: Any) -> None:
    client, _ = make_app(behind_https=True)

    def boom() -> None:
        raise RuntimeError("a bug")

    client.app.add_api_route("/boom", boom)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    r = quiet.get("/boom")
    assert r.status_code == 500 and r.text == "Internal Server Error"
    check_headers(r, "500", no_store=False, hsts=True)
    assert r.headers["strict-transport-security"].startswith("max-age=31536000")
    check_headers(client.get(f"{API}/regions"), "401", no_store=True, hsts=True)


def test_expiry_column_round_trips_as_utc(api: Any) -> None:
    _, services = api
    when = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    with services.sessions() as session:
        _, row = create_key(session, "org-z", "viewer", expires_at=when)
        session.commit()
        key_id = row.id
    with services.sessions() as session:
        row = session.get(ApiKey, key_id)
        assert row is not None and utc(row.expires_at) == when
