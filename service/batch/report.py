"""The morning report of a batch: ``batch-report.json`` and a readable ``batch-report.html`` (offline, no CDN).

It counts the scenarios (total, skipped, recomputed, succeeded, failed, retried), the wall time, the summed task
time and the parallelism achieved; per scenario its status, why it ran (or why not), attempts, stage timings,
caches, worker, peak memory and error; and the *changes that matter to a planner*: scenarios whose decisions or
headline KPIs (coverage, cost, branches kept) moved against their previous run, by how much, with links to both
results. Every value from a user (scenario, region, organisation names, errors) is escaped in the HTML.

Each recomputed scenario shows its map as a thumbnail embedded in the page (a ``data:`` URI): the page works
opened from disk and from ``/api/v1/batches/{id}/report.html`` alike, and needs no key in a URL.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.db import Run
from service.store.files import FileStore, atomic_write

API = "/api/v1"
log = logging.getLogger("branchnet.batch")
#: A change matters when a decision moved, coverage moved by this much (share) or the cost by this share.
COVERAGE_STEP = 0.001
COST_STEP = 0.005
#: The size (CSS px) at which a scenario's map thumbnail is shown.
THUMB_WIDTH, THUMB_HEIGHT = 320, 240


def _plan(session: Session, files: FileStore, run_id: str | None) -> dict[str, Any] | None:
    if run_id is None:
        return None
    run = session.get(Run, run_id)
    if run is None or not run.result_path:
        return None
    path = files.root / run.result_path / "plan.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def headline(plan: dict[str, Any]) -> dict[str, float]:
    """Coverage (worst optimised year), annual cost and branches kept of a plan."""
    years = plan.get("optimised_for") or plan.get("years") or []
    shares = [plan["kpis"][y]["plan"]["covered_share"] for y in years if y in plan.get("kpis", {})]
    branches = plan.get("decisions", {}).get("branches", [])
    return {
        "covered_share": float(min(shares)) if shares else float("nan"),
        "cost": float(plan.get("costs", {}).get("plan", {}).get("total", float("nan"))),
        "branches_kept": float(sum(1 for b in branches if b.get("decision") != "close")),
        "bookmobile_stops": float(plan.get("decisions", {}).get("bookmobile", {}).get("stops_served", 0)),
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any] | None:
    """What moved between two plans of one scenario, or None when nothing that matters did."""
    a, b = headline(before), headline(after)
    was = {d["branch_id"]: d["decision"] for d in before.get("decisions", {}).get("branches", [])}
    now = {d["branch_id"]: d["decision"] for d in after.get("decisions", {}).get("branches", [])}
    moved = [
        f"{k}: {was.get(k, '-')} -> {now.get(k, '-')}" for k in sorted(set(was) | set(now)) if was.get(k) != now.get(k)
    ]
    kpis = {k: {"before": a[k], "after": b[k], "diff": b[k] - a[k]} for k in a}
    kpis["covered_share"]["diff_pp"] = 100 * (b["covered_share"] - a["covered_share"])
    cost_share = abs(b["cost"] - a["cost"]) / a["cost"] if a["cost"] else 0.0
    matters = (
        bool(moved)
        or abs(b["covered_share"] - a["covered_share"]) >= COVERAGE_STEP
        or cost_share >= COST_STEP
        or a["branches_kept"] != b["branches_kept"]
        or a["bookmobile_stops"] != b["bookmobile_stops"]
    )
    return {"decisions": moved, "kpis": kpis} if matters else None


def build_report(session: Session, files: FileStore, batch_id: str | None, items: list[Any], wall_s: float,
                 options: Any, executor: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """The report's document (module docstring)."""
    from service.plans.outputs import jsonable  # here: GeoPandas comes with it, and `branchnet batch` starts fast

    rows = []
    moved = []
    for item in items:
        links = {}
        if item.run_id:
            links = {"run": f"{API}/runs/{item.run_id}", "plan": f"{API}/runs/{item.run_id}/plan"}
            if item.previous_run:
                links["previous_plan"] = f"{API}/runs/{item.previous_run}/plan"
                links["compare"] = f"{API}/compare?runs={item.previous_run},{item.run_id}"
        rows.append({
            "scenario_id": item.scenario_id, "name": item.scenario_name, "org_id": item.org_id, "org": item.org_name,
            "region": item.region_name, "status": item.status, "reasons": item.reasons, "attempts": item.attempts,
            "retried": item.retried, "run_id": item.run_id, "previous_run": item.previous_run,
            "seconds": round(item.seconds, 3), "stages_s": item.stages_s, "cache": item.cache, "worker": item.worker,
            "peak_rss_mb": item.peak_rss_mb, "error": item.error, "fingerprint": item.fingerprint, "links": links,
        })  # fmt: skip
        if item.status == "succeeded" and item.previous_run:
            before, after = _plan(session, files, item.previous_run), _plan(session, files, item.run_id)
            diff = changes(before, after) if before and after else None
            if diff is not None:
                moved.append({"scenario_id": item.scenario_id, "name": item.scenario_name, "org_id": item.org_id,
                              "org": item.org_name, "region": item.region_name, "run_id": item.run_id,
                              "previous_run": item.previous_run, **diff, "links": links})  # fmt: skip
    executor = dict(executor)
    reimported = executor.pop("reimported", [])
    report = {"batch_id": batch_id, "dry_run": bool(options.dry_run), "options": _options(options),
              "executor": executor, "reimported": reimported, "scenarios": rows, "changes": moved,
              "wall_s": round(wall_s, 3)}  # fmt: skip
    report.update(summarise(rows, wall_s))
    return dict(jsonable(report))


