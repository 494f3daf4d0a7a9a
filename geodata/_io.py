"""Reading tabular and spatial input files with errors that name the file and field."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geodata.errors import InputFileError, MissingCRSError, MissingFieldError

SPATIAL_SUFFIXES = frozenset({".gpkg", ".geojson", ".json", ".shp", ".fgb", ".parquet"})
LON_NAMES = ("lon", "lng", "long", "longitude", "x")
LAT_NAMES = ("lat", "latitude", "y")


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV file (UTF-8, with or without BOM)."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path}: not a readable CSV file ({exc})") from exc
    if df.empty:
        raise InputFileError(f"{path}: the table has no rows")
    df.columns = [str(c).strip() for c in df.columns]
    return df


def read_spatial(path: Path) -> gpd.GeoDataFrame:
    """Read a spatial vector file, insisting on a CRS."""
    if not path.is_file():
        raise InputFileError(f"{path}: file not found")
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
    return gdf


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
