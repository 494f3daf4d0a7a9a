"""Compare two joint-planner results (``plan.json``): KPIs, costs and the change in access by group, zone and area.

``compare_plans(a, b)`` works on the parsed ``plan.json`` dicts and ``compare_dirs(a, b)`` on the result folders
written by ``branchnet plan``. Differences are always B − A. The result is a JSON-safe dict::

    {"a": {...}, "b": {...},                 # scenario, region, objective, years (and dir, name for folders)
     "years": ["2025", ...],                 # the years both plans report, in A's order
     "notes": ["..."],                       # what could not be compared (years or regions that differ, ...)
     "kpis":  {year: [{"metric", "a", "b", "diff"[, "diff_pp"]}, ...]},     # the "plan" KPIs; diff_pp for shares
     "costs": [{"key", "year", "a", "b", "diff"}, ...],                     # costs["plan"]; year set per-year items
     "groups" | "zones" | "areas": {year: [{"key", "population_a", "population_b", "covered_a", "covered_b",
                                            "share_a", "share_b", "diff_pp", "changed"}, ...]}}

Group, zone and area rows are sorted by the largest absolute change first; a key present in one plan only has
``None`` on the other side and sorts last. Missing keys in ``plan.json`` give empty sections, not errors.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.table import Table

from optimizer.kpis import DRIVE_BANDS_MIN
from service.errors import BadRequestError
from service.store.files import atomic_write

#: Share changes smaller than this (as a fraction) count as "unchanged".
CHANGE_TOL = 1e-9
#: The scalar KPIs in the order they are shown; other numeric keys follow alphabetically.
KPI_ORDER = (
    "population",
    "covered",
    "covered_share",
    "credit_share",
    "mean_drive_min",
    "p95_drive_min",
    "share_within_standard",
    *(f"share_within_{m}_min" for m in DRIVE_BANDS_MIN),
    "share_within_2_miles",
    "unreachable",
)
MODE_ORDER = ("branch", "bookmobile", "desk", "home_delivery", "none")
COST_ORDER = ("total", "branches", "closures", "bookmobile", "desks", "home_delivery", "total_by_year")
#: Section name in the result -> key of the KPI block in plan.json.
BREAKDOWNS = {"groups": "by_group", "zones": "by_zone", "areas": "by_area"}
CSV_COLUMNS = ("section", "year", "key", "metric", "a", "b", "diff")


class CompareError(BadRequestError):
    """A plan folder or plan.json that cannot be compared; the message names the file."""


# ---------------------------------------------------------------------------------------------------------------
# reading


def load_plan(folder: Path) -> dict[str, Any]:
    """Read ``folder/plan.json``, raising :class:`CompareError` naming the file when it is missing or invalid."""
    folder = Path(folder)
    path = folder / "plan.json"
    if not folder.is_dir():
        raise CompareError(f"{path}: not found ({folder} is not a folder; give a result folder of `branchnet plan`)")
    if not path.is_file():
        raise CompareError(f"{path}: not found (is {folder} a result folder of `branchnet plan`?)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CompareError(f"{path}: cannot read ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompareError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    check_plan(data, str(path))
    return data  # type: ignore[no-any-return]


def check_plan(data: Any, source: str) -> None:
    """Reject what is not a joint-planner result at all; missing keys are tolerated later."""
    if not isinstance(data, dict):
        raise CompareError(f"{source}: expected a JSON object (a plan), got {type(data).__name__}")
    kpis = data.get("kpis")
    if isinstance(kpis, dict) and {"before", "after"} <= kpis.keys():
        raise CompareError(
            f"{source}: a branch-only location plan (kpis before/after); compare needs plans of the joint planner "
            "(`branchnet plan SCENARIO.yaml`)"
        )


# ---------------------------------------------------------------------------------------------------------------
# comparing


def compare_dirs(a: Path, b: Path) -> dict[str, Any]:
    """Compare the plans in two result folders; see the module docstring for the result."""
    a, b = Path(a), Path(b)
    plan_a, plan_b = load_plan(a), load_plan(b)
    result = compare_plans(plan_a, plan_b)
    result["a"].update(dir=str(a), name=folder_name(a))
    result["b"].update(dir=str(b), name=folder_name(b))
    return result


def compare_plans(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Compare two parsed ``plan.json`` dicts (B − A); see the module docstring for the result."""
    check_plan(a, "plan A")
    check_plan(b, "plan B")
    notes: list[str] = []
    if a.get("region") != b.get("region"):
        notes.append(f"the plans are for different regions ({a.get('region')} and {b.get('region')})")
    blocks_a, blocks_b = _plan_kpis(a), _plan_kpis(b)
    years = [y for y in blocks_a if y in blocks_b]
    for name, blocks in (("A", blocks_a), ("B", blocks_b)):
        only = [y for y in blocks if y not in years]
        if only:
            notes.append(f"year(s) {', '.join(only)} only in plan {name}: not compared")
    if not years:
        notes.append("the plans share no year with planned KPIs: only costs are compared")
    result: dict[str, Any] = {
        "a": _meta(a),
        "b": _meta(b),
        "years": years,
        "notes": notes,
        "kpis": {y: _kpi_rows(blocks_a[y], blocks_b[y]) for y in years},
        "costs": _cost_rows(_dict(_dict(a.get("costs")).get("plan")), _dict(_dict(b.get("costs")).get("plan"))),
    }
    for section, key in BREAKDOWNS.items():
        result[section] = {y: _breakdown_rows(_dict(blocks_a[y].get(key)), _dict(blocks_b[y].get(key))) for y in years}
    return result


