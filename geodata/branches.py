"""Library branches as sites: the public-library schema (CSV) or GeoJSON/GeoPackage points.

Staffed hours per weekday follow the schema (``"Monday staffed hours" = "09:30-17:00"``). Optional fields are the
annual running cost, a one-off closure cost, ``closable`` and ``must_keep``. A missing annual cost comes from
:class:`CostModel`: staffed hours per week x weeks per year x hourly cost, plus a fixed building cost.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from geodata._io import find_column, read_features
from geodata.errors import AssumptionWarning, DuplicateIdError, InvalidValueError, MissingFieldError

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ID_FIELDS = ("branch_id", "library_id", "Library name", "library", "name", "id")
_RANGE = re.compile(r"^\s*(\d{1,2})[:.](\d{2})\s*[-–]\s*(\d{1,2})[:.](\d{2})\s*$")
_TRUE = frozenset({"true", "yes", "y", "1", "t"})
#: Longest branch id or name: longer text is a misread column (a whole address list, a pasted document).
MAX_TEXT_CHARS = 200
_FALSE = frozenset({"false", "no", "n", "0", "f", ""})


@dataclass(frozen=True)
class CostModel:
    """Default annual cost of a branch where the input gives none.

    ``annual_cost = staffed_hours_per_week * weeks_per_year * hourly_cost + fixed_cost``. The hourly cost covers
    staff on duty (with on-costs) and hour-dependent running costs; the fixed cost covers the building (rent or
    maintenance, utilities, insurance) and stock. The defaults are round figures in a generic currency unit and
    should be set from the local budget.
    """

    hourly_cost: float = 60.0
    fixed_cost: float = 40_000.0
    weeks_per_year: float = 52.0
    closure_cost: float = 0.0

    def __post_init__(self) -> None:
        for name in ("hourly_cost", "fixed_cost", "weeks_per_year", "closure_cost"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise InvalidValueError(f"CostModel.{name} must be a non-negative number, not {value!r}")

    def annual_cost(self, staffed_hours_per_week: float) -> float:
        return staffed_hours_per_week * self.weeks_per_year * self.hourly_cost + self.fixed_cost


def parse_hours(value: object, *, where: str) -> float:
    """Return the hours in a schema opening-hours cell such as ``"09:30-17:00"`` or ``"10:00-12:00,14:00-17:00"``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return 0.0
    text = str(value).strip()
    if not text or text.lower() in ("closed", "none", "-", "nan"):
        return 0.0
    total = 0.0
    for part in re.split(r"[,;&]|\band\b", text):
        if not part.strip():
            continue
        m = _RANGE.match(part)
        if not m:
            raise InvalidValueError(f"{where}: cannot read hours {text!r}; expected ranges like '09:30-17:00'")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if not (0 <= start < end <= 24 * 60):
            raise InvalidValueError(f"{where}: hours {part.strip()!r} do not run forwards within a day")
        total += (end - start) / 60
    return total


def _parse_bool(value: object, *, where: str) -> bool | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False if text else None
    raise InvalidValueError(f"{where}: {value!r} is not a yes/no value")


def _parse_money(value: object, *, where: str) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value).strip() == "":
        return None
    try:
        x = float(str(value).replace(",", "").strip())
    except ValueError:
        raise InvalidValueError(f"{where}: {value!r} is not a number") from None
    if not np.isfinite(x) or x < 0:
        raise InvalidValueError(f"{where}: {value!r} must be a non-negative number")
    return x


