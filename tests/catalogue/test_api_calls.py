"""Bad API calls: bodies too large, wrong content types, malformed JSON, another organisation's ids, a stale
``If-Match``, a missing key or role. Each answers its 4xx with a message that names what is wrong (the field, the
id, the limit), and nothing stored changes (a refused write is only recorded in the audit log, as a refusal).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.catalogue._support import Entry, unchanged
from tests.catalogue.conftest import API, SCENARIO, Service

JSON = {"Content-Type": "application/json"}


def call(method: str, path: str, org: str | None, role: str, **kwargs: Any) -> dict[str, Any]:
    """What an entry sends: ``path`` may hold ``{sid}`` (a's scenario) and ``{rid}`` (a's region)."""
    return {"method": method, "path": path, "org": org, "role": role, "kwargs": kwargs}


FORM = {"name": "tiny2"}
ENTRIES = [
    Entry("scenario-body-too-large", "a 1 MB scenario name", "the JSON body is larger than 1 MB", status=413,
          extra=call("POST", "/scenarios", "a", "planner", headers=JSON,
                     content=b'{"name": "' + b"x" * (1 << 20) + b'"}')),
    Entry("upload-too-large", "a 20 kB OSM file above a 10 kB upload limit",
          "osm: the file exceeds the upload limit of 0.01 MB per file (BRANCHNET_MAX_UPLOAD_MB)", status=413,
          extra=call("POST", "/regions", "a", "admin", files={"osm": ("roads.osm", b" " * 20_000)}, data=FORM)),
    Entry("scenario-text-plain", "a scenario as text/plain",
          "send JSON with 'Content-Type: application/json', not 'text/plain'", status=415,
          extra=call("POST", "/scenarios", "a", "planner", headers={"Content-Type": "text/plain"},
                     content=json.dumps(SCENARIO).encode())),
    Entry("scenario-form-encoded", "a scenario as an HTML form",
          "not 'application/x-www-form-urlencoded'", status=415,
          extra=call("PUT", "/scenarios/{sid}", "a", "planner", data={"region": "tiny"})),
    Entry("scenario-no-content-type", "a scenario without a Content-Type",
          "send JSON with 'Content-Type: application/json', not a body without a Content-Type", status=415,
          extra=call("POST", "/scenarios", "a", "planner", content=json.dumps(SCENARIO).encode())),
    Entry("region-text-plain", "a region as text/plain",
          "upload the files as multipart/form-data, or register server files with a JSON body", status=415,
          extra=call("POST", "/regions", "a", "admin", headers={"Content-Type": "text/plain"}, content=b"roads")),
    Entry("malformed-json", "JSON with a trailing comma",
          "malformed JSON at line 1, column 19: Expecting property name enclosed in double quotes",
          extra=call("POST", "/scenarios", "a", "planner", headers=JSON, content=b'{"region": "tiny",}')),
    Entry("json-nan", "JSON with a NaN budget", "malformed JSON: NaN is not a JSON number",
          extra=call("PUT", "/scenarios/{sid}", "a", "planner", headers=JSON,
                     content=b'{"region": "tiny", "budget": NaN}')),
    Entry("json-not-utf8", "a JSON body in Latin-1", "the request body is not UTF-8 encoded JSON",
          extra=call("POST", "/scenarios", "a", "planner", headers=JSON, content=b'{"name": "R\xe9seau"}')),
    Entry("json-empty", "an empty JSON body", "the request body is empty; send a JSON object",
          extra=call("POST", "/scenarios", "a", "planner", headers=JSON, content=b"")),
    Entry("multipart-without-boundary", "multipart/form-data without a boundary",
          "multipart/form-data without a boundary",
          extra=call("POST", "/regions", "a", "admin", headers={"Content-Type": "multipart/form-data"},
                     content=b"--x--")),
    Entry("upload-unknown-field", "an upload with a form field colour",
          "unknown form field 'colour'; files: osm, population, branches",
          extra=call("POST", "/regions", "a", "admin", files={"osm": ("roads.osm", b"<osm/>")},
                     data={**FORM, "colour": "red"})),
    Entry("upload-path-like-name", "an OSM file named ../../etc/passwd",
          "osm: the file '../../etc/passwd' is not of a supported type; use .osm.pbf",
          extra=call("POST", "/regions", "a", "admin", files={"osm": ("../../etc/passwd", b"root")}, data=FORM)),
    Entry("region-name-taken", "a second region named tiny",
          "a region named 'tiny' already exists in your organisation", status=409,
          extra=call("POST", "/regions", "a", "admin", files="good", data={"name": "tiny"})),
    Entry("stale-if-match", "PUT with If-Match of version 0", "is at version 1, not 0", status=412,
          extra=call("PUT", "/scenarios/{sid}", "a", "planner", headers={"If-Match": '"0"'}, json=SCENARIO)),
    Entry("other-org-scenario-get", "organisation b reads a's scenario", "scenario '{sid}' not found", status=404,
          extra=call("GET", "/scenarios/{sid}", "b", "viewer")),
    Entry("other-org-scenario-put", "organisation b replaces a's scenario", "scenario '{sid}' not found", status=404,
          extra=call("PUT", "/scenarios/{sid}", "b", "planner", json=SCENARIO)),
    Entry("other-org-scenario-delete", "organisation b deletes a's scenario", "scenario '{sid}' not found",
          status=404, extra=call("DELETE", "/scenarios/{sid}", "b", "admin")),
    Entry("other-org-run", "organisation b runs a's scenario", "scenario '{sid}' not found", status=404,
          extra=call("POST", "/scenarios/{sid}/runs", "b", "planner")),
    Entry("other-org-region-delete", "organisation b deletes a's region", "region '{rid}' not found", status=404,
          extra=call("DELETE", "/regions/{rid}", "b", "admin")),
    Entry("other-org-region-in-scenario", "organisation b plans on a's region by name",
          "scenario: region: region 'tiny' is not imported in your organisation (its regions: none)",
          extra=call("POST", "/scenarios", "b", "planner", json=SCENARIO)),
    Entry("viewer-writes", "a viewer's key creates a scenario", "this needs the planner role; your key has viewer",
          status=403, extra=call("POST", "/scenarios", "a", "viewer", json=SCENARIO)),
    Entry("no-key", "a scenario without an API key", "a valid API key is required", status=401,
          extra=call("POST", "/scenarios", None, "", json=SCENARIO)),
    Entry("unknown-run-id", "a run id that does not exist", "run 'nope' not found", status=404,
          extra=call("DELETE", "/runs/nope", "a", "planner")),
]  # fmt: skip
IDS = [e.id for e in ENTRIES]


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_api(entry: Entry, service: Service, region_files: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = entry.extra
    ids = {"sid": service.scenario_id, "rid": service.region_id}
    kwargs = dict(spec["kwargs"])
    if kwargs.get("files") == "good":
        kwargs["files"] = {k: (p.name, p.read_bytes()) for k, p in region_files.items()}
    if entry.id == "upload-too-large":
        monkeypatch.setattr(service.services.settings, "max_upload_mb", 0.01)
    headers = {**(service.headers(spec["org"], spec["role"]) if spec["org"] else {}), **kwargs.pop("headers", {})}
    before = service.snapshot()
    r = service.client.request(spec["method"], API + spec["path"].format(**ids), headers=headers, **kwargs)
    assert r.status_code == entry.status, r.text
    detail = r.json()["detail"]
    assert entry.expected("api").format(**ids) in detail, detail
    assert str(service.data_dir) not in r.text
    unchanged(before, service.snapshot())
