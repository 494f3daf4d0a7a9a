"""The web app in a real browser (Chromium through Playwright) against a live ``branchnet serve``.

An admin imports the synthetic toy region through the app's form, with one branch renamed
``<img src=x onerror=alert(1)>``; a planner writes a scenario (an invalid value first: the error shows at its
field), runs it and watches the progress reach 100 %, opens the result, toggles a layer, opens popups, downloads
the GeoPackage and the PNG; two runs are compared with the swipe; a viewer sees no edit button; another
organisation's run is "not found"; a wrong or revoked key gets a clear message; the standalone map.html, from disk
and as served, shows the branch's name as text. Every page is guarded (``conftest.Guard``): no request leaves the
loopback, no console error, no dialog. Screenshots go to ``var/screenshots/``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pyogrio
import pytest

from service.plans.scenario import example
from tests.web.conftest import Guard, Site

pytestmark = pytest.mark.slow

API = "/api/v1"
PAYLOAD = "<img src=x onerror=alert(1)>"
REGION = "toy"
# a failed request the app makes on purpose shows in Chromium's console as "Failed to load resource"
FAILED = r"Failed to load resource: the server responded with a status of {}"
LONG = 180_000  # ms: a region import or a run on a busy machine


def _api(site: Site, role: str = "planner", org: str = "alpha") -> httpx.Client:
    return httpx.Client(base_url=site.url + API, headers={"X-API-Key": site.keys[org][role]}, timeout=120)


def _wait_run(http: httpx.Client, run_id: str, timeout_s: float = 240) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        run: dict[str, Any] = http.get(f"/runs/{run_id}").json()
        if run["status"] not in ("queued", "running"):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {timeout_s} s"
        time.sleep(0.5)


def sign_in(guard: Guard, site: Site, key: str, hash_: str = "#/regions") -> Any:
    """Open the app at ``hash_`` and sign in with ``key`` through the form."""
    page = guard.page
    page.goto(f"{site.url}/ui/{hash_}")
    page.fill("#key", key)
    page.click("form.signin button[type=submit]")
    return page


@pytest.fixture(scope="module")
def region_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The toy region's files, with the first branch renamed to an HTML payload."""
    from geodata.synthetic import generate_region, write_region

    paths = write_region(generate_region("toy", seed=1), tmp_path_factory.mktemp("toy") / "toy")
    data = json.loads(paths["branches"].read_text(encoding="utf-8"))
    data["features"][0]["properties"]["Library name"] = PAYLOAD
    paths["branches"].write_text(json.dumps(data), encoding="utf-8")
    return paths


@pytest.fixture(scope="module")
def imported(site: Site, browser: Any, region_files: dict[str, Path]) -> str:
    """The toy region, imported by alpha's admin through the app's form (the import form is only an admin's)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    guard = Guard(page, context)
    page.on("request", lambda r: guard.requests.append(r.url))
    page.on("console", lambda m: guard.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: guard.page_errors.append(str(e)))
    try:
        sign_in(guard, site, site.keys["alpha"]["admin"])
        page.wait_for_selector("#import-form")
        page.fill("#imp-name", REGION)
        for field, key in (("osm", "osm"), ("population", "areas"), ("branches", "branches"),
                           ("settlements", "settlements")):  # fmt: skip
            page.set_input_files(f"#imp-{field}", str(region_files[key]))
        page.fill("#imp-area_field", "area_id")
        page.fill("#imp-group_field", "municipality")
        page.fill("#imp-id_field", "branch_id")
        page.click("#import-form button[type=submit]")
        page.wait_for_selector(f"text=Imported region {REGION}.", timeout=LONG)
        row = page.locator("table.data tbody tr", has_text=REGION)
        assert row.count() == 1
        cells = row.locator("td").all_inner_texts()
        assert re.fullmatch(r"[\d,]+", cells[1]) and int(cells[2]) >= 2, cells  # population, branches
        assert cells[4].endswith("%"), cells  # today's KPIs
        guard.screenshot("regions-admin")
        guard.check()
    finally:
        context.close()
    return REGION


@pytest.fixture(scope="module")
def two_runs(site: Site, imported: str) -> Iterator[list[str]]:
    """Two succeeded runs of alpha's, of two scenarios stored through the API: [quick-a, quick-b]."""
    ids = []
    with _api(site) as http:
        for name, share in (("quick-a", 0.8), ("quick-b", 0.6)):
            body = example("toy_quick", name=name, region=imported, budget_share=share)
            sc = http.post("/scenarios", json=body)
            assert sc.status_code == 201, sc.text
            run = http.post(f"/scenarios/{sc.json()['id']}/runs")
            assert run.status_code == 202, run.text
            ids.append(run.json()["id"])
        for run_id in ids:
            run = _wait_run(http, run_id)
            assert run["status"] == "succeeded", run
    yield ids


