"""Population as demand points: read points or census areas, and spread areas dasymetrically onto homes.

A census area's population is distributed onto the residential buildings of the same OSM extract, weighted by
footprint area; residential land use with no mapped buildings gets sample points; an area with neither falls back
to area-weighted sample points over its polygon. Integer people are allocated with the largest-remainder method,
per age group, so every area's total, and each of its age-group totals, is preserved exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata._io import find_column, read_features, read_table
from geodata._osm import NON_RESIDENTIAL_LANDUSE, RESIDENTIAL_LANDUSE, OsmExtract
from geodata.errors import AssumptionWarning, InvalidValueError, JoinKeyError, MissingFieldError

AGE_GROUPS = ("age_0_17", "age_18_64", "age_65_plus")
_AGE_ALIASES = {
    "age_0_17": ("age_0_17", "children", "age_0-17", "0-17", "0_17", "under_18"),
    "age_18_64": ("age_18_64", "adults", "age_18-64", "18-64", "18_64"),
    "age_65_plus": ("age_65_plus", "older", "65+", "age_65+", "65_plus", "over_65", "elderly"),
}
POPULATION_NAMES = ("population", "pop", "total", "persons", "residents", "inhabitants", "people", "count")
RESIDENTIAL_BUILDINGS = frozenset(
    {
        "house", "detached", "semidetached_house", "terrace", "apartments", "residential", "bungalow",
        "dormitory", "farm", "cabin", "static_caravan", "houseboat", "yes",
    }
)  # fmt: skip
#: Share of residential land covered by homes, to weigh land-use sample points against building footprints.
LANDUSE_BUILT_SHARE = 0.15
#: Mean household size, to judge whether OSM maps an area's homes completely.
PERSONS_PER_HOME = 2.3
#: Most people one row may hold: larger counts are a unit or parsing error (and would overflow integer people).
MAX_PERSONS = 1e9
Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class AgeShares:
    """Default shares of each age group, applied where a source gives totals only."""

    age_0_17: float = 0.20
    age_18_64: float = 0.60
    age_65_plus: float = 0.20

    def __post_init__(self) -> None:
        shares = self.as_array()
        if (shares < 0).any() or abs(shares.sum() - 1) > 1e-9:
            raise InvalidValueError(f"age shares must be non-negative and sum to 1, got {shares.tolist()}")

    def as_array(self) -> np.ndarray:
        return np.array([self.age_0_17, self.age_18_64, self.age_65_plus])


@dataclass(frozen=True)
class Population:
    """Demand points and the areas they came from.

    ``points`` (EPSG:4326): ``point_id``, ``area_id``, ``group``, ``population`` and the three age-group columns
    (integers for area sources), and ``method`` (``building``, ``landuse``, ``area`` or ``point``).
    ``areas`` (EPSG:4326): ``area_id``, ``group``, ``population``, age groups and ``method``; empty for point
    sources. ``notes`` lists every assumption applied.
    """

    points: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def total(self) -> float:
        return float(self.points["population"].sum())


def largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    """Split a non-negative integer ``total`` in proportion to ``weights``, exactly (Hamilton's method).

    Ties in the remainders go to the lower index, so the split is deterministic.
    """
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or (w < 0).any() or not np.isfinite(w).all():
        raise InvalidValueError("largest_remainder needs a non-negative total and finite non-negative weights")
    if len(w) == 0:
        if total:
            raise InvalidValueError(f"cannot place {total} people on no points")
        return np.zeros(0, dtype=np.int64)
    if w.sum() <= 0:
        w = np.ones_like(w)
    quota = total * w / w.sum()
    base = np.floor(quota).astype(np.int64)
    short = int(total - base.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(w)), -(quota - base)))
        base[order[:short]] += 1
    return np.asarray(base, dtype=np.int64)


def _population_column(df: pd.DataFrame, path: Path, explicit: str | None) -> str:
    if explicit is not None:
        if explicit not in df.columns:
            raise MissingFieldError(
                f"{path}: population field {explicit!r} not found; columns are {', '.join(map(str, df.columns))}"
            )
        col = explicit
    else:
        found = find_column(df.columns, POPULATION_NAMES)
        if found is None:
            raise MissingFieldError(
                f"{path}: no population column (looked for {', '.join(POPULATION_NAMES)}); columns are "
                f"{', '.join(str(c) for c in df.columns if c != 'geometry')}. Name it with --population-field"
            )
        col = found
    values = pd.to_numeric(df[col], errors="coerce")
    if values.isna().all():
        raise MissingFieldError(f"{path}: field {col!r} holds no numbers, so it is not a usable population column")
    return col


def _check_values(values: pd.Series, rows: pd.Series, path: Path, col: str) -> np.ndarray:
    """The counts of field ``col`` as floats; :class:`InvalidValueError` naming the first bad row otherwise.

    ``rows`` labels each row in messages (``row 'E01'`` by its id, else ``row 3`` / ``feature 2``).
    """
    num = pd.to_numeric(values, errors="coerce")
    finite = np.isfinite(num.fillna(0).to_numpy(dtype=np.float64))
    bad = num.isna() | (num < 0) | ~finite | (num > MAX_PERSONS)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raw, x = values.iloc[i], num.iloc[i]
        shown = "empty" if raw is None or (isinstance(raw, float) and np.isnan(raw)) else repr(_plain(raw))
        if pd.isna(x) or not np.isfinite(x):
            why = "not a number of people" if shown != "empty" else "a population count is needed"
        elif x < 0:
            why = "population must be a number >= 0"
        else:
            why = f"more than {MAX_PERSONS:.0e} people in one row is not a population count (check the field)"
        more = f" ({int(bad.sum())} bad rows in all)" if bad.sum() > 1 else ""
        raise InvalidValueError(f"{path}: {rows.iloc[i]}: field {col!r} is {shown}; {why}{more}")
    return num.to_numpy(dtype=np.float64)


def _plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (so messages say -5, not np.int32(-5))."""
    return value.item() if isinstance(value, np.generic) else value


def _age_columns(df: pd.DataFrame) -> dict[str, str] | None:
    found = {g: find_column(df.columns, aliases) for g, aliases in _AGE_ALIASES.items()}
    if all(found.values()):
        return {g: c for g, c in found.items() if c is not None}
    return None


def _age_totals(
    df: pd.DataFrame, pop: np.ndarray, rows: pd.Series, path: Path, shares: AgeShares, notes: list[str]
) -> np.ndarray:
    """Return an (n, 3) integer array of age-group counts that sum to ``pop`` row by row."""
    cols = _age_columns(df)
    if cols is None:
        notes.append(
            f"{path.name}: no age-group columns; applied default shares 0-17 {shares.age_0_17:.0%}, "
            f"18-64 {shares.age_18_64:.0%}, 65+ {shares.age_65_plus:.0%}"
        )
        warnings.warn(notes[-1], AssumptionWarning, stacklevel=3)
        return (
            np.stack([largest_remainder(round(p), shares.as_array()) for p in pop])
            if len(pop)
            else (np.zeros((0, 3), dtype=np.int64))
        )
    ages = np.stack([_check_values(df[c], rows, path, c) for c in cols.values()], axis=1)
    mismatch = np.abs(ages.sum(axis=1) - pop) > 0.5
    if mismatch.any():
        i = int(mismatch.nonzero()[0][0])
        raise InvalidValueError(
            f"{path}: {rows.iloc[i]}: age groups {', '.join(cols.values())} sum to "
            f"{ages[i].sum():g}, not the population {pop[i]:g}"
        )
    return np.asarray(np.rint(ages), dtype=np.int64)


def _join_table(
    polygons: gpd.GeoDataFrame, poly_path: Path, table: pd.DataFrame, table_path: Path, join_on: str | None
) -> tuple[gpd.GeoDataFrame, str]:
    """Join a population table to polygons; return the joined frame and the polygon key column."""
    if join_on:
        left, _, right = join_on.partition("=")
        right = right or left
        for name, frame, p in ((left, polygons, poly_path), (right, table, table_path)):
            if name not in frame.columns:
                raise MissingFieldError(f"{p}: join field {name!r} not found; columns are {', '.join(frame.columns)}")
        pairs = [(left, right)]
    else:
        pairs = [(a, b) for a in polygons.columns if a != "geometry" for b in table.columns]
    best: tuple[int, str, str] = (0, "", "")
    for a, b in pairs:
        keys = set(polygons[a].astype(str).str.strip())
        hits = int(table[b].astype(str).str.strip().isin(keys).sum())
        if hits > best[0]:
            best = (hits, a, b)
    hits, left, right = best
    if hits == 0:
        tried = f"{pairs[0][0]} = {pairs[0][1]}" if join_on else "every pair of columns"
        raise JoinKeyError(
            f"join of {table_path} to {poly_path} matched no rows (tried {tried}); "
            "name the key fields with --join-on POLYGON_FIELD=TABLE_FIELD"
        )
    tab = table.copy()
    tab[right] = tab[right].astype(str).str.strip()
    if tab[right].duplicated().any():
        dup = tab.loc[tab[right].duplicated(), right].iloc[0]
        raise JoinKeyError(f"{table_path}: key {dup!r} repeats in field {right!r}")
    poly = polygons.copy()
    poly[left] = poly[left].astype(str).str.strip()
    unmatched_rows = sorted(set(tab[right]) - set(poly[left]))
    if unmatched_rows:
        warnings.warn(
            f"{table_path}: {len(unmatched_rows)} row(s) match no polygon in {poly_path} on "
            f"{right!r} = {left!r} (first: {unmatched_rows[0]}); their population is not placed",
            AssumptionWarning,
            stacklevel=3,
        )
    merged = poly.merge(
        tab.drop(columns=[c for c in tab.columns if c in poly.columns and c != right]),
        left_on=left,
        right_on=right,
        how="left",
        suffixes=("", "_table"),
    )
    missing = merged[right].isna() if right != left else merged[left].isin(unmatched_rows)
    if right != left and missing.any():
        raise JoinKeyError(
            f"{poly_path}: {int(missing.sum())} polygon(s) have no row in {table_path} "
            f"(join {left!r} = {right!r}; first: {merged.loc[missing, left].iloc[0]!r})"
        )
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=polygons.crs), left


