"""Runs, their results and comparisons (mounted under ``/api/v1``).

- ``POST /scenarios/{id}/runs`` (planner): queue a run of the scenario (202, ``Location: /api/v1/runs/{id}``);
- ``GET /scenarios/{id}/runs``, ``GET /runs/{id}`` (viewer): status, progress (%), stage, error, attempts, KPIs;
- ``DELETE /runs/{id}`` (planner): cancel a queued or running run (409 once it has finished);
- results of a succeeded run (viewer; 409 before): ``/runs/{id}/plan`` (plan.json), ``/timetable.csv``,
  ``/layers.gpkg``, ``/layers/{layer}.geojson``, ``/map`` (the Leaflet map) and ``/map.png`` (the map as an
  image, drawn from the result layers on first request for a run that predates it); a roadmap's
  ``/roadmap`` (roadmap.json), ``/roadmap.png`` and ``/timeline.md``;
- ``GET /compare?runs=a,b[,c...]`` (viewer): the runs' KPIs side by side and, for each run after the first, its
  comparison (:func:`service.plans.compare.compare_plans`) with the first (``against=first``) or the previous run.

Every lookup filters by the caller's organisation: a foreign id answers 404, exactly like a missing one.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.api.auth import Principal
from service.api.deps import DB, Planner, Services, Svc, Viewer
from service.api.regions import utc
from service.api.responses import errors
from service.errors import BadRequestError, ConflictError, NotFoundError
from service.runs.worker import rowcount
from service.store.db import Region, Run, Scenario, now

router = APIRouter(tags=["runs"])

FINISHED = ("succeeded", "failed", "cancelled")
MAX_COMPARE = 10


class RunOut(BaseModel):
    """A run: its state, progress and, once succeeded, a few KPIs and the links to its results."""

    id: str
    scenario_id: str
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    progress: float = Field(description="percent, 0 to 100")
    stage: str
    error: str | None = Field(description="why the run failed (or why an attempt was lost and it was re-queued)")
    attempts: int
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    summary: dict[str, Any]
    trigger: Literal["api", "batch"] = Field(description="who queued it: a user (api) or the nightly batch")
    batch_id: str | None = Field(description="the nightly batch that computed it (see /batches/{id})")
    links: dict[str, str]


def run_out(request: Request, run: Run) -> RunOut:
    links = {"self": request.url_for("get_run", run_id=run.id).path}
    if run.status == "succeeded":
        for name in ("plan", "timetable", "layers_gpkg", "map", "map_png"):
            links[name] = request.url_for(f"run_{name}", run_id=run.id).path
        links["layer"] = links["self"] + "/layers/{layer}.geojson"
    return RunOut(
        id=run.id, scenario_id=run.scenario_id, status=run.status, progress=round(run.progress, 1),  # type: ignore[arg-type]
        stage=run.stage, error=run.error, attempts=run.attempts, worker=run.worker, created_at=utc(run.created_at),
        started_at=utc(run.started_at), finished_at=utc(run.finished_at), summary=run.summary or {},
        trigger=run.trigger or "api", batch_id=run.batch_id, links=links,  # type: ignore[arg-type]
    )  # fmt: skip


def _scenario(session: Session, who: Principal, scenario_id: str) -> Scenario:
    sc = session.scalar(select(Scenario).where(Scenario.id == scenario_id, Scenario.org_id == who.org_id))
    if sc is None:
        raise NotFoundError(f"scenario {scenario_id!r} not found")
    return sc


def _run(session: Session, who: Principal, run_id: str) -> Run:
    run = session.scalar(select(Run).where(Run.id == run_id, Run.org_id == who.org_id))
    if run is None:
        raise NotFoundError(f"run {run_id!r} not found")
    return run


# ---------------------------------------------------------------------------------------------------------------
# runs


@router.post("/scenarios/{scenario_id}/runs", status_code=202, response_model=RunOut, responses=errors(404, 409, 422))
def create_run(scenario_id: str, request: Request, response: Response, who: Planner, session: DB, svc: Svc) -> RunOut:
    """Queue a run of the scenario (its current body, validated again); poll ``GET /runs/{id}``."""
    from service.plans.scenario import Scenario as ScenarioSpec
    from service.store.regions import check_name

    sc = _scenario(session, who, scenario_id)
    spec = ScenarioSpec.parse(sc.body, source=f"scenario {sc.name!r}")  # ScenarioError: 422 (service.api.app)
    region = session.scalar(select(Region).where(Region.org_id == who.org_id, Region.name == spec.region))
    try:
        on_disk = (svc.files.regions_dir(who.org_id) / check_name(spec.region) / "region.json").is_file()
    except ValueError:
        on_disk = False
    if region is None or not on_disk:
        known = session.scalars(select(Region.name).where(Region.org_id == who.org_id).order_by(Region.name)).all()
        raise ConflictError(f"region: the scenario's region {spec.region!r} does not exist (any more) in your "
                                 f"organisation; its regions are: {', '.join(known) or 'none'}")  # fmt: skip
    run = Run(org_id=who.org_id, scenario_id=sc.id, body=sc.body, status="queued", progress=0.0, stage="queued",
              attempts=0, summary={})  # fmt: skip
    session.add(run)
    session.commit()
    if svc.executor is not None:
        svc.executor.submit(run.id)
    out = run_out(request, run)
    response.headers["Location"] = out.links["self"]
    return out


@router.get("/scenarios/{scenario_id}/runs", response_model=list[RunOut], responses=errors(404))
def list_runs(
    scenario_id: str,
    request: Request,
    who: Viewer,
    session: DB,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[RunOut]:
    """The scenario's runs, newest first."""
    _scenario(session, who, scenario_id)
    runs = session.scalars(
        select(Run).where(Run.scenario_id == scenario_id, Run.org_id == who.org_id)
        .order_by(Run.created_at.desc(), Run.id).limit(limit)
    )  # fmt: skip
    return [run_out(request, r) for r in runs]


