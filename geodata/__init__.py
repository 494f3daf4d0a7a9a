"""Load, clean and measure: OSM road networks, population, branches, snapping and travel-time matrices.

``geodata`` knows geometry and coordinate reference systems. It hands the optimiser plain arrays and ids.
"""

from geodata.matrix import travel_time_matrix
from geodata.network import SpeedProfile, load_network

__all__ = ["SpeedProfile", "load_network", "travel_time_matrix"]