def _grid_points(geom: shapely.Geometry, spacing: float) -> np.ndarray:
    """Sample points on a square grid inside ``geom``; at least its representative point."""
    minx, miny, maxx, maxy = geom.bounds
    xs = np.arange(minx + spacing / 2, maxx, spacing)
    ys = np.arange(miny + spacing / 2, maxy, spacing)
    if len(xs) and len(ys):
        gx, gy = np.meshgrid(xs, ys)
        pts = shapely.points(gx.ravel(), gy.ravel())
        inside = pts[shapely.contains_xy(geom, gx.ravel(), gy.ravel())]
        if len(inside):
            return np.asarray(inside)
    return np.asarray([geom.representative_point()])


def _homes(osm: OsmExtract, crs: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Return residential building centroids (with footprint area) and residential land-use polygons."""
    if osm.buildings:
        b = gpd.GeoDataFrame(
            {"tag": [t for _, _, t in osm.buildings]},
            geometry=[g for _, g, _ in osm.buildings],
            crs="EPSG:4326",
        ).to_crs(crs)
        b = b[b["tag"].isin(RESIDENTIAL_BUILDINGS)]
        area = b.geometry.area.clip(lower=20.0)
        # homes per building, to judge how completely OSM maps an area's housing: one for a house, more for a
        # block of flats (three storeys of 80 m2 flats on its footprint)
        flats = b["tag"].isin(("apartments", "residential", "dormitory")).to_numpy()
        homes = np.where(flats, np.maximum(1.0, area.to_numpy() * 3 / 80), 1.0)
        b = b.assign(weight=area, homes=homes).set_geometry(b.geometry.centroid)
    else:
        b = gpd.GeoDataFrame({"tag": [], "weight": [], "homes": []}, geometry=[], crs=crs)
    lu = (
        gpd.GeoDataFrame(
            {"landuse": [t for _, _, t in osm.landuse]},
            geometry=[g for _, g, _ in osm.landuse],
            crs="EPSG:4326",
        ).to_crs(crs)
        if osm.landuse
        else gpd.GeoDataFrame({"landuse": []}, geometry=[], crs=crs)
    )
    lu = lu.set_geometry(lu.geometry.make_valid())
    nonres = lu[lu["landuse"].isin(NON_RESIDENTIAL_LANDUSE)]
    if len(b) and len(nonres):
        # building=yes inside industrial or retail land is not a home
        hit = gpd.sjoin(b[b["tag"] == "yes"], nonres[["geometry"]], predicate="within", how="inner")
        b = b.drop(index=hit.index.unique())
    res = lu[lu["landuse"].isin(RESIDENTIAL_LANDUSE)]
    return b[["weight", "homes", "geometry"]], res[["geometry"]]


def disaggregate(
    areas: gpd.GeoDataFrame,
    ages: np.ndarray,
    osm: OsmExtract | None,
    *,
    crs: str,
    fallback_spacing_m: float = 500.0,
    landuse_spacing_m: float = 150.0,
    progress: Progress | None = None,
) -> gpd.GeoDataFrame:
    """Spread each area's integer age-group counts onto homes inside it (see module docstring).

    ``areas`` has ``area_id`` and ``group``; ``ages`` is (areas, 3) integers. Returns points in ``crs``.
    """
    proj = areas.to_crs(crs)
    if osm is not None:
        homes, res_land = _homes(osm, crs)
    else:
        homes = gpd.GeoDataFrame({"weight": [], "homes": []}, geometry=[], crs=crs)
        res_land = gpd.GeoDataFrame(geometry=[], crs=crs)
    in_area = gpd.sjoin(homes, proj[["geometry"]], predicate="within", how="inner")
    home_groups = in_area.groupby("index_right")
    frames: list[pd.DataFrame] = []
    n = len(proj)
    for k, (idx, row) in enumerate(proj.iterrows()):
        geom = row.geometry
        total = int(ages[k].sum())
        parts: list[tuple[np.ndarray, np.ndarray, str]] = []  # (points, weights, method), weights sum to a share
        h_idx = home_groups.groups.get(idx, [])
        h = homes.loc[h_idx]
        hx, hy = h.geometry.x.to_numpy(), h.geometry.y.to_numpy()
        land: list[tuple[np.ndarray, np.ndarray]] = []
        if len(res_land):
            near = res_land.geometry.iloc[res_land.sindex.query(geom, predicate="intersects")]
            pieces = near.intersection(geom)
            for piece in pieces[~pieces.is_empty & (pieces.area > 100)]:
                if len(h) and shapely.contains_xy(piece, hx, hy).any():
                    continue  # mapped buildings already stand for this patch of housing
                p = _grid_points(piece, landuse_spacing_m)
                land.append((p, np.full(len(p), piece.area * LANDUSE_BUILT_SHARE / len(p))))
        # OSM building coverage is often partial. Where fewer buildings are mapped than the area has homes,
        # they take only their share of the people; the rest go to unmapped residential land, else the area.
        completeness = min(1.0, float(h["homes"].sum()) / max(total / PERSONS_PER_HOME, 1.0))
        if len(h) and completeness >= 1.0:
            parts.append((np.asarray(h.geometry.values), h["weight"].to_numpy(), "building"))
            parts += [(p, w, "landuse") for p, w in land]
        else:
            if len(h):
                w = h["weight"].to_numpy()
                parts.append((np.asarray(h.geometry.values), completeness * w / w.sum(), "building"))
            rest = 1.0 - completeness if len(h) else 1.0
            if land:
                lw = sum(w.sum() for _, w in land)
                parts += [(p, rest * w / lw, "landuse") for p, w in land]
            elif rest > 0:
                p = _grid_points(geom, fallback_spacing_m)
                parts.append((p, np.full(len(p), rest / len(p)), "area"))
        pts = [p for p, _, _ in parts]
        weights = [w for _, w, _ in parts]
        methods = [m for p, _, m in parts for _ in range(len(p))]
        geoms = np.concatenate(pts)
        w = np.concatenate(weights)
        counts = np.stack([largest_remainder(int(a), w) for a in ages[k]], axis=1)
        keep = counts.sum(axis=1) > 0
        frame = pd.DataFrame(counts[keep], columns=list(AGE_GROUPS))
        frame["population"] = frame[list(AGE_GROUPS)].sum(axis=1)
        frame["area_id"] = row["area_id"]
        frame["group"] = row["group"]
        frame["method"] = np.asarray(methods)[keep]
        frame["geometry"] = geoms[keep]
        frames.append(frame)
        if progress and (k % 10 == 0 or k == n - 1):
            progress("disaggregate population", (k + 1) / n)
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out, geometry="geometry", crs=crs)


def _row_labels(ids: pd.Series | None, n: int, path: Path) -> pd.Series:
    """How messages name each row: by its id, else by its CSV line (the header is line 1) or feature number."""
    if ids is not None:
        return pd.Series([f"row {v!r}" for v in ids])
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.Series([f"row {i + 2}" for i in range(n)])
    return pd.Series([f"feature {i + 1}" for i in range(n)])


def load_population(
    path: str | Path,
    *,
    table: str | Path | None = None,
    join_on: str | None = None,
    population_field: str | None = None,
    area_field: str | None = None,
    group_field: str | None = None,
    osm: OsmExtract | None = None,
    crs: str = "EPSG:4326",
    shares: AgeShares | None = None,
    progress: Progress | None = None,
) -> Population:
    """Read population and return demand points.

    Parameters
    ----------
    path
        Points (CSV with lon/lat, GeoPackage, GeoJSON) or polygons (census areas).
    table
        Optional CSV of population joined to the polygons in ``path``.
    join_on
        ``"POLYGON_FIELD=TABLE_FIELD"``; detected from matching values when omitted.
    population_field, area_field, group_field
        Field names; detected when omitted. ``group_field`` (for example a former municipality) is carried to
        every point for KPIs by group.
    osm
        OSM extract with buildings and land use, for dasymetric disaggregation of polygons. Without it, polygons
        fall back to area-weighted sample points.
    crs
        Metric CRS for the geometry work (the network's). Results are returned in EPSG:4326.
    shares
        Default age shares where the source has only totals.
    """
    path = Path(path)
    shares = shares or AgeShares()
    notes: list[str] = []
    features = read_features(path)
    kinds = set(features.geom_type)
    polygonal = kinds <= {"Polygon", "MultiPolygon"}
    if not polygonal and not kinds <= {"Point"}:
        raise InvalidValueError(f"{path}: geometry must be all points or all polygons, found {sorted(kinds)}")
    if table is not None:
        if not polygonal:
            raise InvalidValueError(f"{path}: a population table can be joined only to polygons")
        table_path = Path(table)
        features, key = _join_table(features, path, read_table(table_path), table_path, join_on)
        source = table_path
        df_for_fields: pd.DataFrame = features
        area_field = area_field or key
    else:
        source = path
        df_for_fields = features
    pop_col = _population_column(df_for_fields, source, population_field)
    id_col = area_field or find_column(
        features.columns, ("area_id", "code", "lsoa21cd", "lsoacd", "sogn", "parish", "name", "id")
    )
    ids = features[id_col].astype(str) if id_col else pd.Series([f"{i}" for i in range(len(features))])
    if polygonal and ids.duplicated().any():
        from geodata.errors import DuplicateIdError

        raise DuplicateIdError(f"{path}: area id {ids[ids.duplicated()].iloc[0]!r} repeats in field {id_col!r}")
    rows = _row_labels(ids if id_col else None, len(features), source)
    pop = _check_values(features[pop_col], rows, source, pop_col)
    group_col = group_field or find_column(features.columns, ("group", "municipality", "former_municipality"))
    groups = features[group_col].astype(str) if group_col else pd.Series(["all"] * len(features))
    if group_field and group_field not in features.columns:
        raise MissingFieldError(f"{path}: group field {group_field!r} not found")

    if polygonal:
        if np.any(np.abs(pop - np.rint(pop)) > 1e-9):
            notes.append(f"{source.name}: fractional populations rounded to whole people")
        pop = np.rint(pop)
        ages = _age_totals(df_for_fields, pop, rows, source, shares, notes)
        areas = gpd.GeoDataFrame(
            {"area_id": ids.to_numpy(), "group": groups.to_numpy(), "population": ages.sum(axis=1)},
            geometry=features.geometry.values,
            crs=features.crs,
        )
        for j, g in enumerate(AGE_GROUPS):
            areas[g] = ages[:, j]
        points = disaggregate(areas, ages, osm, crs=crs, progress=progress)
        method = points.groupby("area_id")["method"].agg(lambda m: ",".join(sorted(set(m))))
        areas["method"] = areas["area_id"].map(method).fillna("none")
        areas = areas.to_crs("EPSG:4326")
        points = points.to_crs("EPSG:4326")
    else:
        cols = _age_columns(df_for_fields)
        if cols is not None:
            age_arr = np.stack([_check_values(features[c], rows, source, c) for c in cols.values()], axis=1)
        else:
            age_arr = pop[:, None] * shares.as_array()[None, :]
            notes.append(f"{source.name}: no age-group columns; applied default shares")
            warnings.warn(notes[-1], AssumptionWarning, stacklevel=2)
        points = gpd.GeoDataFrame(
            {
                "area_id": ids.to_numpy() if area_field else groups.to_numpy(),
                "group": groups.to_numpy(),
                "population": pop,
                "method": "point",
            },
            geometry=features.geometry.values,
            crs=features.crs,
        ).to_crs("EPSG:4326")
        for j, g in enumerate(AGE_GROUPS):
            points[g] = age_arr[:, j]
        areas = gpd.GeoDataFrame({"area_id": [], "group": [], "population": []}, geometry=[], crs="EPSG:4326")
    points.insert(0, "point_id", np.arange(len(points)))
    return Population(points=points.reset_index(drop=True), areas=areas, notes=tuple(notes))


__all__: Sequence[str] = ("AGE_GROUPS", "AgeShares", "Population", "largest_remainder", "load_population")
