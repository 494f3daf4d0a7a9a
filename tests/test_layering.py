"""The layering, for every module: optimizer speaks numbers and ids only, geodata knows nothing of the others.

Each module is imported alone in a fresh process (forked from an interpreter that has imported nothing of the
project), and the modules it pulled in are checked:

- ``optimizer.*``: no geopandas, shapely, osmnx, pyproj, FastAPI, pydantic, and nothing of geodata or service;
- ``geodata.*``: nothing of optimizer or service, no FastAPI.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BANNED = {
    "optimizer": ("geopandas", "shapely", "osmnx", "pyproj", "fastapi", "pydantic", "geodata", "service"),
    "geodata": ("optimizer", "service", "fastapi"),
}
#: Allowed third-party libraries imported once before forking, so each child does not import them again.
PRELOAD = {
    "optimizer": ("numpy", "scipy.sparse", "scipy.optimize", "scipy.sparse.csgraph", "ortools.constraint_solver"),
    "geodata": ("numpy", "scipy.spatial", "pandas", "geopandas", "networkx", "osmnx", "pyproj", "pyogrio"),
}

# Runs in a fresh interpreter: fork once per module, import it in the child, report what it pulled in.
_PROBE = """
import json, os, sys
banned = json.loads(sys.argv[1])
for lib in json.loads(sys.argv[3]):
    __import__(lib)
report = {}
for name in json.loads(sys.argv[2]):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            __import__(name)
            found = sorted({m.split(".")[0] for m in sys.modules} & set(banned[name.split(".")[0]]))
            msg = json.dumps(found)
        except Exception as exc:
            msg = json.dumps([f"import failed: {type(exc).__name__}: {exc}"])
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.waitpid(pid, 0)
    report[name] = json.loads(data)
print(json.dumps(report))
"""


def modules(package: str) -> list[str]:
    """Every module of ``package`` (the package itself included), found on disk."""
    path = REPO / package
    names = [package]
    for info in pkgutil.walk_packages([str(path)], prefix=f"{package}."):
        names.append(info.name)
    return sorted(names)


def test_every_package_has_its_modules_found() -> None:
    """The walk finds the modules that must be there (a walk that finds nothing would prove nothing)."""
    opt, geo = modules("optimizer"), modules("geodata")
    assert {"optimizer.planner.search", "optimizer.planner.selection", "optimizer._tours", "optimizer.location"} <= set(
        opt
    )
    assert {"geodata.synthetic.roads", "geodata.libraries_hacked", "geodata.matrix"} <= set(geo)
    assert len(opt) >= 20 and len(geo) >= 25


@pytest.mark.parametrize("package", sorted(BANNED))
def test_every_module_imports_only_what_its_layer_allows(package: str) -> None:
    names = modules(package)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(BANNED), json.dumps(names), json.dumps(PRELOAD[package])],
        capture_output=True, text=True, check=True, cwd=REPO,
    )  # fmt: skip
    report = json.loads(out.stdout)
    assert set(report) == set(names)
    offenders = {name: found for name, found in report.items() if found}
    assert not offenders, offenders
