"""Regions (upload or register, list, show, delete) and scenarios (CRUD) of the HTTP API.

Regions: ``POST /regions`` (admin) takes either a ``multipart/form-data`` upload of the raw files — ``osm``,
``population``, ``branches`` and optionally ``population_table``, ``settlements`` and ``speeds``, with the form
fields ``name`` and the field choices of ``branchnet region import`` — or a JSON body
``{"name": ..., "paths": {"osm": "/server/path", ...}, ...}`` that registers files already on the server (under
the shared data folder or ``<data_dir>/sources``). Uploads are streamed to a fresh folder of the file store under
names the service makes up (``osm.osm.pbf``, ``population.geojson``, ...): a client's file name only lends its
extension, checked against an allow-list, and never reaches the file system. Each file may be at most
``max_upload_mb``. The import (:func:`geodata.region.prepare_region`) runs in a worker thread; the region is
saved atomically and a :class:`service.store.db.Region` row records its summary and the current network's KPIs. A
failed import stores nothing.

Everything is scoped to the caller's organisation: another organisation's id answers 404, exactly like a missing
one.
"""

from __future__ import annotations

import logging
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from geodata.errors import GeodataError
from geodata.region import prepare_region
from service.api.auth import Principal
from service.api.bodies import inline_refs, json_body, media_name
from service.api.deps import DB, Admin, Services, Svc, Viewer
from service.api.responses import errors
from service.api.uploads import (
    FILE_TYPES,
    REQUIRED_FILES,
    TEXT_FIELDS,
    ImportRequest,
    RegisterRegion,
    check_speeds,
    read_registration,
    read_upload,
)
from service.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    UnsupportedMediaError,
)
from service.plans.report import region_summary
from service.store.db import Region
from service.store.db import Scenario as ScenarioRow
from service.store.regions import store_region

router = APIRouter()
log = logging.getLogger("branchnet.api.regions")
ACTIVE_RUNS = ("queued", "running")
# Imports are CPU- and memory-heavy: one at a time per process (this also keeps warnings capture unshared).
_IMPORT_LOCK = threading.Lock()


class RegionOut(BaseModel):
    """A region: its summary (sizes, branches, networks, import warnings) and the current network's KPIs."""

    id: str
    name: str
    created_at: str | None = Field(description="ISO 8601, UTC")
    summary: dict[str, Any]
    kpis: dict[str, Any] = Field(description="overall, by group and by area (only overall in the list)")


def _region_out(row: Region, *, detail: bool) -> dict[str, Any]:
    summary = dict(row.summary or {})
    kpis = summary.pop("kpis", None) or {}
    if not detail:
        kpis = {"overall": kpis["overall"]} if "overall" in kpis else {}
        summary.pop("branch_list", None)
        summary.pop("networks", None)
        summary.pop("digests", None)
    return {"id": row.id, "name": row.name, "created_at": iso(row.created_at), "summary": summary, "kpis": kpis}


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware datetime (SQLite hands back naive datetimes of the UTC times stored): what the API
    answers is RFC 3339, with its offset, on every database."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC, with its offset."""
    aware = utc(value)
    return aware.isoformat() if aware is not None else None


def own_region(session: Session, who: Principal, region_id: str) -> Region:
    row = session.get(Region, region_id)
    if row is None or row.org_id != who.org_id:
        raise NotFoundError(f"region {region_id!r} not found")
    return row


def region_by_name(session: Session, org_id: str, name: str) -> Region | None:
    row: Region | None = session.scalar(select(Region).where(Region.org_id == org_id, Region.name == name))
    return row