# ---------------------------------------------------------------------------------------------------------------
# signing in


def test_a_wrong_or_revoked_key_gets_a_clear_message(site: Site, guarded: Callable[..., Guard]) -> None:
    guard = guarded()
    guard.expect(FAILED.format(401))
    page = guard.page
    page.goto(f"{site.url}/")  # redirects to the app
    assert page.url.startswith(f"{site.url}/ui/")
    assert page.locator("#key").is_visible()
    guard.screenshot("sign-in")
    for key in ("bn_00000000_not-a-key", site.keys["alpha"]["revoked"]):
        page.fill("#key", key)
        page.click("form.signin button[type=submit]")
        alert = page.locator("#message [role=alert]")
        alert.wait_for()
        assert "not valid" in alert.inner_text() and "revoked" in alert.inner_text()
        assert page.locator("#key").is_visible()  # still on the sign-in form, nothing else shown
        assert not page.evaluate("sessionStorage.getItem('branchnet.key')")
    assert not any(key in url for url in guard.requests for key in (site.keys["alpha"]["revoked"],))


def test_the_key_lives_in_the_session_only(site: Site, guarded: Callable[..., Guard]) -> None:
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["viewer"])
    page.wait_for_selector("#role")
    assert page.locator("#role").inner_text() == "viewer"
    assert page.evaluate("sessionStorage.getItem('branchnet.key')") == site.keys["alpha"]["viewer"]
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    assert all(site.keys["alpha"]["viewer"] not in url for url in guard.requests)
    page.click("#signout")
    page.locator("#key").wait_for()
    assert page.evaluate("sessionStorage.getItem('branchnet.key')") is None


# ---------------------------------------------------------------------------------------------------------------
# a planner: scenario, run, result


