"""What to generate: :class:`SyntheticSpec`, the named :data:`PRESETS` and the coordinate reference systems.

A spec validates itself on construction, so every later stage can rely on its bounds (for example that the
population leaves room for the main towns, or that villages stay smaller than towns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from geodata.errors import InvalidValueError

#: Projected CRS in which everything is generated (ETRS89 / UTM zone 32N, metres).
CRS: Final = "EPSG:25832"
#: CRS of every output file.
OUTPUT_CRS: Final = "EPSG:4326"


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate: the size and character of a synthetic merged municipality.

    Parameters
    ----------
    n_municipalities
        Number of former municipalities (each with a main town and a main library), 2-400.
    population
        Target total population; the generated total equals it exactly.
    buildings
        Emit building footprints. ``False`` keeps dwellings internally (for census counts) and land use, but
        writes no footprints, for large presets.
    density_per_km2
        Residents per km² of the whole region, which sets its area (inland Jutland: 50-90).
    urban_share
        Target share of residents living in the main towns (before clipping to ``town_population``).
    farm_share
        Target share of residents living on scattered farms.
    town_population
        Bounds (inclusive) on a main town's population.
    zipf_exponent
        Rank-size exponent :math:`b` of villages and hamlets within a former municipality.
    min_settlement
        Population of the smallest hamlet.
    village_threshold
        Settlements at least this large are villages; smaller ones are hamlets.
    village_max
        Largest village; villages also stay below 60% of their main town.
    persons_per_building
        Mean residents per dwelling building.
    node_spacing_m
        Range of distances (m) between consecutive nodes of rural roads.
    centre
        (lon, lat) of the region's centre; it must lie in UTM zone 32N (lon 3-15, lat 45-70).
    name
        Preset name, recorded in the README.
    """

    n_municipalities: int
    population: int
    buildings: bool = True
    density_per_km2: float = 70.0
    urban_share: float = 0.5
    farm_share: float = 0.1
    town_population: tuple[int, int] = (2_000, 15_000)
    zipf_exponent: float = 1.25
    min_settlement: int = 30
    village_threshold: int = 200
    village_max: int = 1_500
    persons_per_building: float = 2.2
    node_spacing_m: tuple[float, float] = (100.0, 250.0)
    centre: tuple[float, float] = (9.5, 56.25)
    name: str = "custom"

    def __post_init__(self) -> None:
        if not 2 <= self.n_municipalities <= 400:
            raise InvalidValueError(f"n_municipalities must lie in [2, 400], got {self.n_municipalities}")
        lo, hi = self.town_population
        if not 100 <= lo <= hi <= 5_000_000:
            raise InvalidValueError(
                f"town_population must satisfy 100 <= low <= high <= 5e6, got {self.town_population}"
            )
        if not 1_000 <= self.population <= 20_000_000:
            raise InvalidValueError(f"population must lie in [1000, 2e7], got {self.population}")
        if self.population < 1.3 * self.n_municipalities * lo:
            raise InvalidValueError(
                f"population {self.population} is too small for {self.n_municipalities} main towns of at least "
                f"{lo} residents (need at least {math.ceil(1.3 * self.n_municipalities * lo)})"
            )
        if not 5.0 <= self.density_per_km2 <= 5_000.0:
            raise InvalidValueError(f"density_per_km2 must lie in [5, 5000], got {self.density_per_km2}")
        if not 0.05 <= self.urban_share <= 0.95:
            raise InvalidValueError(f"urban_share must lie in [0.05, 0.95], got {self.urban_share}")
        if not 0.0 <= self.farm_share <= 0.5:
            raise InvalidValueError(f"farm_share must lie in [0, 0.5], got {self.farm_share}")
        if self.urban_share + self.farm_share > 0.97:
            raise InvalidValueError("farm_share: urban_share + farm_share must leave at least 3% for villages")
        if not 0.5 <= self.zipf_exponent <= 3.0:
            raise InvalidValueError(f"zipf_exponent must lie in [0.5, 3], got {self.zipf_exponent}")
        if not 5 <= self.min_settlement <= 1_000:
            raise InvalidValueError(f"min_settlement must lie in [5, 1000], got {self.min_settlement}")
        if not self.min_settlement < self.village_threshold <= lo:
            raise InvalidValueError(
                f"village_threshold must lie in (min_settlement, town_population[0]], got {self.village_threshold}"
            )
        if not self.village_threshold < self.village_max <= hi:
            raise InvalidValueError(
                f"village_max must lie in (village_threshold, town_population[1]], got {self.village_max}"
            )
        if not 1.0 <= self.persons_per_building <= 10.0:
            raise InvalidValueError(f"persons_per_building must lie in [1, 10], got {self.persons_per_building}")
        s_lo, s_hi = self.node_spacing_m
        if not 20.0 <= s_lo <= s_hi <= 2_000.0:
            raise InvalidValueError(f"node_spacing_m must satisfy 20 <= low <= high <= 2000, got {self.node_spacing_m}")
        lon, lat = self.centre
        if not (3.0 <= lon <= 15.0 and 45.0 <= lat <= 70.0):
            raise InvalidValueError(f"centre must lie in UTM zone 32N (lon 3-15, lat 45-70), got {self.centre}")


#: Named specifications. ``toy`` is for unit tests, ``demo`` for ``make demo``, the rest for scale benchmarks.
PRESETS: Mapping[str, SyntheticSpec] = MappingProxyType(
    {
        "toy": SyntheticSpec(3, 10_000, urban_share=0.6, farm_share=0.06, zipf_exponent=1.4, name="toy"),
        "small": SyntheticSpec(4, 25_000, name="small"),
        "demo": SyntheticSpec(5, 60_000, urban_share=0.45, name="demo"),
        "county": SyntheticSpec(12, 300_000, density_per_km2=90.0, town_population=(3_000, 60_000), name="county"),
        "national": SyntheticSpec(
            98,
            5_900_000,
            buildings=False,
            density_per_km2=137.0,
            urban_share=0.6,
            farm_share=0.08,
            town_population=(5_000, 600_000),
            village_max=8_000,
            name="national",
        ),
    }
)


def resolve_spec(spec: SyntheticSpec | str) -> SyntheticSpec:
    """Return ``spec`` itself, or the preset it names.

    Raises
    ------
    ValueError
        For an unknown preset name.
    """
    if isinstance(spec, SyntheticSpec):
        return spec
    if spec not in PRESETS:
        raise InvalidValueError(f"unknown preset {spec!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[spec]