def summarise(rows: list[dict[str, Any]], wall_s: float) -> dict[str, Any]:
    """Counts, summed task time and parallelism of a list of scenario rows (the whole batch, or one organisation's
    share of it)."""
    task_s = sum(float(r.get("seconds") or 0.0) for r in rows)
    peaks = [r["peak_rss_mb"] for r in rows if r.get("peak_rss_mb") is not None]
    counts = {
        "total": len(rows),
        "skipped": sum(r["status"] == "skipped" for r in rows),
        "recomputed": sum(r["status"] in ("succeeded", "failed", "recompute") for r in rows),
        "succeeded": sum(r["status"] == "succeeded" for r in rows),
        "failed": sum(r["status"] == "failed" for r in rows),
        "retried": sum(bool(r.get("retried")) for r in rows),
    }
    return {"counts": counts, "task_s": round(task_s, 3),
            "parallelism": round(task_s / wall_s, 2) if wall_s > 0 else 0.0,
            "peak_rss_mb_max": max(peaks) if peaks else None}  # fmt: skip


def for_org(report: dict[str, Any], org_id: str) -> dict[str, Any] | None:
    """The report as one organisation may see it: its own scenarios only (None when the batch had none)."""
    rows = [r for r in report.get("scenarios", []) if r.get("org_id") == org_id]
    if not rows:
        return None
    out = {k: v for k, v in report.items() if k not in ("scenarios", "changes", "options", "reimported")}
    out["scenarios"] = rows
    out["changes"] = [c for c in report.get("changes", []) if c.get("org_id") == org_id]
    out["reimported"] = [r for r in report.get("reimported", []) if r.get("org_id") == org_id]
    out.update(summarise(rows, float(report.get("wall_s") or 0.0)))
    return out


def _options(options: Any) -> dict[str, Any]:
    keep = ("org", "scenario_ids", "executor", "workers", "scheduler", "force", "dry_run", "retries", "timeout_s")
    return {k: getattr(options, k) for k in keep}


def map_thumbnails(
    session: Session, files: FileStore, rows: list[dict[str, Any]], org_id: str | None = None
) -> dict[str, str]:
    """The map thumbnails (``data:`` URIs) of the runs of the succeeded scenarios in ``rows``, by run id.

    Only runs of ``org_id`` when given. A run computed before ``map.png`` existed has its map drawn from its
    layers (and kept). A map that cannot be drawn is left out with a warning in the log: the report comes first.
    """
    from service.plans.mapimage import thumbnail_uri  # here: matplotlib and GeoPandas come with it

    ids = [r["run_id"] for r in rows if r.get("status") == "succeeded" and r.get("run_id")]
    if not ids:
        return {}
    query = select(Run.id, Run.result_path).where(Run.id.in_(ids), Run.status == "succeeded")
    if org_id is not None:
        query = query.where(Run.org_id == org_id)
    out = {}
    for run_id, result_path in session.execute(query):
        if not result_path:
            continue
        try:
            out[run_id] = thumbnail_uri(files.root / result_path)
        except Exception as exc:  # a thumbnail is decoration: any failure to draw it must not cost the report
            log.warning("no map thumbnail for run %s: %s: %s", run_id, type(exc).__name__, exc)
    return out