def test_planner_writes_a_scenario_runs_it_and_reads_the_result(
    site: Site, imported: str, guarded: Callable[..., Guard], tmp_path: Path
) -> None:
    guard = guarded()
    guard.expect(FAILED.format(422))  # the invalid scenario below, on purpose
    page = sign_in(guard, site, site.keys["alpha"]["planner"], "#/scenarios")
    page.click("#new-scenario")
    page.wait_for_selector("#scenario-form")
    body = example("toy_quick", name="web-first", region=imported)
    page.fill("#sc-json", json.dumps(body))
    page.locator("#sc-json").press("Tab")  # change event: the fields follow the JSON
    assert page.input_value("#sc-name") == "web-first"
    page.fill("#sc-budget_share", "-1")
    assert json.loads(page.input_value("#sc-json"))["budget_share"] == -1  # the JSON follows the fields
    page.click("#save-scenario")
    error = page.locator("#err-sc-budget_share")
    error.wait_for(state="visible")
    assert "greater than 0" in error.inner_text()
    assert "invalid" in (page.get_attribute("#sc-budget_share", "class") or "")
    guard.screenshot("scenario-invalid")

    page.fill("#sc-budget_share", "0.8")
    page.click("#save-scenario")
    page.wait_for_selector("#run-scenario")
    assert page.locator("h2 .name").inner_text() == "web-first"
    page.click("#run-scenario")
    page.wait_for_selector("#progress")
    seen = []
    deadline = time.monotonic() + LONG / 1000
    while page.locator("#results h3").count() == 0:  # the result view replaces the progress when it succeeds
        seen.append(page.eval_on_selector("#progress", "el => el.value"))
        assert "failed" not in page.locator("#run-status").inner_text()
        assert time.monotonic() < deadline, f"the run did not finish: {page.locator('#progress-label').inner_text()}"
        time.sleep(0.3)
    assert page.locator("#progress-label").inner_text().startswith("100 %")
    assert page.eval_on_selector("#progress", "el => el.value") == 100
    assert seen == sorted(seen), seen  # progress only grows
    assert page.locator("#run-status").inner_text() == "succeeded"
    assert page.locator("#cancel-run").is_hidden()

    # the map: layers drawn, a layer toggled off and on, the legend and the attribution
    page.wait_for_selector("#map path.bn-branch")
    demand = page.locator("#map path.bn-demand")
    assert demand.count() > 10
    toggle = page.locator(".leaflet-control-layers-overlays label", has_text="Demand").locator("input")
    toggle.uncheck()
    assert demand.count() == 0
    toggle.check()
    assert demand.count() > 10
    assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()
    assert "closed" in page.locator(".bn-legend").inner_text()

    # popups: a real click opens one; then every branch's (a click event on each marker, since an open popup or
    # a control may cover the next one), one of them the payload, as text
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for marker in page.locator("#map path.bn-branch").all():  # the first one no control covers
        try:
            marker.click(timeout=3000)
            break
        except PlaywrightTimeout:
            continue
    popup = page.locator(".leaflet-popup-content").last
    popup.wait_for()
    assert re.search(r"annual cost [\d,]+", popup.inner_text())
    names = []
    for marker in page.locator("#map path.bn-branch").all():
        marker.dispatch_event("click")  # opens its popup at once; the previous one may still be fading out
        names.append(page.locator(".leaflet-popup-content strong").last.inner_text())
    assert PAYLOAD in names, names
    assert page.locator("img").count() == 0  # nothing was parsed as HTML

    # the tables
    kpis = page.locator("#kpis table").inner_text()
    assert "Meeting the standard" in kpis and "Annual cost" in kpis
    assert page.locator("#closures td", has_text=PAYLOAD).count() == 1  # the branch table, as text
    assert page.locator("#winners-losers tbody tr").count() >= 1
    assert page.locator("#groups tbody tr").count() == 3
    guard.screenshot("run-result")
    page.evaluate("window.scrollTo(0, document.querySelector('#results').offsetTop - 8)")
    guard.screenshot("app", full_page=False)  # the README's docs/screenshot-app.png

    # downloads carry the key in a header (fetch + Blob): the bytes are a GeoPackage and a PNG
    with page.expect_download() as dl:
        page.click("#dl-gpkg")
    gpkg = tmp_path / "layers.gpkg"
    dl.value.save_as(gpkg)
    assert gpkg.read_bytes()[:16] == b"SQLite format 3\x00"
    with sqlite3.connect(gpkg) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
    assert {"demand", "branches", "catchments"} <= {str(n) for n, _ in pyogrio.list_layers(gpkg)}
    with page.expect_download() as dl:
        page.click("#dl-png")
    png = tmp_path / "map.png"
    dl.value.save_as(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the bookmobile's calendar: one event per row of the timetable shown
    visits = page.locator("#timetable tbody tr").count()
    assert visits >= 1
    with page.expect_download() as dl:
        page.locator("#timetable .calendars button").first.click()
    ics = tmp_path / "vehicle.ics"
    dl.value.save_as(ics)
    assert ics.read_text().startswith("BEGIN:VCALENDAR") and ics.read_text().count("BEGIN:VEVENT") == visits
    assert all("X-API-Key" not in u and site.keys["alpha"]["planner"] not in u for u in guard.requests)


def test_a_planner_copies_and_edits_a_scenario(site: Site, two_runs: list[str], guarded: Callable[..., Guard]) -> None:
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["planner"], "#/scenarios")
    page.get_by_role("link", name="quick-a", exact=True).click()
    page.click("#copy-scenario")
    page.wait_for_selector("#scenario-form")
    assert page.input_value("#sc-name") == "quick-a (copy)"
    assert json.loads(page.input_value("#sc-json"))["budget_share"] == 0.8  # the whole body came along
    page.fill("#sc-name", "quick-a-copy")
    page.click("#save-scenario")
    page.wait_for_selector("#run-scenario")
    assert page.locator("h2 .name").inner_text() == "quick-a-copy"
    assert "version 1" in page.locator("p.hint").first.inner_text()
    page.fill("#sc-budget_share", "0.7")
    page.click("#save-scenario")
    page.wait_for_selector("text=Saved scenario quick-a-copy (version 2).")
    with _api(site) as http:
        stored = {s["name"]: s for s in http.get("/scenarios").json()}
    assert stored["quick-a-copy"]["body"]["budget_share"] == 0.7 and stored["quick-a-copy"]["version"] == 2
    assert stored["quick-a"]["body"]["budget_share"] == 0.8  # the original is untouched


