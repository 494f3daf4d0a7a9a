"""The pages without a browser: map.html's escaping and its script hashes, the app's headers and whitelists."""

from __future__ import annotations

import base64
import hashlib
import html as htmllib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely

from service.plans.maps import write_map
from tests.service.api.conftest import LEAFLET

PAYLOAD = "<img src=x onerror=alert(1)>"
CLOSER = "</script><script>alert(2)</script>"


@pytest.fixture
def map_html(tmp_path: Path) -> str:
    """A map.html of two branches named like HTML, one closing the script element."""
    branches = gpd.GeoDataFrame(
        {"branch_id": ["a", "b"], "name": [PAYLOAD, CLOSER], "decision": ["keep", "close"],
         "annual_cost": [1.0, 2.0], "staffed_hours_week": [10.0, 20.0]},
        geometry=[shapely.Point(10, 55), shapely.Point(10.1, 55.1)], crs="EPSG:4326",
    )  # fmt: skip
    path = write_map(tmp_path / "map.html", {"branches": branches}, leaflet_dir=LEAFLET, title=f"plan {PAYLOAD}",
                     summary_html="<table><tr><td>1</td></tr></table>")  # fmt: skip
    return path.read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_map_html_keeps_names_out_of_its_markup(map_html: str) -> None:
    assert PAYLOAD not in map_html and CLOSER not in map_html
    assert "<img" not in map_html.lower()
    block = re.search(r'<script type="application/json" id="branchnet-data">(.*?)</script>', map_html, re.S)
    assert block is not None
    data = json.loads(block.group(1))  # the data block is plain JSON, with the names intact
    names = [f["properties"]["name"] for f in data["layers"]["branches"]["features"]]
    assert names == [PAYLOAD, CLOSER]
    assert f"<title>plan {htmllib.escape(PAYLOAD)}</title>" in map_html


def test_map_html_policy_lists_exactly_its_own_scripts_and_styles(map_html: str) -> None:
    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', map_html)
    assert meta is not None
    policy = dict(
        (d.split(" ", 1)[0], d.split(" ", 1)[1] if " " in d else "")
        for d in htmllib.unescape(meta.group(1)).split("; ")
    )
    # recount: hash every executable inline script and every style element of the page
    scripts = re.findall(r"<script>(.*?)</script>", map_html, re.S)
    styles = re.findall(r"<style>(.*?)</style>", map_html, re.S)
    assert len(scripts) == 3 and len(styles) == 2
    assert set(re.findall(r"'([^']+)'", policy["script-src"])) == {_digest(s) for s in scripts}
    assert set(re.findall(r"'([^']+)'", policy["style-src"])) == {_digest(s) for s in styles}
    assert policy["default-src"] == "'none'" and policy["img-src"] == "data:"
    assert "unsafe" not in meta.group(1)
    markup = re.sub(r"<script.*?</script>", "", map_html, flags=re.S)
    assert not re.search(r"<[^>]*\son[a-z]+\s*=", markup)  # no event handler attribute in any tag


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Any]:
    """The app on a fresh data folder, with one viewer key (``client.key``)."""
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.api.auth import create_key
    from service.config import Settings

    app = create_app(Settings(data_dir=tmp_path / "data", leaflet_dir=LEAFLET))
    with TestClient(app) as http:
        with app.state.services.sessions() as session:
            http.key, _ = create_key(session, "Org <b>One</b>", "viewer", name="reader")  # type: ignore[attr-defined]
            session.commit()
        yield http


def test_the_app_page_has_a_strict_policy_and_no_inline_code(client: Any) -> None:
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    wanted = ("default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data: blob:",
              "connect-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'")  # fmt: skip
    for directive in wanted:
        assert directive in policy.split("; "), directive
    assert "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff" and page.headers["referrer-policy"] == "no-referrer"
    assert "<script>" not in page.text and "style=" not in page.text and not re.search(r"\son[a-z]+=", page.text)
    for src in re.findall(r'(?:src|href)="([^"]+)"', page.text):
        if src.startswith("#") or src == "data:,":
            continue
        assert src.startswith("/ui/"), src  # everything from this server
        assert client.get(src).status_code == 200, src
    redirect = client.get("/", follow_redirects=False)
    assert redirect.status_code == 307 and redirect.headers["location"] == "/ui/"


def test_only_whitelisted_files_are_served(client: Any) -> None:
    js = client.get("/ui/vendor/leaflet/leaflet.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert js.content == (LEAFLET / "leaflet.js").read_bytes()
    assert client.get("/ui/static/map.js").headers["content-type"].startswith("text/javascript")
    for path in ("/ui/vendor/leaflet/leaflet-src.js", "/ui/vendor/leaflet/../../package.json",
                 "/ui/vendor/leaflet%2F..%2F..%2Fpackage.json", "/ui/static/router.py", "/ui/static/..%2Frouter.py",
                 "/ui/static/index.html", "/ui/vendor/", "/ui/static/"):  # fmt: skip
        assert client.get(path).status_code == 404, path


def test_the_session_says_who_the_key_is(client: Any) -> None:
    assert client.get("/ui/session").status_code == 401
    assert client.get("/ui/session", headers={"X-API-Key": "bn_0_wrong"}).status_code == 401
    me = client.get("/ui/session", headers={"X-API-Key": client.key})
    assert me.json() == {"organisation": "Org <b>One</b>", "role": "viewer", "key_name": "reader"}
    assert me.headers["content-type"].startswith("application/json")  # a name is data, never markup


def test_a_map_page_and_a_batch_report_are_not_framed_and_run_only_their_own_code(client: Any) -> None:
    from service.web.security import REPORT_POLICY, policies

    by_path = {pattern.pattern: policy for pattern, policy in policies(LEAFLET)}
    map_policy = next(p for k, p in by_path.items() if "map" in k)
    assert "script-src 'sha256-" in map_policy and "frame-ancestors 'none'" in map_policy
    assert "unsafe" not in map_policy.split("style-src")[0]
    assert "script" not in REPORT_POLICY and "frame-ancestors 'none'" in REPORT_POLICY
    # an unknown run's map answers 404 with the map's policy; the API's JSON keeps nosniff
    r = client.get("/api/v1/runs/nope/map", headers={"X-API-Key": client.key})
    assert r.status_code == 404 and r.headers["content-security-policy"] == map_policy
    assert (
        client.get("/api/v1/regions", headers={"X-API-Key": client.key}).headers["x-content-type-options"] == "nosniff"
    )
