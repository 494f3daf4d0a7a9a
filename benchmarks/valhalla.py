"""Valhalla as a reference router for the benchmarks: car travel times from an .osm.pbf, for comparison with ours.

Benchmarks use it to check ``geodata.matrix.travel_time_matrix`` against an independent, widely used engine built
from the same OpenStreetMap extract: build (or reuse) Valhalla's routing tiles, then ask for a sources × targets
table of seconds.

Why a side venv: Valhalla ships on PyPI as ``pyvalhalla``, whose wheels need Python >= 3.12, while branchnet runs
on 3.11. So this module never imports ``valhalla``. ``ensure_venv`` makes a Python 3.12 venv under
``ROOT/venv`` with a pinned ``pyvalhalla``; the tile build runs the ``valhalla_build_tiles`` executable bundled in
that wheel; and each matrix runs ``benchmarks/_valhalla_worker.py`` (standard library + ``valhalla`` only) in that
venv, with JSON on stdin and stdout. Nothing here needs the network once the venv exists.

Layout under ``ROOT`` (default ``var/valhalla``, git-ignored)::

    venv/                            Python 3.12 + pyvalhalla
    tiles-<sha256 of the pbf, 16 hex>/
        valhalla.json                the config the tiles were built with
        build.log                    valhalla_build_tiles' output
        branchnet-source.json        {"pbf": ..., "sha256": ...}, written last: its presence marks a complete build

Snapping: every location carries ``SEARCH_FILTER`` (``min_road_class: residential``), so a point snaps to a public
road of class residential or above, never to a track, driveway or other service road (Valhalla's classes, highest
first: motorway, trunk, primary, secondary, tertiary, unclassified, residential, service_other).

Limits: Valhalla refuses a matrix over ``service_limits.<costing>.max_matrix_location_pairs`` (2,500 by default)
or wider than ``max_matrix_distance`` (400 km for auto). The config raises them to ``MAX_MATRIX_PAIRS`` and
``MAX_MATRIX_DISTANCE_M``; the worker sends at most ``MAX_MATRIX_PAIRS`` pairs a request and halves its batch of
sources if Valhalla still answers with a limit error.

Usage: ``python -m benchmarks.valhalla [--pbf FILE.osm.pbf] [--root var/valhalla] [--random 300x4]``
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_ROOT = REPO / "var" / "valhalla"
WORKER = Path(__file__).resolve().with_name("_valhalla_worker.py")

PYVALHALLA_VERSION = "3.9.1"
STAMP = "branchnet-source.json"
SEARCH_FILTER: dict[str, Any] = {"min_road_class": "residential"}
MAX_MATRIX_PAIRS = 250_000
MAX_MATRIX_DISTANCE_M = 2_000_000.0
COSTINGS = ("auto", "bicycle", "pedestrian", "truck", "taxi", "bus", "motor_scooter", "motorcycle")

# Oakham and Uppingham, Rutland's two towns, about 10 km apart by road.
SMOKE_PLACES = {"Oakham": (-0.7276, 52.6705), "Uppingham": (-0.7235, 52.5878)}
RUTLAND_BBOX = (-0.83, 52.52, -0.43, 52.76)  # lon_min, lat_min, lon_max, lat_max

Progress = Callable[[str], None]


class ValhallaWorkerError(RuntimeError):
    """The side venv's worker or a Valhalla executable failed; the message carries its stderr."""


def _limits() -> dict[str, dict[str, float]]:
    return {
        c: {"max_matrix_location_pairs": MAX_MATRIX_PAIRS, "max_matrix_distance": MAX_MATRIX_DISTANCE_M}
        for c in COSTINGS
    }


def _python_version(exe: str) -> tuple[int, int] | None:
    """The (major, minor) of an interpreter, or None when it does not run (e.g. a pyenv shim of another version)."""
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python312() -> str:
    """Find a Python 3.12 interpreter: ``$BRANCHNET_PYTHON312``, ``python3.12`` on PATH, or pyenv's 3.12.x."""
    env = os.environ.get("BRANCHNET_PYTHON312")
    candidates = [env] if env else []
    on_path = shutil.which("python3.12")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.12.*/bin/python3.12"), reverse=True)
    for exe in candidates:
        if _python_version(exe) == (3, 12):
            return exe
    raise RuntimeError(
        "python3.12 is missing: pyvalhalla has wheels only for Python >= 3.12, and none of "
        f"{candidates or ['$BRANCHNET_PYTHON312', 'python3.12 on PATH', f'{pyenv_root}/versions/3.12.*']} "
        "runs as Python 3.12. Install it (e.g. `pyenv install 3.12`) or set BRANCHNET_PYTHON312 to its path."
    )


