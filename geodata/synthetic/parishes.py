"""Stage 5: census areas (parishes), the former municipalities they make up, and their age groups."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import scipy.sparse as sp
import shapely
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from geodata.synthetic._geometry import uniform_in
from geodata.synthetic.names import Namer
from geodata.synthetic.settlements import Layout

_TOWN_PARISHES: Final = ("Vor Frue", "Sankt Nikolaj", "Sankt Mortens", "Sankt Pauls", "Budolfi", "Sankt Jørgens")


@dataclass(frozen=True)
class Census:
    """Census areas (parishes) in EPSG:25832, in generation order, with the municipality each belongs to."""

    cells: np.ndarray  # polygons, EPSG:25832
    names: list[str]
    municipality: np.ndarray  # town index per area
    tree: cKDTree  # over the generators: nearest generator = area

    def area_of(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the area containing each point (x, y)."""
        return np.asarray(self.tree.query(np.column_stack([x, y]))[1], dtype=np.int64)


def build_census(lay: Layout, parish_min: int, rng: np.random.Generator, namer: Namer) -> Census:
    """Build parishes and assign each to the municipality whose town reaches it first through the parishes."""
    gx: list[float] = []
    gy: list[float] = []
    names: list[str] = []
    central: list[int] = []
    golden = math.pi * (3.0 - math.sqrt(5.0))
    for t in range(lay.n_towns):
        q = max(1, round(int(lay.pop[t]) / 4_000))
        cx, cy, r = float(lay.x[t]), float(lay.y[t]), float(lay.radius[t])
        if q == 1:
            gx.append(cx)
            gy.append(cy)
            names.append(f"{lay.name[t]} Sogn")
            central.append(len(gx) - 1)
            continue
        # Town quarters on a sunflower pattern, shifted so that no quarter boundary runs through the centre.
        rot = rng.uniform(0, 2 * math.pi)
        ox, oy = 0.07 * r * math.cos(rot + 1.0), 0.07 * r * math.sin(rot + 1.0)
        kq = np.arange(q)
        rad = 0.8 * r * np.sqrt((kq + 0.5) / q)
        first = len(gx)
        gx.extend((cx + ox + rad * np.cos(rot + kq * golden)).tolist())
        gy.extend((cy + oy + rad * np.sin(rot + kq * golden)).tolist())
        for m in range(q):
            label = _TOWN_PARISHES[m] if m < len(_TOWN_PARISHES) else f"{namer.place()}"
            names.append(f"{lay.name[t]} {label} Sogn")
        quarters = np.column_stack([gx[first:], gy[first:]])
        central.append(first + int(np.argmin(np.hypot(quarters[:, 0] - cx, quarters[:, 1] - cy))))
    # Every village, and the bigger hamlets, has its own church and parish.
    for s in np.flatnonzero((lay.kind != "town") & (lay.pop >= parish_min)).tolist():
        gx.append(float(lay.x[s]))
        gy.append(float(lay.y[s]))
        names.append(f"{lay.name[s]} Sogn")
    # Rural fill: a parish wherever the nearest church is more than ~2.5 settlement spacings away.
    pts = np.column_stack([lay.x, lay.y])
    nn = cKDTree(pts).query(pts, k=2)[0][:, 1] if len(pts) > 1 else np.array([3_000.0])
    reach = max(3_000.0, 2.5 * float(np.median(nn)))
    samples = uniform_in(lay.region, 8_000, rng)
    d = cKDTree(np.column_stack([gx, gy])).query(samples)[0]
    hamlets = np.flatnonzero((lay.kind == "hamlet") & (lay.pop < parish_min))
    named = set()
    while d.max() > reach:
        k = int(np.argmax(d))
        sx, sy = samples[k]
        if hamlets.size:
            h = hamlets[int(np.argmin(np.hypot(lay.x[hamlets] - sx, lay.y[hamlets] - sy)))]
            if int(h) not in named and math.hypot(lay.x[h] - sx, lay.y[h] - sy) < reach:
                named.add(int(h))
                sx, sy = float(lay.x[h]), float(lay.y[h])
                names.append(f"{lay.name[h]} Sogn")
            else:
                names.append(f"{namer.place()} Sogn")
        else:
            names.append(f"{namer.place()} Sogn")
        gx.append(float(sx))
        gy.append(float(sy))
        d = np.minimum(d, np.hypot(samples[:, 0] - sx, samples[:, 1] - sy))

    gens = np.column_stack([gx, gy])
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(gens), extend_to=lay.region, ordered=True))
    cells = shapely.set_precision(shapely.intersection(cells, lay.region), 0.01)
    tree = shapely.STRtree(cells)
    a, b = tree.query(cells, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    touching = shapely.length(shapely.intersection(cells[a], cells[b])) > 1.0
    a, b = a[touching], b[touching]
    w = np.hypot(gens[a, 0] - gens[b, 0], gens[a, 1] - gens[b, 1])
    graph = sp.coo_matrix((w, (a, b)), shape=(len(gens), len(gens))).tocsr()
    _, _, source = dijkstra(graph, directed=False, indices=np.asarray(central), min_only=True, return_predecessors=True)
    town_of_gen = {g: t for t, g in enumerate(central)}
    municipality = np.array([town_of_gen.get(int(s), -1) for s in source.tolist()], dtype=np.int64)
    if (municipality < 0).any():  # an island of parishes cut off by the boundary: give it to the nearest town
        lost = np.flatnonzero(municipality < 0)
        municipality[lost] = cKDTree(np.column_stack([lay.x[: lay.n_towns], lay.y[: lay.n_towns]])).query(gens[lost])[1]
    return Census(cells, names, municipality, cKDTree(gens))


def age_groups(
    pop: np.ndarray, urban: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw integer age groups per area; the 65+ share rises from ~16% in towns to ~26% in the countryside."""
    n = pop.size
    old = np.clip(0.16 + 0.10 * (1.0 - urban) + rng.normal(0.0, 0.02, n), 0.08, 0.38)
    young = np.clip(0.205 - 0.01 * (1.0 - urban) + rng.normal(0.0, 0.02, n), 0.10, 0.30)
    out = np.zeros((n, 3), dtype=np.int64)
    for k in range(n):
        out[k] = rng.multinomial(int(pop[k]), [young[k], 1.0 - young[k] - old[k], old[k]])
    return out[:, 0], out[:, 1], out[:, 2]