@router.get("/runs/{run_id}", response_model=RunOut, responses=errors(404))
def get_run(run_id: str, request: Request, who: Viewer, session: DB) -> RunOut:
    """Status, progress (%), stage, error reason, attempts, timestamps and (once succeeded) KPIs of a run."""
    return run_out(request, _run(session, who, run_id))


@router.delete("/runs/{run_id}", response_model=RunOut, responses=errors(404, 409))
def cancel_run(run_id: str, request: Request, who: Planner, session: DB, svc: Svc) -> RunOut:
    """Cancel a queued or running run (its worker is stopped); 409 when it has already finished."""
    run = _run(session, who, run_id)
    done = rowcount(session.execute(
        update(Run).where(Run.id == run.id, Run.status.in_(("queued", "running")))
        .values(status="cancelled", stage="cancelled", finished_at=now(), error="cancelled by a user")
    ))  # fmt: skip
    session.commit()
    session.refresh(run)
    if not done:
        raise ConflictError(f"run {run_id!r} has already finished ({run.status}); only queued or running runs "
                                 "can be cancelled")  # fmt: skip
    if svc.executor is not None:
        svc.executor.cancel(run.id)
    return run_out(request, run)


# ---------------------------------------------------------------------------------------------------------------
# results


class FileCache:
    """Small in-process LRU of file contents keyed by (path, mtime, size), bounded in bytes."""

    def __init__(self, max_bytes: int = 64 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._items: OrderedDict[tuple[str, int, int, str], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, path: Path, variant: str) -> tuple[str, int, int, str]:
        st = path.stat()
        return (str(path), st.st_mtime_ns, st.st_size, variant)

    def peek(self, path: Path, variant: str = "") -> bytes | None:
        """The cached bytes of ``path`` when present and unchanged, else None (never reads the file)."""
        key = self._key(path, variant)
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def get(self, path: Path, variant: str = "", load: Any = None) -> bytes:
        """The bytes of ``path`` (or ``load(path)`` for a derived ``variant``), from the cache when unchanged."""
        data = self.peek(path, variant)
        if data is not None:
            return data
        key = self._key(path, variant)
        data = load(path) if load else path.read_bytes()
        if len(data) <= self.max_bytes // 4:
            with self._lock:
                if key not in self._items:
                    self._items[key] = data
                    self.size += len(data)
                while self.size > self.max_bytes and self._items:
                    _, old = self._items.popitem(last=False)
                    self.size -= len(old)
        return data


cache = FileCache()
#: (organisation, run) -> result folder of runs seen succeeded; a succeeded run never changes, so the hot
#: ``/plan`` path needs no database query (a deleted run's folder is gone: the entry is then dropped).
_succeeded: dict[tuple[str, str], Path] = {}
_MAX_SUCCEEDED = 100_000


def _results(session: Session, who: Principal, run_id: str, svc: Services) -> tuple[Run, Path]:
    """The run and its result folder; 404 when not visible, 409 unless it succeeded."""
    run = _run(session, who, run_id)
    if run.status != "succeeded" or not run.result_path:
        hints = {"queued": "it is queued", "running": f"it is running ({run.progress:.0f} %, {run.stage})",
                 "failed": f"it failed: {run.error}", "cancelled": "it was cancelled"}  # fmt: skip
        hint = hints.get(run.status, run.status)
        raise ConflictError(f"run {run_id!r} has no results: {hint}")
    folder = svc.files.root / run.result_path
    if not folder.is_dir():
        raise NotFoundError(f"the result files of run {run_id!r} are missing from the file store")
    if len(_succeeded) >= _MAX_SUCCEEDED:
        _succeeded.clear()
    _succeeded[(who.org_id, run.id)] = folder
    return run, folder


def _file(folder: Path, name: str, what: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise NotFoundError(f"this run has no {what} ({name})")
    return path


def _result(media: str, description: str, schema: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` of a result route: its file as ``media`` (200); 404 without it, 409 before the run succeeded."""
    binary = {"type": "string", "format": "binary"}
    return {200: {"content": {media: {"schema": schema or binary}}, "description": description}, **errors(404, 409)}


def _plan_bytes(folder: Path) -> bytes:
    return cache.get(_file(folder, "plan.json", "plan"))


@router.get("/runs/{run_id}/plan", name="run_plan", response_class=Response,
            responses=_result("application/json", "plan.json of the run", {"type": "object"}))  # fmt: skip
async def run_plan(run_id: str, who: Viewer, svc: Svc) -> Response:
    """The plan (``plan.json``): decisions, KPIs, costs, statutory checks, assumptions and solver details."""
    folder = _succeeded.get((who.org_id, run_id))
    if folder is not None:  # the hot path: a known succeeded run whose plan is cached, served on the event loop
        try:
            data = cache.peek(folder / "plan.json")
        except FileNotFoundError:
            _succeeded.pop((who.org_id, run_id), None)
            data = None
        if data is not None:
            return Response(data, media_type="application/json")

    def load() -> bytes:
        with svc.sessions() as session:
            return _plan_bytes(_results(session, who, run_id, svc)[1])

    return Response(await run_in_threadpool(load), media_type="application/json")


@router.get("/runs/{run_id}/timetable.csv", name="run_timetable", response_class=FileResponse,
            responses=_result("text/csv", "the bookmobile timetable", {"type": "string"}))  # fmt: skip
def run_timetable(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """The bookmobile timetable (one row per stop visit); 404 when the plan has no bookmobile route."""
    _, folder = _results(session, who, run_id, svc)
    path = folder / "timetable.csv"
    if not path.is_file():
        raise NotFoundError("this plan has no bookmobile timetable: it serves no bookmobile stop")
    return FileResponse(path, media_type="text/csv; charset=utf-8", filename=f"{run_id}-timetable.csv")


_CALENDAR = re.compile(r"^[A-Za-z0-9_.-]{1,80}\.ics$")


class CalendarsOut(BaseModel):
    """The file names of a run's vehicle calendars (``GET /runs/{id}/calendars/{name}``)."""

    calendars: list[str]


def _calendars(folder: Path) -> list[str]:
    cal = folder / "calendars"
    return sorted(p.name for p in cal.glob("*.ics") if p.is_file()) if cal.is_dir() else []


@router.get("/runs/{run_id}/calendars", name="run_calendars", response_model=CalendarsOut, responses=errors(404, 409))
def run_calendars(run_id: str, who: Viewer, session: DB, svc: Svc) -> CalendarsOut:
    """The bookmobile's calendars (one iCalendar file per vehicle, every stop visit an event); empty without one."""
    _, folder = _results(session, who, run_id, svc)
    return CalendarsOut(calendars=_calendars(folder))


@router.get("/runs/{run_id}/calendars/{name}", name="run_calendar", response_class=FileResponse,
            responses=_result("text/calendar", "one vehicle's calendar", {"type": "string"}))  # fmt: skip
def run_calendar(run_id: str, name: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """One vehicle's calendar (``.ics``: its stop visits with their weekly or fortnightly recurrence)."""
    _, folder = _results(session, who, run_id, svc)
    if not _CALENDAR.match(name) or name not in _calendars(folder):
        raise NotFoundError(f"this run has no calendar {name!r}")
    return FileResponse(folder / "calendars" / name, media_type="text/calendar; charset=utf-8",
                        filename=f"{run_id}-{name}")  # fmt: skip


@router.get("/runs/{run_id}/layers.gpkg", name="run_layers_gpkg", response_class=FileResponse,
            responses=_result("application/geopackage+sqlite3", "layers"))  # fmt: skip
def run_layers_gpkg(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """Every result layer in one GeoPackage (opens in QGIS)."""
    _, folder = _results(session, who, run_id, svc)
    path = _file(folder, "layers.gpkg", "result layers")
    return FileResponse(path, media_type="application/geopackage+sqlite3", filename=f"{run_id}-layers.gpkg")


def _layer_names(path: Path) -> list[str]:
    import pyogrio

    data = cache.get(path, "layers", lambda p: json.dumps([str(n) for n, _ in pyogrio.list_layers(p)]).encode())
    names: list[str] = json.loads(data)
    return names


def _geojson(layer: str) -> Any:
    def load(path: Path) -> bytes:
        import pyogrio

        frame = pyogrio.read_dataframe(path, layer=layer)
        if frame.crs is not None and frame.crs.to_epsg() != 4326:
            frame = frame.to_crs(4326)
        text: str = frame.to_json(na="null", drop_id=True)
        return text.encode()

    return load


@router.get("/runs/{run_id}/layers/{layer}.geojson", name="run_layer", response_class=Response,
            responses=_result("application/geo+json", "a layer", {"type": "object"}))  # fmt: skip
def run_layer(run_id: str, layer: str, who: Viewer, session: DB, svc: Svc) -> Response:
    """One result layer as GeoJSON (EPSG:4326); 404 listing the available layers for an unknown name."""
    _, folder = _results(session, who, run_id, svc)
    path = _file(folder, "layers.gpkg", "result layers")
    names = _layer_names(path)
    if layer not in names:  # only names read from the GeoPackage reach the reader, never the client's string
        raise NotFoundError(f"unknown layer {layer!r}; this run has: {', '.join(names)}")
    known = names[names.index(layer)]
    return Response(cache.get(path, f"geojson:{known}", _geojson(known)), media_type="application/geo+json")


@router.get("/runs/{run_id}/map", name="run_map", response_class=FileResponse,
            responses=_result("text/html", "the interactive map", {"type": "string"}))  # fmt: skip
def run_map(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """The interactive Leaflet map of the plan (a self-contained HTML page)."""
    _, folder = _results(session, who, run_id, svc)
    return FileResponse(_file(folder, "map.html", "map"), media_type="text/html; charset=utf-8")


@router.get("/runs/{run_id}/map.png", name="run_map_png", response_class=FileResponse,
            responses=_result("image/png", "the map as a PNG image"))  # fmt: skip
def run_map_png(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """The map of the plan as a 1600 × 1200 PNG with legend, scale bar, north arrow and attribution."""
    from service.plans.mapimage import ensure_map_png

    _, folder = _results(session, who, run_id, svc)
    if not (folder / "map.png").is_file():  # a run from before map.png: drawn from its layers, then kept
        _file(folder, "layers.gpkg", "result layers")
    return FileResponse(ensure_map_png(folder), media_type="image/png", filename=f"{run_id}-map.png",
                        content_disposition_type="inline")  # fmt: skip


@router.get("/runs/{run_id}/roadmap", name="run_roadmap", response_class=FileResponse,
            responses=_result("application/json", "the roadmap", {"type": "object"}))  # fmt: skip
def run_roadmap(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """A roadmap run's ``roadmap.json``: per year the decisions, costs, KPIs and milestones, and the solver's
    objective, bound and gap (404 for a single-year plan)."""
    _, folder = _results(session, who, run_id, svc)
    return FileResponse(_file(folder, "roadmap.json", "roadmap"), media_type="application/json")


@router.get("/runs/{run_id}/roadmap.png", name="run_roadmap_png", response_class=FileResponse,
            responses=_result("image/png", "the roadmap's Gantt chart"))  # fmt: skip
def run_roadmap_png(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """A roadmap run's Gantt chart: every branch's state by year, the bookmobile, the running cost and the path."""
    _, folder = _results(session, who, run_id, svc)
    return FileResponse(_file(folder, "roadmap.png", "roadmap chart"), media_type="image/png",
                        filename=f"{run_id}-roadmap.png", content_disposition_type="inline")  # fmt: skip


@router.get("/runs/{run_id}/timeline.md", name="run_timeline", response_class=FileResponse,
            responses=_result("text/markdown", "the roadmap's timeline", {"type": "string"}))  # fmt: skip
def run_timeline(run_id: str, who: Viewer, session: DB, svc: Svc) -> FileResponse:
    """A roadmap run's readable timeline, year by year (Markdown)."""
    _, folder = _results(session, who, run_id, svc)
    return FileResponse(_file(folder, "timeline.md", "roadmap timeline"), media_type="text/markdown; charset=utf-8")


# ---------------------------------------------------------------------------------------------------------------
# compare


class ComparedRun(BaseModel):
    """A compared run: its scenario, region, objective, when it finished and its KPI summary."""

    id: str
    scenario_id: str
    scenario: str | None
    region: str | None
    objective: str | None
    finished_at: datetime | None
    summary: dict[str, Any]


class CompareOut(BaseModel):
    """The runs side by side and, for each run after the first, its comparison (B − A) with ``against``."""

    against: Literal["first", "previous"]
    runs: list[ComparedRun]
    comparisons: list[dict[str, Any]] = Field(description="service.plans.compare.compare_plans, with run ids")


@router.get("/compare", response_model=None, responses={200: {"model": CompareOut}, **errors(404, 409, 422)})
def compare(
    who: Viewer,
    session: DB,
    svc: Svc,
    runs: Annotated[str, Query(description="two or more run ids, comma-separated", examples=["a1b2,c3d4"])],
    against: Annotated[Literal["first", "previous"], Query(description="compare each run with")] = "first",
) -> dict[str, Any]:
    """The runs' KPIs side by side, and each run after the first compared (B − A) with the first or previous one."""
    from service.plans.compare import CompareError, compare_plans

    ids = list(dict.fromkeys(x.strip() for x in runs.split(",") if x.strip()))
    if not 2 <= len(ids) <= MAX_COMPARE:
        raise BadRequestError(f"runs: give 2 to {MAX_COMPARE} distinct run ids, comma-separated; got {len(ids)}")
    found = {r.id: r for r in session.scalars(select(Run).where(Run.id.in_(ids), Run.org_id == who.org_id))}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(f"run(s) not found: {', '.join(missing)}")
    unfinished = [f"{i} ({found[i].status})" for i in ids if found[i].status != "succeeded"]
    if unfinished:
        raise ConflictError(f"only succeeded runs can be compared; not: {', '.join(unfinished)}")
    plans = {i: json.loads(_plan_bytes(_results(session, who, i, svc)[1])) for i in ids}
    scenario_ids = {r.scenario_id for r in found.values()}
    names = {i: n for i, n in session.execute(select(Scenario.id, Scenario.name).where(Scenario.id.in_(scenario_ids)))}
    out: dict[str, Any] = {
        "against": against,
        "runs": [
            {
                "id": i,
                "scenario_id": found[i].scenario_id,
                "scenario": names.get(found[i].scenario_id),
                "region": plans[i].get("region"),
                "objective": plans[i].get("objective"),
                "finished_at": utc(found[i].finished_at),
                "summary": found[i].summary,
            }
            for i in ids
        ],
        "comparisons": [],
    }
    for k in range(1, len(ids)):
        a, b = ids[0 if against == "first" else k - 1], ids[k]
        try:
            result = compare_plans(plans[a], plans[b])
        except CompareError as exc:
            raise ConflictError(f"runs {a} and {b} cannot be compared: {exc}") from None
        result["a"]["run_id"], result["b"]["run_id"] = a, b
        out["comparisons"].append(result)
    return out