def folder_name(folder: Path) -> str:
    return Path(folder).resolve().name or "plan"


def _meta(plan: dict[str, Any]) -> dict[str, Any]:
    meta = {k: plan.get(k) for k in ("scenario", "region", "objective")}
    meta["years"] = list(_plan_kpis(plan))
    return meta


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any) -> float | None:
    """A finite number as float; anything else (None, NaN, strings, bools) as None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _plan_kpis(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Year label -> the "plan" KPI block, in the order of ``years`` (then any other years in ``kpis``)."""
    kpis = _dict(plan.get("kpis"))
    years = plan.get("years")
    order = [str(y) for y in years] if isinstance(years, list) else []
    order += [y for y in kpis if y not in order]
    out = {}
    for y in order:
        block = _dict(kpis.get(y)).get("plan")
        if isinstance(block, dict):
            out[y] = block
    return out


def _ordered(keys: Iterable[str], first: Iterable[str]) -> list[str]:
    keys = set(keys)
    head = [k for k in dict.fromkeys(first) if k in keys]
    return head + sorted(keys - set(head))


def _is_share(metric: str) -> bool:
    """Whether a KPI is a share (compared in percentage points): ``covered_share``, ``share_within_10_min``, ..."""
    return metric.endswith("_share") or metric.startswith("share_") or metric == "share"