def test_a_failed_run_says_why_and_a_queued_one_can_be_cancelled(
    site: Site, imported: str, guarded: Callable[..., Guard]
) -> None:
    standards = {"branch_drive_min": 0.1, "coverage_target": 1.0}  # nobody lives 6 s from a branch
    impossible = example("toy_quick", name="impossible", region=imported, objective="min_cost", standards=standards,
                         fleet={"max_vehicles": 0})  # fmt: skip
    impossible.pop("budget_share")
    sweep = example("toy_quick", name="sweep", region=imported, objective="pareto", pareto={"steps": 8})
    sweep.pop("budget_share")
    with _api(site) as http:
        bad = http.post("/scenarios", json=impossible).json()["id"]
        slow = http.post("/scenarios", json=sweep).json()["id"]
        failed = http.post(f"/scenarios/{bad}/runs").json()["id"]
        reason = _wait_run(http, failed)
    assert reason["status"] == "failed", reason
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["planner"], f"#/runs/{failed}")
    alert = page.locator("#run-error [role=alert]")
    alert.wait_for()
    assert alert.inner_text() == f"The run failed: {reason['error']}"
    assert page.locator("#run-status").inner_text() == "failed" and page.locator("#results h3").count() == 0

    page.goto(f"{site.url}/ui/#/scenarios/{slow}")
    page.click("#run-scenario")
    page.click("#cancel-run")  # shown while the run is queued or running
    page.wait_for_selector("#run-status .cancelled")
    assert "cancelled by a user" in page.locator("#run-error").inner_text()
    assert page.locator("#cancel-run").is_hidden()


def test_compare_two_runs_with_a_swipe(site: Site, two_runs: list[str], guarded: Callable[..., Guard]) -> None:
    a, b = two_runs
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["viewer"], f"#/compare?a={a}&b={b}")
    page.wait_for_selector("#compare-kpis table")
    page.wait_for_selector(".leaflet-pane.bn-side path.bn-branch")
    left, right = page.locator(".leaflet-pane.bn-side").all()
    assert left.locator("path.bn-demand").count() == right.locator("path.bn-demand").count() > 0
    width = page.locator("#map").bounding_box()["width"]

    def cut(pane: Any) -> list[float]:
        return [float(x) for x in re.findall(r"-?[\d.]+", pane.evaluate("el => el.style.clip"))]

    assert cut(left)[1] - cut(left)[3] == pytest.approx(width / 2, abs=2)  # right edge of the left half
    page.locator("#swipe").fill("0.2")
    assert cut(left)[1] - cut(left)[3] == pytest.approx(0.2 * width, abs=2)
    assert cut(right)[3] == pytest.approx(cut(left)[1], abs=0.01)  # the right pane starts where the left ends
    guard.screenshot("compare-runs")

    # the KPI differences are those of /compare
    with _api(site, "viewer") as http:
        cmp = http.get("/compare", params={"runs": f"{a},{b}"}).json()["comparisons"][0]
    year = cmp["years"][0]
    covered = next(r for r in cmp["kpis"][year] if r["metric"] == "covered_share")
    row = page.locator("#compare-kpis tr", has_text="Meeting the standard").locator("td").all_inner_texts()
    assert row[1] == f"{100 * covered['a']:.1f} %" and row[2] == f"{100 * covered['b']:.1f} %"

    # a run against today's network: today's side has every branch open
    page.goto(f"{site.url}/ui/#/compare?a={a}&b=today")
    page.wait_for_selector("#compare-kpis table")
    page.wait_for_selector(".leaflet-pane.bn-side path.bn-branch")
    today = page.locator(".leaflet-pane.bn-side").first
    assert today.locator("path.bn-branch").count() == page.locator(".leaflet-pane.bn-side").last.locator(
        "path.bn-branch").count()  # fmt: skip
    colours = {p.get_attribute("fill") for p in today.locator("path.bn-branch").all()}
    assert colours == {"#2c7bb6"}  # all open today
    guard.screenshot("compare-today")


# ---------------------------------------------------------------------------------------------------------------
# roles and organisations


def test_a_viewer_sees_and_downloads_but_edits_nothing(
    site: Site, two_runs: list[str], guarded: Callable[..., Guard]
) -> None:
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["viewer"], "#/scenarios")
    page.wait_for_selector("table.data")
    assert page.locator("#new-scenario").count() == 0
    page.get_by_role("link", name="quick-a", exact=True).click()
    page.wait_for_selector("pre.json")  # the scenario file, read-only
    for absent in ("#run-scenario", "#copy-scenario", "#scenario-form", "#save-scenario"):
        assert page.locator(absent).count() == 0, absent
    page.goto(f"{site.url}/ui/#/runs/{two_runs[0]}")
    page.wait_for_selector("#dl-gpkg")
    assert page.locator("#cancel-run").count() == 0
    assert page.locator("#dl-plan").is_visible() and page.locator("#dl-png").is_visible()
    page.goto(f"{site.url}/ui/#/regions")
    page.wait_for_selector("table.data")
    assert page.locator("#import-form").count() == 0
    guard.screenshot("viewer")
    page.goto(f"{site.url}/ui/#/batches")
    page.wait_for_selector("text=No nightly batch has run any of your scenarios yet.")