def load_branches(
    path: str | Path, *, id_field: str | None = None, cost_model: CostModel | None = None
) -> gpd.GeoDataFrame:
    """Read branches and return one row per site, in EPSG:4326.

    Columns: ``branch_id``, ``name``, ``hours_<weekday>`` and ``staffed_hours_week`` (h), ``annual_cost``,
    ``cost_source`` (``"input"`` or ``"default model"``), ``closure_cost``, ``must_keep``, ``closable`` and the
    point geometry. ``must_keep`` implies not ``closable``; a branch marked neither closable nor must_keep is kept.

    Raises
    ------
    MissingFieldError
        No id field or no coordinates.
    DuplicateIdError
        Two rows share an id.
    InvalidValueError
        Unreadable hours, costs or flags; the message names the row and field.
    """
    path = Path(path)
    cost_model = cost_model or CostModel()
    gdf = read_features(path)
    if not set(gdf.geom_type) <= {"Point"}:
        gdf = gdf.set_geometry(gdf.geometry.representative_point())
    col = id_field or find_column(gdf.columns, ID_FIELDS)
    if col is None or col not in gdf.columns:
        raise MissingFieldError(
            f"{path}: no branch id field (looked for {', '.join(ID_FIELDS) if id_field is None else id_field})"
        )
    ids = gdf[col].astype(str).str.strip()
    if (ids == "").any() or gdf[col].isna().any():
        row = int(((ids == "") | gdf[col].isna()).to_numpy().nonzero()[0][0]) + 1
        raise MissingFieldError(f"{path}: feature {row}: field {col!r} (branch id) is empty")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        rows = ", ".join(str(i + 1) for i in dup.index)
        raise DuplicateIdError(f"{path}: branch id {dup.iloc[0]!r} in field {col!r} repeats (features {rows})")
    name_col = find_column(gdf.columns, ("Library name", "name")) or col
    names = gdf[name_col].astype(str)
    for field, values in ((col, ids), (name_col, names)):
        too_long = values.str.len() > MAX_TEXT_CHARS
        if too_long.any():
            i = int(too_long.to_numpy().nonzero()[0][0])
            raise InvalidValueError(
                f"{path}: feature {i + 1}: field {field!r} is {len(values.iloc[i]):,} characters long; at most "
                f"{MAX_TEXT_CHARS} (is the right column named?)"
            )
    out = pd.DataFrame({"branch_id": ids.to_numpy(), "name": names.to_numpy()})
    hours = np.zeros((len(gdf), len(WEEKDAYS)))
    have_hours = False
    for j, day in enumerate(WEEKDAYS):
        c = find_column(gdf.columns, (f"{day} staffed hours", f"{day.lower()}_staffed_hours", f"hours_{day.lower()}"))
        if c is None:
            continue
        have_hours = True
        for i, v in enumerate(gdf[c].tolist()):
            hours[i, j] = parse_hours(v, where=f"{path}: branch {ids.iloc[i]!r}: field {c!r}")
        out[f"hours_{day.lower()}"] = hours[:, j]
    weekly_col = find_column(gdf.columns, ("staffed_hours_week", "staffed_hours", "hours_per_week"))
    if weekly_col is not None and not have_hours:
        weekly = [
            _parse_money(v, where=f"{path}: branch {ids.iloc[i]!r}: field {weekly_col!r}") or 0.0
            for i, v in enumerate(gdf[weekly_col].tolist())
        ]
        out["staffed_hours_week"] = weekly
    else:
        out["staffed_hours_week"] = hours.sum(axis=1)

    def column_values(names: tuple[str, ...], parse: str) -> list[object]:
        c = find_column(gdf.columns, names)
        if c is None:
            return [None] * len(gdf)
        fn = _parse_money if parse == "money" else _parse_bool
        return [fn(v, where=f"{path}: branch {ids.iloc[i]!r}: field {c!r}") for i, v in enumerate(gdf[c].tolist())]

    costs = column_values(("annual_cost", "cost", "running_cost"), "money")
    out["cost_source"] = np.array(["input" if c is not None else "default model" for c in costs])
    out["annual_cost"] = np.array(
        [
            float(c) if isinstance(c, float) else cost_model.annual_cost(h)
            for c, h in zip(costs, out["staffed_hours_week"], strict=True)
        ]
    )
    defaulted = int((out["cost_source"] == "default model").sum())
    if defaulted:
        warnings.warn(
            f"{path}: {defaulted} branch(es) have no annual cost; used the default model "
            f"(staffed h/week x {cost_model.weeks_per_year:g} x {cost_model.hourly_cost:g} + "
            f"{cost_model.fixed_cost:g})",
            AssumptionWarning,
            stacklevel=2,
        )
    out["closure_cost"] = np.array(
        [
            float(c) if isinstance(c, float) else cost_model.closure_cost
            for c in column_values(("closure_cost", "closing_cost"), "money")
        ]
    )
    must_keep = [bool(v) for v in column_values(("must_keep", "keep"), "bool")]
    closable_raw = column_values(("closable", "may_close"), "bool")
    out["must_keep"] = np.array([mk or (c is False) for mk, c in zip(must_keep, closable_raw, strict=True)])
    out["closable"] = ~out["must_keep"]
    for extra in ("municipality", "Postcode", "Address 1"):
        c = find_column(gdf.columns, (extra,))
        if c is not None:
            out[extra.lower().replace(" ", "_")] = gdf[c].astype(str).replace({"None": "", "nan": ""}).to_numpy()
    return gpd.GeoDataFrame(out, geometry=gdf.geometry.values, crs=gdf.crs).to_crs("EPSG:4326")