def _venv_python(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def _venv_ok(python: Path) -> bool:
    if not python.exists():
        return False
    out = subprocess.run(
        [str(python), "-I", "-c", "import valhalla; print(valhalla.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.returncode == 0 and out.stdout.strip().split("-")[0] == PYVALHALLA_VERSION


def ensure_venv(root: Path = DEFAULT_ROOT, *, progress: Progress | None = None) -> Path:
    """Create ``root/venv`` with Python 3.12 and ``pyvalhalla==PYVALHALLA_VERSION`` once; return its python.

    A venv that already imports the pinned pyvalhalla is reused as it is. Raises ``RuntimeError`` naming the
    missing interpreter when no Python 3.12 is found, and ``ValhallaWorkerError`` with pip's output when the
    install fails (the registry must be reachable the first time only).
    """
    python = _venv_python(Path(root))
    if _venv_ok(python):
        return python
    base = find_python312()
    venv = python.parent.parent
    if progress:
        progress(f"creating {venv} with {base} and pyvalhalla=={PYVALHALLA_VERSION}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    # --clear: a venv that exists but fails the check is a half-made one; start it again
    _run([base, "-m", "venv", "--clear", str(venv)], what="python3.12 -m venv", timeout=600)
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", f"pyvalhalla=={PYVALHALLA_VERSION}"],
        what="pip install pyvalhalla",
        timeout=1800,
    )
    if not _venv_ok(python):
        raise ValhallaWorkerError(f"{venv}: pyvalhalla=={PYVALHALLA_VERSION} installed but `import valhalla` fails")
    return python


def _run(cmd: list[str], *, what: str, timeout: float, stdin: str | None = None) -> str:
    """Run a command; return its stdout, or raise ValhallaWorkerError with the tail of its stderr."""
    try:
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise ValhallaWorkerError(f"{what} timed out after {timeout:g} s: {' '.join(cmd)}") from err
    if out.returncode != 0:
        tail = "\n".join(out.stderr.strip().splitlines()[-40:])
        raise ValhallaWorkerError(f"{what} failed (exit {out.returncode}): {' '.join(cmd)}\n{tail}")
    return out.stdout


def _worker(python: Path, request: dict[str, Any], *, what: str, timeout: float) -> dict[str, Any]:
    # -I: ignore PYTHON* variables and the user site, so that only the venv's packages are seen
    stdout = _run([str(python), "-I", str(WORKER)], what=what, timeout=timeout, stdin=json.dumps(request))
    reply: dict[str, Any] = json.loads(stdout)
    return reply


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tile_dir_for(pbf: Path, root: Path = DEFAULT_ROOT, *, sha256: str | None = None) -> Path:
    """The tile folder of an extract: ``root/tiles-<first 16 hex of its sha256>``."""
    return Path(root) / f"tiles-{(sha256 or sha256_file(pbf))[:16]}"


def check_tiles(tile_dir: Path, pbf: Path, *, sha256: str | None = None) -> dict[str, Any]:
    """Check that ``tile_dir`` holds a complete tile build of ``pbf``; return its stamp.

    Raises ``ValueError`` naming the folder (and the stamp field) when the folder is missing, when it has no
    readable ``branchnet-source.json`` (a build that did not finish), or when its ``sha256`` is another extract's.
    """
    tile_dir = Path(tile_dir)
    stamp_path = tile_dir / STAMP
    if not tile_dir.is_dir():
        raise ValueError(f"Valhalla tile folder {tile_dir} does not exist; build it with build_tiles({pbf})")
    try:
        stamp = json.loads(stamp_path.read_text())
    except FileNotFoundError:
        raise ValueError(
            f"Valhalla tile folder {tile_dir} has no {STAMP}: its build did not finish; delete it and build again"
        ) from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{stamp_path}: not valid JSON ({err})") from None
    if not isinstance(stamp, dict) or not isinstance(stamp.get("sha256"), str):
        raise ValueError(f"{stamp_path}: field 'sha256' is missing")
    want = sha256 or sha256_file(pbf)
    if stamp["sha256"] != want:
        raise ValueError(
            f"Valhalla tile folder {tile_dir} was built from another extract: {STAMP} field 'sha256' is "
            f"{stamp['sha256'][:16]}… (pbf {stamp.get('pbf')!r}), but {pbf} has {want[:16]}…"
        )
    return stamp


def build_tiles(
    pbf: Path,
    root: Path = DEFAULT_ROOT,
    progress: Progress | None = None,
    *,
    concurrency: int = 1,
    timeout: float = 3600.0,
) -> Path:
    """Build Valhalla's routing tiles for ``pbf`` into ``root/tiles-<sha>/`` (or reuse a complete build); return it.

    Runs ``valhalla_build_tiles`` from the side venv with ``concurrency`` threads, offline: no admin, timezone,
    elevation or traffic data, so country-specific access defaults and time zones are Valhalla's fallbacks. The
    stamp ``branchnet-source.json`` is written last; a folder without it is an unfinished build and is redone.
    ``progress`` receives one line a stage; Valhalla's own log goes to ``build.log`` in the tile folder.
    """
    pbf = Path(pbf).resolve()
    if not pbf.is_file():
        raise FileNotFoundError(f"OSM extract {pbf} does not exist")
    sha = sha256_file(pbf)
    tile_dir = tile_dir_for(pbf, root, sha256=sha)
    if (tile_dir / STAMP).exists():
        check_tiles(tile_dir, pbf, sha256=sha)
        return tile_dir
    python = ensure_venv(Path(root), progress=progress)
    if tile_dir.exists():
        shutil.rmtree(tile_dir)
    tile_dir.mkdir(parents=True)
    reply = _worker(
        python,
        {"action": "config", "tile_dir": str(tile_dir), "concurrency": concurrency, "limits": _limits()},
        what="Valhalla config",
        timeout=120,
    )
    exe = str(Path(reply["bin"]) / "valhalla_build_tiles")
    cmd = [exe, "-c", reply["config"], str(pbf)]
    if progress:
        progress(f"building Valhalla tiles of {pbf.name} into {tile_dir}")
    t0 = time.perf_counter()
    log_path = tile_dir / "build.log"
    with open(log_path, "w") as log:
        # cwd: older builds leave their intermediate .bin files in the working directory
        proc = subprocess.Popen(cmd, cwd=tile_dir, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ValhallaWorkerError(
                f"valhalla_build_tiles ran over {timeout:g} s for {pbf}; see {log_path}"
            ) from None
    if code != 0:
        tail = "\n".join(log_path.read_text().splitlines()[-40:])
        raise ValhallaWorkerError(f"valhalla_build_tiles failed (exit {code}) for {pbf}; see {log_path}:\n{tail}")
    seconds = time.perf_counter() - t0
    stamp = {"pbf": str(pbf), "sha256": sha, "pyvalhalla": PYVALHALLA_VERSION, "build_s": round(seconds, 1)}
    (tile_dir / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
    if progress:
        progress(f"built tiles in {seconds:.1f} s")
    return tile_dir


def _lonlats(points: Sequence[tuple[float, float]] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(points, dtype=float)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"{name}: expected a sequence of (lon, lat) pairs, got shape {arr.shape}")
    bad = ~np.isfinite(arr).all(axis=1) | (np.abs(arr[:, 0]) > 180) | (np.abs(arr[:, 1]) > 90)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}[{i}] = {tuple(arr[i])} is not a (lon, lat) in degrees")
    return arr


def matrix(
    pbf: Path,
    sources: Sequence[tuple[float, float]] | np.ndarray,
    targets: Sequence[tuple[float, float]] | np.ndarray,
    root: Path = DEFAULT_ROOT,
    costing: str = "auto",
    *,
    search_filter: dict[str, Any] | None = None,
    timeout: float = 600.0,
    progress: Progress | None = None,
    distances: bool = False,
) -> Any:
    """Travel times in seconds from each source to each target by Valhalla, shape (len(sources), len(targets)).

    Points are (lon, lat) in WGS84 degrees, snapped with ``search_filter`` (default ``SEARCH_FILTER``: public
    roads of class residential or above). A pair with no route is ``np.inf``. Builds the side venv and the tiles
    on first use. Raises ``ValhallaWorkerError`` with the worker's stderr when it fails or runs over ``timeout``
    seconds (a point that snaps to no road fails the whole call: Valhalla answers "No suitable edges").
    With ``distances``, returns ``(seconds, metres)``.
    """
    src, dst = _lonlats(sources, "sources"), _lonlats(targets, "targets")
    if len(src) == 0 or len(dst) == 0:
        empty = np.zeros((len(src), len(dst)))
        return (empty, empty.copy()) if distances else empty
    tile_dir = build_tiles(pbf, root, progress)
    python = ensure_venv(Path(root), progress=progress)
    reply = _worker(
        python,
        {
            "action": "matrix",
            "config": str(tile_dir / "valhalla.json"),
            "tile_dir": str(tile_dir),
            "limits": _limits(),
            "sources": src.tolist(),
            "targets": dst.tolist(),
            "costing": costing,
            "search_filter": SEARCH_FILTER if search_filter is None else search_filter,
            "max_pairs": MAX_MATRIX_PAIRS,
        },
        what=f"Valhalla matrix {len(src)}x{len(dst)}",
        timeout=timeout,
    )
    rows = reply["durations"]
    out = np.array([[np.inf if t is None else float(t) for t in row] for row in rows], dtype=float)
    if out.shape != (len(src), len(dst)):
        raise ValhallaWorkerError(f"Valhalla matrix: expected shape {(len(src), len(dst))}, got {out.shape}")
    if distances:
        km = reply.get("distances_km") or []
        metres = np.array([[np.inf if d is None else 1000.0 * float(d) for d in row] for row in km], dtype=float)
        return out, metres.reshape(out.shape)
    return out


def _default_pbf() -> Path | None:
    from benchmarks._common import shared_dir

    shared = shared_dir()
    found = sorted((shared / "data" / "rutland").glob("*.osm.pbf")) if shared else []
    return found[0] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.valhalla", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pbf", type=Path, default=None, help="OSM extract (default: ../shared/data/rutland/*.pbf)")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="venv and tiles folder")
    parser.add_argument("--costing", default="auto")
    parser.add_argument("--random", default=None, metavar="NxM", help="also time an NxM matrix of random points")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pbf = args.pbf or _default_pbf()
    if pbf is None:
        parser.error("no --pbf given and no ../shared/data/rutland/*.osm.pbf found")

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    ensure_venv(args.root, progress=progress)
    t_venv = time.perf_counter() - t0
    t0 = time.perf_counter()
    tile_dir = build_tiles(pbf, args.root, progress)
    t_tiles = time.perf_counter() - t0
    print(f"venv {t_venv:.1f} s, tiles {t_tiles:.1f} s: {tile_dir}")

    names = list(SMOKE_PLACES)
    points = [SMOKE_PLACES[n] for n in names]
    t0 = time.perf_counter()
    table = matrix(pbf, points, points, args.root, args.costing)
    t_smoke = time.perf_counter() - t0
    print(f"{args.costing} travel time, minutes ({t_smoke:.2f} s):")
    print(" " * 12 + "".join(f"{n:>12}" for n in names))
    for name, row in zip(names, table, strict=True):
        print(f"{name:<12}" + "".join(f"{t / 60:12.1f}" for t in row))

    if args.random:
        n, m = (int(x) for x in args.random.lower().split("x"))
        rng = np.random.default_rng(args.seed)
        lon0, lat0, lon1, lat1 = RUTLAND_BBOX
        src = np.column_stack([rng.uniform(lon0, lon1, n), rng.uniform(lat0, lat1, n)])
        dst = np.column_stack([rng.uniform(lon0, lon1, m), rng.uniform(lat0, lat1, m)])
        t0 = time.perf_counter()
        rand = matrix(pbf, src, dst, args.root, args.costing)
        seconds = time.perf_counter() - t0
        finite = rand[np.isfinite(rand)]
        print(
            f"random {n}x{m} in {seconds:.2f} s: {np.isinf(rand).sum()} unreachable, "
            f"median {np.median(finite) / 60:.1f} min, max {finite.max() / 60:.1f} min"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