def write_report(
    report: dict[str, Any], folder: Path, thumbnails: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Write ``batch-report.json`` and ``batch-report.html`` (with ``thumbnails``, see :func:`render_html`) into
    ``folder``, each atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "batch-report.json", folder / "batch-report.html")
    texts = (json.dumps(report, indent=1, allow_nan=False), render_html(report, thumbnails))
    for path, text in zip(paths, texts, strict=True):
        atomic_write(path, text)
    return paths


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def render_html(report: dict[str, Any], thumbnails: Mapping[str, str] | None = None) -> str:
    """A self-contained page: counts, the changes that matter, then every scenario.

    ``thumbnails`` maps run ids to ``data:image/png`` URIs (:func:`map_thumbnails`); a scenario whose run has one
    shows its map.
    """
    thumbnails = thumbnails or {}
    c = report["counts"]
    head = (f"<p>{c['total']} scenario(s): {c['recomputed']} recomputed ({c['succeeded']} succeeded, {c['failed']} "
            f"failed, {c['retried']} retried), {c['skipped']} skipped. Wall time {report['wall_s']:.1f} s, task time "
            f"{report['task_s']:.1f} s, parallelism {report['parallelism']:.2f}; exit code "
            f"{_e(report.get('exit_code'))}.</p>")  # fmt: skip
    changed = []
    for ch in report.get("changes", []):
        k = ch["kpis"]
        items = "".join(f"<li>{_e(m)}</li>" for m in ch["decisions"])
        changed.append(
            f"<tr><td>{_e(ch['org'])}</td><td>{_e(ch['name'])}</td><td>{_e(ch['region'])}</td>"
            f"<td>{k['covered_share']['before']:.2%} → {k['covered_share']['after']:.2%} "
            f"({k['covered_share']['diff_pp']:+.2f} pp)</td><td>{k['cost']['before']:,.0f} → {k['cost']['after']:,.0f}"
            f"</td><td>{k['branches_kept']['before']:.0f} → {k['branches_kept']['after']:.0f}</td><td><ul>{items}</ul>"
            f'</td><td><a href="{_e(ch["links"].get("compare"))}">compare</a></td></tr>'
        )
    rows = []
    for r in report["scenarios"]:
        stages = ", ".join(f"{_e(k)} {v:.1f} s" for k, v in (r.get("stages_s") or {}).items())
        uri = thumbnails.get(r.get("run_id") or "") if r.get("status") == "succeeded" else None
        thumb = (f'<img src="{_e(uri)}" width="{THUMB_WIDTH}" height="{THUMB_HEIGHT}" alt="map of {_e(r["name"])}">'
                 if uri and uri.startswith("data:image/png;base64,") else "")  # fmt: skip
        rows.append(
            f'<tr class="{_e(r["status"])}"><td>{_e(r["org"])}</td><td>{_e(r["name"])}</td><td>{_e(r["region"])}'
            f"</td><td>{_e(r['status'])}</td><td>{_e('; '.join(r['reasons']))}</td><td>{_e(r['attempts'])}</td>"
            f"<td>{r['seconds']:.1f}</td><td>{stages}</td><td>{_e(r.get('worker'))}</td><td>{_e(r.get('error'))}"
            f"</td><td>{thumb}</td></tr>"
        )
    title = f"branchnet batch {_e(report.get('batch_id') or '(dry run)')}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font:14px sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:4px 6px;vertical-align:top}}tr.failed td{{background:#fde0e0}}tr.skipped td{{color:#777}}</style></head>
<body><h1>{title}</h1>{head}
<h2>Changes that matter</h2>
<table><tr><th>organisation</th><th>scenario</th><th>region</th><th>coverage</th><th>annual cost</th>
<th>branches kept</th><th>decisions</th><th></th></tr>{"".join(changed) or '<tr><td colspan="8">none</td></tr>'}</table>
<h2>Scenarios</h2>
<table><tr><th>organisation</th><th>scenario</th><th>region</th><th>status</th><th>why</th><th>attempts</th>
<th>seconds</th><th>stages</th><th>worker</th><th>error</th><th>map</th></tr>{"".join(rows)}</table>
</body></html>
"""
