"""Stage 6: libraries, a main library in each main town and small branches in the largest villages.

Each library gets the UK public-library schema's staffed hours (:data:`HOURS_COLUMNS`) and a closure cost.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import pandas as pd

from geodata.synthetic.parishes import Census
from geodata.synthetic.settlements import Layout

#: The seven UK public-library schema columns for staffed hours.
HOURS_COLUMNS: Final = tuple(
    f"{day} staffed hours" for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
)


def _slug(name: str) -> str:
    """Return an ASCII id for a name: lower case, æ/ø/å spelt out, any other non-alphanumeric run a dash."""
    text = name.lower().replace("æ", "ae").replace("ø", "oe").replace("å", "aa")
    out = "".join(c if c.isascii() and c.isalnum() else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


def _clock(hours: float) -> str:
    """Format fractional hours as ``HH:MM``."""
    return f"{int(hours):02d}:{round((hours % 1) * 60):02d}"


def _main_hours(rng: np.random.Generator) -> list[str | None]:
    """Draw the opening hours of a main library: every weekday, one late evening, Saturday morning; 35-50 h a week."""
    while True:
        late = int(rng.integers(0, 4))
        days: list[str | None] = []
        total = 0.0
        for d in range(5):
            start = float(rng.choice([9.0, 9.5, 10.0]))
            end = 19.0 if d == late else float(rng.choice([16.0, 17.0, 17.5, 18.0]))
            days.append(f"{_clock(start)}-{_clock(end)}")
            total += end - start
        sat_end = float(rng.choice([13.0, 14.0, 15.0]))
        days.append(f"10:00-{_clock(sat_end)}")
        total += sat_end - 10.0
        if rng.random() < 0.25:
            days.append("12:00-16:00")
            total += 4.0
        else:
            days.append(None)
        if 35.0 <= total <= 50.0:
            return days


def _branch_hours(rng: np.random.Generator) -> list[str | None]:
    """Draw the opening hours of a small branch: two to four days, some split around lunch; 8-20 h a week."""
    shapes = [("14:00-18:00", 4.0), ("10:00-13:00", 3.0), ("13:00-17:00", 4.0), ("15:00-19:00", 4.0),
              ("10:00-12:00,14:00-17:00", 5.0), ("09:30-12:00,13:00-16:30", 6.0)]  # fmt: skip
    while True:
        open_days = rng.choice(6, size=int(rng.integers(2, 5)), replace=False)
        days: list[str | None] = [None] * 7
        total = 0.0
        for d in sorted(open_days.tolist()):
            text, h = shapes[int(rng.integers(0, 4 if d == 5 else len(shapes)))]
            if d == 5:
                text, h = "10:00-13:00", 3.0
            days[d] = text
            total += h
        if 8.0 <= total <= 20.0:
            return days


def branch_table(
    lay: Layout,
    census: Census,
    settlement_muni: np.ndarray,
    settlement_pop: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Place a main library in each main town and one or two small branches in its largest villages.

    A library stands 20 m from its settlement's centre (at the centre when that would cross into another
    municipality). Only the seat's main library must be kept. The table has the columns of
    ``SyntheticRegion.branches``, with the position ``x``, ``y`` (EPSG:25832) instead of a geometry.
    """
    rows: list[dict[str, object]] = []
    for t in range(lay.n_towns):
        main = [t]
        villages = [
            int(s) for s in np.flatnonzero((settlement_muni == t) & (lay.kind != "town")).tolist()
            if settlement_pop[s] >= 100
        ]  # fmt: skip
        villages.sort(key=lambda s: (-int(settlement_pop[s]), s))
        n_small = 1
        if len(villages) > 1 and settlement_pop[villages[1]] >= 300 and rng.random() < 0.6:
            n_small = 2
        for s in main + villages[:n_small]:
            is_main = s == t
            ang = rng.uniform(0, 2 * math.pi)
            bx, by = float(lay.x[s]) + 20.0 * math.cos(ang), float(lay.y[s]) + 20.0 * math.sin(ang)
            if census.municipality[census.area_of(np.array([bx]), np.array([by]))[0]] != t:
                bx, by = float(lay.x[s]), float(lay.y[s])
            hours = _main_hours(rng) if is_main else _branch_hours(rng)
            cost = rng.uniform(100_000, 150_000) if is_main else rng.uniform(50_000, 100_000)
            row: dict[str, object] = {
                "branch_id": f"{_slug(lay.name[s])}-library",
                "Library name": f"{lay.name[s]} Bibliotek",
                "municipality": lay.name[t],
            }
            row.update(dict(zip(HOURS_COLUMNS, hours, strict=True)))
            row.update(
                must_keep=is_main and t == 0,
                closable=not (is_main and t == 0),
                annual_cost=None,
                closure_cost=int(round(cost, -3)),
                x=bx,
                y=by,
            )
            rows.append(row)
    frame = pd.DataFrame(rows)
    for col in HOURS_COLUMNS:  # keep closed days as None, not NaN
        frame[col] = pd.Series([row[col] for row in rows], dtype=object)
    return frame
