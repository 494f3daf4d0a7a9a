"""Worker for benchmarks/valhalla.py: runs inside the side venv (Python 3.12 + pyvalhalla), never in branchnet's.

It imports only the standard library and ``valhalla``. It reads one JSON request on stdin and writes one JSON
reply on stdout; Valhalla's own logs and any traceback go to stderr, which the caller shows when the exit code is
not 0.

Requests:

- ``{"action": "config", "tile_dir": DIR, "concurrency": N, "limits": {...}}`` writes ``DIR/valhalla.json`` for
  a tile build and offline routing (no admin, timezone, elevation or traffic data) and replies
  ``{"config": PATH, "bin": DIR}``, where ``bin`` holds the bundled executables (``valhalla_build_tiles``).
- ``{"action": "matrix", "config": PATH, "tile_dir": DIR, "limits": {...}, "sources": [[lon, lat], ...],
  "targets": [...], "costing": "auto", "search_filter": {...}, "max_pairs": N}`` replies
  ``{"durations": [[s or null, ...], ...], "requests": K}`` with one row a source; null marks a pair with no route.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import valhalla

# Valhalla's error codes for a matrix over a service limit, seen with pyvalhalla 3.9.1: 150 "Exceeded max
# locations" (sources × targets > max_matrix_location_pairs) and 154 "Path distance exceeds the max distance limit"
# (max_matrix_distance). A smaller request may pass, so these (and only these) make the worker split the sources.
LIMIT_CODES = {150, 154}


def write_config(request: dict[str, Any]) -> dict[str, Any]:
    tile_dir = Path(request["tile_dir"]).resolve()
    tile_dir.mkdir(parents=True, exist_ok=True)
    config = valhalla.get_config(tile_extract="", tile_dir=tile_dir, verbose=True)  # build log to stdout
    mjolnir = config["mjolnir"]
    mjolnir["concurrency"] = int(request.get("concurrency", 1))
    # Nothing but the extract is at hand offline: point the optional inputs at paths that do not exist, so that
    # the build skips them instead of reading /data/valhalla/... of some other install.
    missing = tile_dir / "absent"
    for key in ("admin", "landmarks", "timezone"):
        mjolnir[key] = str(missing / f"{key}.sqlite")
    mjolnir["transit_dir"] = str(missing / "transit")
    mjolnir["transit_feeds_dir"] = str(missing / "transit_feeds")
    mjolnir["traffic_extract"] = ""
    mjolnir["data_processing"]["use_admin_db"] = False
    config["additional_data"]["elevation"] = str(missing / "elevation")
    for costing, limits in request.get("limits", {}).items():
        config["service_limits"].setdefault(costing, {}).update(limits)
    path = tile_dir / "valhalla.json"
    path.write_text(json.dumps(config, indent=2))
    return {"config": str(path), "bin": str(valhalla.PYVALHALLA_DIR / "bin")}


def _durations(
    reply: dict[str, Any], n_sources: int, n_targets: int, field: str = "durations"
) -> list[list[float | None]]:
    """Read the duration (or, with ``field="distances"``, the distance in km) table of a matrix reply, in its
    concise (verbose=false) or its verbose form."""
    table = reply["sources_to_targets"]
    if isinstance(table, dict):  # concise: {"durations": [[...]], "distances": [[...]]}
        rows = table[field]
        return [[rows[i][j] for j in range(n_targets)] for i in range(n_sources)]
    out: list[list[float | None]] = [[None] * n_targets for _ in range(n_sources)]
    for i, row in enumerate(table):
        for cell in row:
            out[i][cell.get("to_index", 0)] = cell.get("time" if field == "durations" else "distance")
    return out


def _actor(request: dict[str, Any], scratch: Path) -> valhalla.Actor:
    """An Actor on the build's config, with the tile folder and the service limits of this request."""
    config = json.loads(Path(request["config"]).read_text())
    config["mjolnir"]["tile_dir"] = str(Path(request.get("tile_dir") or config["mjolnir"]["tile_dir"]).resolve())
    config["mjolnir"]["tile_extract"] = ""
    config["logging"]["type"] = ""  # stdout carries the reply; keep Valhalla's log out of it
    # costmatrix agreed with /route to the second on Rutland; timedistancematrix was up to 6 min off for some targets
    config["thor"]["source_to_target_algorithm"] = "costmatrix"
    for costing, limits in request.get("limits", {}).items():
        config["service_limits"].setdefault(costing, {}).update(limits)
    path = scratch / "valhalla.json"
    path.write_text(json.dumps(config))
    return valhalla.Actor(str(path))


def matrix(request: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="branchnet-valhalla-") as scratch:
        return _matrix(_actor(request, Path(scratch)), request)


def _matrix(actor: valhalla.Actor, request: dict[str, Any]) -> dict[str, Any]:
    search_filter = request.get("search_filter") or {}

    def location(lonlat: list[float]) -> dict[str, Any]:
        loc: dict[str, Any] = {"lon": float(lonlat[0]), "lat": float(lonlat[1])}
        if search_filter:
            loc["search_filter"] = search_filter
        return loc

    sources, targets = request["sources"], request["targets"]
    target_locs = [location(t) for t in targets]
    batch = min(len(sources), max(1, int(request.get("max_pairs", 10**9)) // max(1, len(targets))))
    rows: list[list[float | None]] = []
    distances: list[list[float | None]] = []
    requests = 0
    start = 0
    while start < len(sources):
        chunk = sources[start : start + batch]
        body = {
            "sources": [location(s) for s in chunk],
            "targets": target_locs,
            "costing": request.get("costing", "auto"),
            "verbose": False,
        }
        try:
            reply = actor.matrix(body)
        except valhalla.ValhallaError as err:
            code = getattr(err, "code", None)
            if code in LIMIT_CODES and len(chunk) > 1:
                batch = max(1, len(chunk) // 2)
                print(f"limit hit ({err}); {batch} sources a request", file=sys.stderr)
                continue
            raise
        requests += 1
        rows.extend(_durations(reply, len(chunk), len(targets)))
        distances.extend(_durations(reply, len(chunk), len(targets), "distances"))
        start += len(chunk)
    return {"durations": rows, "distances_km": distances, "requests": requests}


def main() -> int:
    request = json.load(sys.stdin)
    action = request.get("action")
    if action == "config":
        reply = write_config(request)
    elif action == "matrix":
        reply = matrix(request)
    else:
        print(f"unknown action {action!r}", file=sys.stderr)
        return 2
    json.dump(reply, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