def _is_scalar(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _kpi_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    metrics = {k for block in (a, b) for k, v in block.items() if _is_scalar(v)}
    rows = [_kpi_row(m, a.get(m), b.get(m)) for m in _ordered(metrics, KPI_ORDER)]
    modes_a, modes_b = _dict(a.get("people_by_mode")), _dict(b.get("people_by_mode"))
    for mode in _ordered({*modes_a, *modes_b}, MODE_ORDER):
        rows.append(_kpi_row(f"people_by_mode.{mode}", modes_a.get(mode), modes_b.get(mode)))
    return rows


def _kpi_row(metric: str, a: Any, b: Any) -> dict[str, Any]:
    va, vb = _num(a), _num(b)
    row: dict[str, Any] = {"metric": metric, "a": va, "b": vb, "diff": _diff(va, vb)}
    if _is_share(metric):
        row["diff_pp"] = _pp(va, vb)
    return row


def _pp(a: float | None, b: float | None) -> float | None:
    d = _diff(a, b)
    return None if d is None else round(100 * d, 9)  # round away float noise: 0.95 - 0.9 is +5.0 pp, not 4.99...


def _cost_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key in _ordered({*a, *b}, COST_ORDER):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) or isinstance(vb, dict):  # per year: home_delivery, total_by_year
            da, db = _dict(va), _dict(vb)
            for year in [*da, *(y for y in db if y not in da)]:
                na, nb = _num(da.get(year)), _num(db.get(year))
                rows.append({"key": key, "year": year, "a": na, "b": nb, "diff": _diff(na, nb)})
        elif _is_scalar(va) and _is_scalar(vb):
            na, nb = _num(va), _num(vb)
            rows.append({"key": key, "year": None, "a": na, "b": nb, "diff": _diff(na, nb)})
    return rows


def _share(block: dict[str, Any]) -> float | None:
    share = _num(block.get("share"))
    if share is None:
        pop, cov = _num(block.get("population")), _num(block.get("covered"))
        if pop and cov is not None:
            share = cov / pop
    return share


