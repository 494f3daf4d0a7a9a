"""optimizer speaks numbers and ids only: importing it must not pull in geospatial or web libraries."""

from __future__ import annotations

import subprocess
import sys


def test_optimizer_imports_no_geospatial_or_web_library() -> None:
    code = (
        "import sys, optimizer, optimizer.location, optimizer.kpis, optimizer.params, optimizer.errors\n"
        "banned = [m for m in ('geopandas', 'osmnx', 'shapely', 'fastapi', 'pydantic', 'pyproj', 'geodata', 'service')"
        " if m in sys.modules]\n"
        "print(','.join(banned))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"optimizer imported {out.stdout.strip()}"
