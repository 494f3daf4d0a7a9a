"""Synthetic merged municipalities: a seeded, realistic stand-in for a Danish region after the 2007 reform.

:func:`generate_region` builds, in EPSG:25832 metres, a region of several former municipalities merged into one,
and converts it to lon/lat for output. It is the embedded default region of ``make demo`` and the input of scale
benchmarks, so it must look and behave like real data while being exactly reproducible: everything is drawn from
one ``numpy.random.default_rng(seed)`` (split into independent streams per stage), nothing depends on hash order,
and the same preset and seed give byte-identical files.

The construction, stage by stage:

1. **Region and towns.** A slightly irregular convex polygon whose area is ``population / density_per_km2``.
   One main town per former municipality, spread by Lloyd relaxation; the town nearest the centre is the biggest,
   the merged seat. Town sizes follow a rank-size law clipped to ``town_population``.
2. **Villages and hamlets.** The rest of the non-farm population lives in villages and hamlets whose sizes follow
   a Zipf law :math:`s_k = s_1 k^{-b}` per former municipality (a few villages of 500-1,500, many hamlets of
   30-200), placed by dart throwing with a minimum spacing of 1.3-2 km plus their built-up radii.
3. **Roads.** Each settlement gets an irregular grid of ``residential`` streets scaled to its population. Between
   settlements, every road is an edge of the Gabriel graph of the centres: the Gabriel shortest paths along the
   towns' minimum spanning tree (and a few extra town pairs) are ``primary``/``secondary``, each village's path
   to its town is ``tertiary``, and the rest of the relative-neighbourhood graph plus some loops is
   ``unclassified``. A Gabriel graph is planar; a final planarisation pass still inserts a shared node wherever
   two drawn ways cross. Through roads continue into town along the street grid with ``maxspeed=50``; a few
   streets of the seat are one-way, kept only if the grid stays strongly connected. Footways, tracks and farm
   driveways (``service``) are dead ends that a drive network must drop.
4. **Dwellings.** About one building per ``persons_per_building`` residents, on plots along the streets (nearest
   the centre first) and at farms beside the rural roads; each dwelling holds an integer number of residents.
5. **Census areas (parishes).** Voronoi cells of the towns' quarters, the villages and a few rural fill points,
   clipped to the region. Each parish joins the municipality whose town reaches it first through the parish
   adjacency graph (Dijkstra), so municipalities are contiguous unions of whole parishes. A parish's population
   is the sum of the residents of the dwellings inside it; its age groups are drawn with a 65+ share that grows
   with its rural share.
6. **Libraries.** A main library in each main town (35-50 staffed hours a week) and one or two small branches
   (8-20 hours) in the largest villages of each former municipality.

:func:`synthetic_road_graph` reuses stages 1-3 at a scale chosen for a requested node count and returns an
osmnx-style drive graph directly, for matrix benchmarks.

Modules
-------
The modules follow the stages. Only the names re-exported here are the package's interface; the modules are its
internals.

- :mod:`~geodata.synthetic.spec`: :class:`SyntheticSpec`, :data:`PRESETS` and the coordinate reference systems;
- :mod:`~geodata.synthetic.names`: Danish-sounding place and street names;
- :mod:`~geodata.synthetic.settlements`: stages 1-2, the region polygon, towns, villages and hamlets;
- :mod:`~geodata.synthetic.ways`: the road builder (nodes, segments and tags), planarisation and OSM ways;
- :mod:`~geodata.synthetic.streets`: stage 3 inside settlements, street grids, through roads, one-way streets and
  footways;
- :mod:`~geodata.synthetic.roads`: stage 3 between settlements, the road hierarchy, tracks and industrial roads;
- :mod:`~geodata.synthetic.buildings`: stage 4, dwellings, farms, shops, schools, industry and land use;
- :mod:`~geodata.synthetic.parishes`: stage 5, parishes, their municipalities and age groups;
- :mod:`~geodata.synthetic.branches`: stage 6, libraries with staffed hours and closure costs;
- :mod:`~geodata.synthetic.region`: :class:`SyntheticRegion` and :func:`generate_region`, which runs the stages;
- :mod:`~geodata.synthetic.writer`: :func:`write_region` (OSM XML, GeoJSON, CSV and a README);
- :mod:`~geodata.synthetic.road_graph`: :func:`synthetic_road_graph`;
- :mod:`~geodata.synthetic._geometry`: sampling and reprojection shared by the stages.
"""

from geodata.synthetic.branches import HOURS_COLUMNS
from geodata.synthetic.region import OsmRecord, SyntheticRegion, generate_region
from geodata.synthetic.road_graph import synthetic_road_graph
from geodata.synthetic.spec import CRS, OUTPUT_CRS, PRESETS, SyntheticSpec
from geodata.synthetic.writer import write_region

__all__ = [
    "CRS",
    "HOURS_COLUMNS",
    "OUTPUT_CRS",
    "PRESETS",
    "OsmRecord",
    "SyntheticRegion",
    "SyntheticSpec",
    "generate_region",
    "synthetic_road_graph",
    "write_region",
]