def run_import(svc: Services, session: Session, who: Principal, req: ImportRequest) -> Region:
    """Prepare, save and register the region (blocking: call it in a worker thread)."""
    try:
        if region_by_name(session, who.org_id, req.name) is not None:
            raise ConflictError(f"a region named {req.name!r} already exists in your organisation; "
                                     "delete it first or choose another name")  # fmt: skip
        session.rollback()  # end the read transaction: SQLite must not hold it during the import
        sources = req.sources()
        if sources.speeds:
            check_speeds(req, Path(sources.speeds))
        with _IMPORT_LOCK, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                region = prepare_region(req.name, sources, cache_dir=svc.settings.cache_dir)
            except GeodataError as exc:  # the files' fault; anything else is a bug (an internal error, 500)
                raise BadRequestError(req.explain(str(exc))) from None
            if req.upload_dir is None:  # registered server files stay: the nightly batch re-reads them
                region.meta["source_paths"] = {k: v for k, v in vars(sources).items() if k in FILE_TYPES and v}
            region.meta["sources"] = req.public_sources(sources)  # region.json never shows upload paths
            summary = region_summary(region)
        notes = [req.explain(str(w.message)) for w in caught
                 if not issubclass(w.category, DeprecationWarning | FutureWarning)]  # fmt: skip
        summary["warnings"] = list(dict.fromkeys(notes))[:100]
        row = store_region(session, svc.files, who.org_id, region, summary)
        log.info("region imported", extra={"fields": {"org": who.org_id, "region": row.id, "name": row.name}})
        return row
    finally:
        if req.upload_dir is not None:
            svc.files.remove(req.upload_dir)


_FILE_DOC = {f: {"type": "string", "format": "binary", "description": ", ".join(e)} for f, e in FILE_TYPES.items()}
_UPLOAD_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", *REQUIRED_FILES],
                    "properties": {
                        **_FILE_DOC,
                        **{f: {"type": "string"} for f in TEXT_FIELDS},
                    },
                }
            },
            "application/json": {"schema": inline_refs(RegisterRegion.model_json_schema())},
        },
    }
}


@router.post("/regions", status_code=201, tags=["regions"], openapi_extra=_UPLOAD_DOC, response_model=RegionOut,
             responses=errors(409, 413, 415, 422))  # fmt: skip
async def create_region(request: Request, who: Admin, svc: Svc, session: DB, response: Response) -> dict[str, Any]:
    """Import a region from uploaded files (multipart) or register server files (JSON); admin only.

    Returns the region with its summary and the current network's KPIs (201). 413 when a file exceeds
    ``max_upload_mb``, 422 for unreadable inputs (the message names the field), 409 when the name is taken.
    """
    await run_in_threadpool(session.close)  # hold no connection or transaction while the body streams in
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        req = await read_upload(request, svc.files, svc.settings.max_upload_mb)
    elif media == "application/json" or media.endswith("+json"):
        req = read_registration(await json_body(request), svc)
    else:
        raise UnsupportedMediaError("upload the files as multipart/form-data, or register server files with a JSON "
                                 f"body (application/json); not {media_name(media)}")  # fmt: skip
    row = await run_in_threadpool(run_import, svc, session, who, req)
    response.headers["Location"] = f"{request.url.path}/{row.id}"
    return _region_out(row, detail=True)


@router.get("/regions", tags=["regions"], response_model=list[RegionOut])
def list_regions(who: Viewer, session: DB) -> list[dict[str, Any]]:
    """The organisation's regions, with their overall current-network KPIs."""
    rows = session.scalars(select(Region).where(Region.org_id == who.org_id).order_by(Region.created_at, Region.name))
    return [_region_out(r, detail=False) for r in rows]


@router.get("/regions/{region_id}", tags=["regions"], response_model=RegionOut, responses=errors(404))
def get_region(region_id: str, who: Viewer, session: DB) -> dict[str, Any]:
    """A region: summary, branches, networks and the current network's KPIs (overall, by group and by area)."""
    return _region_out(own_region(session, who, region_id), detail=True)


@router.delete("/regions/{region_id}", status_code=204, tags=["regions"], responses=errors(404, 409))
def delete_region(region_id: str, who: Admin, session: DB, svc: Svc) -> Response:
    """Delete a region and its files; 409 while scenarios use it (delete them first)."""
    row = own_region(session, who, region_id)
    used = session.scalar(select(func.count()).select_from(ScenarioRow).where(ScenarioRow.region_id == row.id))
    if used:
        raise ConflictError(f"region {row.name!r} is used by {used} scenario(s); delete them first")
    session.delete(row)
    session.commit()
    svc.files.remove(svc.files.regions_dir(who.org_id) / row.name)
    return Response(status_code=204)
