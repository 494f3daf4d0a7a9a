"""The nightly batches' morning reports (mounted under ``/api/v1``; viewer role).

- ``GET /batches``: the latest batches that touched the caller's organisation, newest first, with their counts;
- ``GET /batches/{id}``: one batch's report (``batch-report.json``) cut to the caller's organisation: its own
  scenarios, its own changes, and counts recomputed over them;
- ``GET /batches/{id}/report.html``: the same, as the readable page, with each recomputed scenario's map.

A batch that ran none of the caller's scenarios answers 404, exactly like a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from service.api.auth import Principal
from service.api.deps import DB, Svc, Viewer
from service.api.regions import utc
from service.api.responses import errors
from service.batch.report import for_org, map_thumbnails, render_html
from service.errors import NotFoundError
from service.store.db import Batch

router = APIRouter(tags=["batches"])
#: How many recent batches ``GET /batches`` looks through.
SCAN = 500


class BatchMeta(BaseModel):
    """A batch: its state, exit code, times and links."""

    id: str
    status: str
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str] = Field(description="self (the report as JSON) and html (the readable page)")


class BatchListed(BatchMeta):
    """A batch in the list: its counts for your organisation, its changes and its wall time."""

    counts: dict[str, Any]
    changes: int = Field(description="how many of your scenarios' plans changed")
    wall_s: float | None


class BatchReport(BatchMeta):
    """A batch's report for your organisation (``batch-report.json`` cut to it: counts, scenarios, changes)."""

    model_config = ConfigDict(extra="allow")

    scenarios: list[dict[str, Any]]
    changes: list[dict[str, Any]]


def _meta(row: Batch) -> dict[str, Any]:
    return {"id": row.id, "status": row.status, "exit_code": row.exit_code, "started_at": utc(row.started_at),
            "finished_at": utc(row.finished_at), "links": {"self": f"/api/v1/batches/{row.id}",
                                                       "html": f"/api/v1/batches/{row.id}/report.html"}}  # fmt: skip


def _report(session: DB, who: Principal, batch_id: str) -> tuple[Batch, dict[str, Any]]:
    row = session.get(Batch, batch_id)
    mine = for_org(row.report or {}, who.org_id) if row is not None else None
    if row is None or mine is None:
        raise NotFoundError(f"batch {batch_id!r} not found")
    return row, mine


@router.get("/batches", response_model=None, responses={200: {"model": list[BatchListed]}})
def list_batches(who: Viewer, session: DB, limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[dict[str, Any]]:
    """The latest batches that ran or checked any of your organisation's scenarios, newest first."""
    out = []
    for row in session.scalars(select(Batch).order_by(Batch.started_at.desc(), Batch.id).limit(SCAN)):
        mine = for_org(row.report or {}, who.org_id)
        if mine is None:
            continue
        out.append({**_meta(row), "counts": mine["counts"], "changes": len(mine["changes"]),
                    "wall_s": mine.get("wall_s")})  # fmt: skip
        if len(out) >= limit:
            break
    return out


@router.get("/batches/{batch_id}", response_model=None, responses={200: {"model": BatchReport}, **errors(404)})
def get_batch(batch_id: str, who: Viewer, session: DB) -> dict[str, Any]:
    """The batch's report for your organisation: counts, every one of your scenarios, and what changed."""
    row, mine = _report(session, who, batch_id)
    return {**_meta(row), **mine}


@router.get("/batches/{batch_id}/report.html", response_class=HTMLResponse, responses=errors(404))
def batch_html(batch_id: str, who: Viewer, session: DB, svc: Svc) -> HTMLResponse:
    """The batch's report for your organisation as a readable page (no script, no external resource)."""
    _, mine = _report(session, who, batch_id)
    return HTMLResponse(render_html(mine, map_thumbnails(session, svc.files, mine["scenarios"], who.org_id)))
