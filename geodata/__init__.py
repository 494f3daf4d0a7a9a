"""Load, clean and measure: OSM road networks, population, branches, snapping and travel-time matrices.

``geodata`` knows geometry and coordinate reference systems. It hands the optimiser plain arrays and ids.
The names below are imported on first use, so ``import geodata.errors`` (as the service's error table does) does
not load osmnx and GeoPandas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from geodata.matrix import travel_time_matrix
    from geodata.network import SpeedProfile, load_network

__all__ = ["SpeedProfile", "load_network", "travel_time_matrix"]
_WHERE = {"travel_time_matrix": "geodata.matrix", "SpeedProfile": "geodata.network", "load_network": "geodata.network"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'geodata' has no attribute {name!r}")