def test_another_organisations_run_is_not_found(site: Site, two_runs: list[str], guarded: Callable[..., Guard]) -> None:
    guard = guarded()
    guard.expect(FAILED.format(404))
    page = sign_in(guard, site, site.keys["beta"]["admin"], f"#/runs/{two_runs[0]}")
    alert = page.locator("#message [role=alert]")
    alert.wait_for()
    assert "Not found" in alert.inner_text() and "another organisation" in alert.inner_text()
    assert page.locator("#map").count() == 0 and page.locator("#view").inner_text().strip()  # not a blank page
    page.goto(f"{site.url}/ui/#/scenarios")
    page.wait_for_selector("p.empty")  # beta sees none of alpha's scenarios
    assert "quick-a" not in page.locator("#view").inner_text()


def test_the_nightly_batch_reports_list_and_detail(
    site: Site, two_runs: list[str], guarded: Callable[..., Guard], tmp_path: Path
) -> None:
    from service.api.local_server import branchnet_command

    with _api(site, "viewer") as http:
        scenario = next(s for s in http.get("/scenarios").json() if s["name"] == "quick-b")
    batch = subprocess.run([branchnet_command(), "batch", "--scenario", scenario["id"], "--force", "--workers", "1"],
                           env=site.server.env, cwd=site.data_dir.parent, capture_output=True, text=True,
                           timeout=600)  # fmt: skip
    assert batch.returncode == 0, batch.stderr[-3000:]
    guard = guarded()
    page = sign_in(guard, site, site.keys["alpha"]["viewer"], "#/batches")
    page.wait_for_selector("table.data")
    rows = page.locator("table.data tbody tr")
    assert rows.count() == 1
    cells = rows.first.locator("td").all_inner_texts()
    assert cells[1] == "succeeded" and cells[4] == "1" and cells[5] == "1", cells  # 1 scenario, recomputed
    rows.first.locator("a").click()
    detail = page.locator("#batch-detail")
    detail.locator("td", has_text="quick-b").first.wait_for()
    assert "succeeded" in detail.inner_text() and "--force" in detail.inner_text()  # status and why it ran
    with page.expect_download() as dl:
        rows.first.locator("button.download").click()
    report = tmp_path / "report.html"
    dl.value.save_as(report)
    assert "<title>branchnet batch" in report.read_text(encoding="utf-8")
    guard.screenshot("batches")


# ---------------------------------------------------------------------------------------------------------------
# the standalone map.html


def test_map_html_shows_names_as_text_from_disk_and_served(
    site: Site, two_runs: list[str], guarded: Callable[..., Guard], tmp_path: Path
) -> None:
    run_id = two_runs[0]
    key = site.keys["alpha"]["viewer"]
    with _api(site, "viewer") as http:
        served = http.get(f"/runs/{run_id}/map")
    assert served.status_code == 200
    policy = served.headers["content-security-policy"]
    assert "script-src 'sha256-" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert "frame-ancestors 'none'" in policy
    html = served.text
    assert PAYLOAD not in html  # the data block escapes every "<"
    assert 'http-equiv="Content-Security-Policy"' in html
    path = tmp_path / "map.html"
    path.write_text(html, encoding="utf-8")

    for source in ("disk", "served"):
        guard = guarded(headers={"X-API-Key": key} if source == "served" else None)
        page = guard.page
        page.goto(path.as_uri() if source == "disk" else f"{site.url}{API}/runs/{run_id}/map")
        page.wait_for_selector("path.bn-branch")
        assert "OpenStreetMap contributors" in page.locator(".leaflet-control-attribution").inner_text()
        names = []
        for marker in page.locator("path.bn-branch").all():
            marker.dispatch_event("click")
            names.append(page.locator(".leaflet-popup-content strong").last.inner_text())
        assert PAYLOAD in names, names
        assert page.locator("img").count() == 0
        guard.screenshot(f"map-html-{source}")
        guard.check()


# ---------------------------------------------------------------------------------------------------------------
# logs


def test_no_key_reaches_the_server_log(site: Site) -> None:
    for org in site.keys.values():
        for key in org.values():
            httpx.get(f"{site.url}/ui/session", headers={"X-API-Key": key}, timeout=30)
    log = site.server.log.read_text(errors="replace")
    assert '"path": "/ui/session"' in log  # the app's requests were logged, by path only
    leaked = [role for org in site.keys.values() for role, key in org.items() if key in log]
    assert not leaked, leaked
