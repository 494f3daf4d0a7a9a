"""Reading tabular and spatial input files with errors that name the file and field.

Text must be UTF-8: a file in another encoding is refused naming the line and the byte (guessing an encoding would
garble names silently). An invalid polygon whose repair (:func:`shapely.make_valid`) keeps its area is repaired
with a :class:`~geodata.errors.DataRepairWarning` naming the features; one whose repair would change its area
(a bow-tie, a ring crossing itself) is refused naming the feature and the reason, since its meaning is unclear.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geodata._text import decode_text
from geodata.errors import DataRepairWarning, InputFileError, InvalidValueError, MissingCRSError, MissingFieldError

#: Largest relative change of a polygon's area that :func:`shapely.make_valid` may make for the repair to be taken.
REPAIR_AREA_TOLERANCE = 0.01

SPATIAL_SUFFIXES = frozenset({".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"})
LON_NAMES = ("lon", "lng", "long", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV file (UTF-8, with or without BOM)."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise InputFileError(f"{path}: the file is empty ({len(data)} bytes)")
    text = decode_text(data, path)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: not a readable CSV file ({exc})") from exc
    if df.empty:
        raise InputFileError(f"{path}: the table has no rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_spatial(path: Path) -> gpd.GeoDataFrame:
    """Read a spatial vector file, insisting on a CRS."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path}: the file is empty (0 bytes)")
    try:
        gdf = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for unreadable data
        raise InputFileError(f"{path}: not a readable spatial file ({exc})") from exc
    if gdf.empty:
        raise InputFileError(f"{path}: the file has no features")
    if gdf.crs is None:
        raise MissingCRSError(
            f"{path}: the file has no coordinate reference system; set one (for example EPSG:4326) "
            "in the file, or export it again with its .prj / CRS"
        )
    if gdf.geometry.isna().any() or gdf.geometry.is_empty.any():
        bad = int((gdf.geometry.isna() | gdf.geometry.is_empty).sum())
        raise InputFileError(f"{path}: {bad} feature(s) have no geometry (field 'geometry')")
    return _valid_polygons(gdf, path)


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of a repaired geometry (``make_valid`` may add collapsed lines or points)."""
    if shapely.get_type_id(geom) in (3, 6):
        return geom
    parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def _valid_polygons(gdf: gpd.GeoDataFrame, path: Path) -> gpd.GeoDataFrame:
    """Repair invalid polygons whose repair keeps their area (with a warning); refuse the others."""
    polygonal = gdf.geom_type.isin(("Polygon", "MultiPolygon")).to_numpy()
    invalid = polygonal & ~gdf.geometry.is_valid.to_numpy()
    if not invalid.any():
        return gdf
    rows = np.flatnonzero(invalid)
    before = np.asarray(gdf.geometry.values[rows])
    after = np.array([_polygonal(g) for g in shapely.make_valid(before)], dtype=object)
    area0, area1 = shapely.area(before), shapely.area(after)
    refused = shapely.is_empty(after) | (np.abs(area1 - area0) > REPAIR_AREA_TOLERANCE * area1)
    reasons = [shapely.is_valid_reason(g) for g in before]
    if refused.any():
        shown = "; ".join(f"feature {rows[k] + 1}: {reasons[k]}" for k in np.flatnonzero(refused)[:5])
        raise InvalidValueError(
            f"{path}: {int(refused.sum())} polygon(s) are invalid and cannot be repaired without changing their "
            f"area ({shown}) (field 'geometry'); fix them in a GIS (QGIS: Vector > Geometry Tools > Check Validity)"
        )
    geometry = np.asarray(gdf.geometry.values).copy()
    geometry[rows] = after
    out = gdf.set_geometry(gpd.GeoSeries(geometry, index=gdf.index, crs=gdf.crs))
    shown = ", ".join(f"feature {r + 1} ({why})" for r, why in zip(rows[:5], reasons, strict=False))
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    warnings.warn(
        f"{path}: {len(rows)} invalid polygon(s) repaired without changing their area: {shown}{more}",
        DataRepairWarning,
        stacklevel=3,
    )
    return out


def find_column(columns: Iterable[str], candidates: Iterable[str]) -> str | None:
    """Return the first column whose name matches a candidate, case- and space-insensitively."""
    norm = {str(c).strip().lower().replace(" ", "_"): str(c) for c in columns}
    for cand in candidates:
        hit = norm.get(cand.lower().replace(" ", "_"))
        if hit is not None:
            return hit
    return None


def points_from_table(df: pd.DataFrame, path: Path) -> gpd.GeoDataFrame | None:
    """Turn a table with lon/lat (EPSG:4326) or easting/northing (EPSG:27700) columns into points."""
    lon, lat = find_column(df.columns, LON_NAMES), find_column(df.columns, LAT_NAMES)
    crs = "EPSG:4326"
    if lon is None or lat is None:
        lon, lat = (
            find_column(df.columns, ("easting", "bng_e")),
            find_column(df.columns, ("northing", "bng_n")),
        )
        crs = "EPSG:27700"
    if lon is None or lat is None:
        return None
    x = pd.to_numeric(df[lon], errors="coerce")
    y = pd.to_numeric(df[lat], errors="coerce")
    bad = x.isna() | y.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0]) + 2  # 1-based, after the header line
        raise InputFileError(f"{path}: row {row}: fields {lon!r}/{lat!r} are not numeric coordinates")
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(x, y), crs=crs)


def read_features(path: Path) -> gpd.GeoDataFrame:
    """Read a spatial file, or a CSV with coordinate columns, as a GeoDataFrame."""
    if path.suffix.lower() in SPATIAL_SUFFIXES:
        return read_spatial(path)
    if path.suffix.lower() in (".csv", ".txt"):
        df = read_table(path)
        gdf = points_from_table(df, path)
        if gdf is None:
            raise MissingFieldError(
                f"{path}: no coordinate fields (lon/lat in EPSG:4326, or easting/northing in EPSG:27700), "
                "so its rows cannot be placed; add them, or give a GeoJSON/GeoPackage of the same features "
                f"(the file's fields are {', '.join(map(str, df.columns))})"
            )
        return gdf
    raise InputFileError(f"{path}: unknown file type {path.suffix!r}; use .csv, .gpkg, .geojson or .shp")