def _breakdown_rows(a: dict[str, Any], b: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for key in [*a, *(k for k in b if k not in a)]:
        ba, bb = _dict(a.get(key)), _dict(b.get(key))
        sa = _share(ba) if key in a else None
        sb = _share(bb) if key in b else None
        pp = _pp(sa, sb)
        rows.append(
            {
                "key": str(key),
                "population_a": _num(ba.get("population")),
                "population_b": _num(bb.get("population")),
                "covered_a": _num(ba.get("covered")),
                "covered_b": _num(bb.get("covered")),
                "share_a": sa,
                "share_b": sb,
                "diff_pp": pp,
                "changed": pp is None or abs(pp) > 100 * CHANGE_TOL,
            }
        )
    rows.sort(key=lambda r: (r["diff_pp"] is None, -abs(r["diff_pp"] or 0.0), r["key"]))
    return rows


# ---------------------------------------------------------------------------------------------------------------
# writing


def default_output(a: Path, b: Path) -> Path:
    """``B/compare_<A's folder name>.json``."""
    return Path(b) / f"compare_{folder_name(a)}.json"


def flat_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison as flat rows (section, year, key, metric, a, b, diff); diffs are B − A in the metric's units.

    Shares are fractions here (the diff of a share ×100 is the change in percentage points).
    """
    rows: list[dict[str, Any]] = []
    for year, kpis in result.get("kpis", {}).items():
        for r in kpis:
            rows.append({"section": "kpis", "year": year, "key": "", "metric": r["metric"], "a": r["a"], "b": r["b"],
                         "diff": r["diff"]})  # fmt: skip
    for r in result.get("costs", []):
        rows.append({"section": "costs", "year": r["year"] or "", "key": r["key"], "metric": "annual_cost",
                     "a": r["a"], "b": r["b"], "diff": r["diff"]})  # fmt: skip
    for section in BREAKDOWNS:
        for year, items in result.get(section, {}).items():
            for r in items:
                for metric in ("population", "covered", "share"):
                    va, vb = r[f"{metric}_a"], r[f"{metric}_b"]
                    rows.append({"section": section, "year": year, "key": r["key"], "metric": metric, "a": va,
                                 "b": vb, "diff": _diff(va, vb)})  # fmt: skip
    return rows


def write_comparison(result: dict[str, Any], path: Path) -> Path:
    """Write the comparison as JSON, or as a flat CSV when ``path`` ends with ``.csv``; atomically."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in flat_rows(result):
            writer.writerow({k: "" if v is None else v for k, v in row.items()})
        text = buf.getvalue()
    else:
        text = json.dumps(result, indent=2, allow_nan=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError as exc:
        raise CompareError(f"{path}: cannot write the comparison ({exc.strerror or exc})") from None
    return path


# ---------------------------------------------------------------------------------------------------------------
# printing


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if _is_share(metric):
        return f"{value:.1%}"
    if metric.endswith("_min"):
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _fmt_diff(metric: str, row: dict[str, Any], *, lower_is_better: bool | None = None) -> str:
    if _is_share(metric):
        d, text = row.get("diff_pp"), "{:+.1f} pp"
    else:
        d, text = row.get("diff"), "{:+.1f}" if metric.endswith("_min") else "{:+,.0f}"
    if d is None:
        if metric == "share" and (row.get("share_a") is None) != (row.get("share_b") is None):
            return "only in A" if row.get("share_b") is None else "only in B"
        return "–"
    s = text.format(d)
    if lower_is_better is None or abs(d) < 1e-9:
        return s
    good = (d < 0) == lower_is_better
    return f"[{'green' if good else 'red'}]{s}[/]"


def _better(metric: str) -> bool | None:
    """True where lower is better, False where higher is, None where neither."""
    if _is_share(metric):
        return False
    if metric.endswith("_min") or metric in ("unreachable", "people_by_mode.none"):
        return True
    return None


def comparison_tables(result: dict[str, Any], *, limit: int = 40) -> list[Table]:
    """Rich tables of a comparison: KPIs and costs, then access by group, zone and (changed) area, per year."""
    label_a, label_b = _label(result.get("a", {}), "A"), _label(result.get("b", {}), "B")
    tables = []
    for year, rows in result.get("kpis", {}).items():
        t = Table(title=f"Planned KPIs {year}: {label_a} vs {label_b}", title_justify="left")
        for col in ("KPI", "A", "B", "B − A"):
            t.add_column(col, justify="left" if col == "KPI" else "right", no_wrap=col == "KPI")
        for r in rows:
            m = r["metric"]
            t.add_row(m, _fmt(m, r["a"]), _fmt(m, r["b"]), _fmt_diff(m, r, lower_is_better=_better(m)))
        tables.append(t)
    if result.get("costs"):
        t = Table(title="Annual cost of the plans", title_justify="left")
        for col in ("cost", "year", "A", "B", "B − A"):
            t.add_column(col, justify="left" if col in ("cost", "year") else "right")
        for r in result["costs"]:
            t.add_row(r["key"], r["year"] or "", _fmt("cost", r["a"]), _fmt("cost", r["b"]),
                      _fmt_diff("cost", r, lower_is_better=True))  # fmt: skip
        tables.append(t)
    heads = {"groups": "group", "zones": "zone", "areas": "area"}
    for section, head in heads.items():
        for year, rows in result.get(section, {}).items():
            if not rows:
                continue
            shown = [r for r in rows if r["changed"]] if section == "areas" else rows
            title = f"Share meeting the standard by {head}, {year}"
            if section == "areas":
                title = f"Areas where access changed, {year}: {len(shown)} of {len(rows)}"
            t = Table(title=title, title_justify="left")
            for col in (head, "people A", "people B", "A", "B", "B − A"):
                t.add_column(col, justify="left" if col == head else "right", no_wrap=col == head)
            for r in shown[:limit]:
                t.add_row(r["key"], _fmt("people", r["population_a"]), _fmt("people", r["population_b"]),
                          _fmt("share", r["share_a"]), _fmt("share", r["share_b"]),
                          _fmt_diff("share", r, lower_is_better=False))  # fmt: skip
            if len(shown) > limit:
                t.caption = f"{len(shown) - limit} more in the written comparison"
            elif not shown:
                t.caption = "access is unchanged in every area"
            tables.append(t)
    return tables


def _label(meta: dict[str, Any], side: str) -> str:
    name = meta.get("name") or meta.get("scenario")
    return f"{side} ({name})" if name else side
