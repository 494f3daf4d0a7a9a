"""Scenarios of the HTTP API (create, list, show, replace, delete).

A scenario is the JSON of :class:`service.plans.scenario.Scenario`, validated on every write (422 naming the
field); its ``region`` must be a region of the caller's organisation. ``PUT`` replaces the body and bumps
``version`` (``If-Match: <version>`` makes it conditional). Another organisation's id answers 404, exactly like a
missing one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.api.auth import Principal
from service.api.bodies import inline_refs, json_request
from service.api.deps import DB, Body, Planner, Svc, Viewer
from service.api.regions import ACTIVE_RUNS, iso, region_by_name
from service.api.responses import errors
from service.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    PreconditionFailedError,
)
from service.plans.scenario import Scenario
from service.store.db import Region, Run, now
from service.store.db import Scenario as ScenarioRow

router = APIRouter()


class ScenarioOut(BaseModel):
    """A stored scenario: its body (a planner scenario file's JSON), region and version (also its ETag)."""

    id: str
    name: str
    region: str
    region_id: str
    version: int
    created_at: str | None = Field(description="ISO 8601, UTC")
    updated_at: str | None = Field(description="ISO 8601, UTC")
    body: dict[str, Any]


def _scenario_out(row: ScenarioRow, region_name: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "region": region_name,
        "region_id": row.region_id,
        "version": row.version,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "body": row.body,
    }


def _validate(session: Session, who: Principal, body: Any) -> tuple[Scenario, Region]:
    """The parsed scenario and its region (of the caller's organisation); 422 naming the field otherwise."""
    spec = Scenario.parse(body, source="scenario")  # ScenarioError: 422 naming the field (service.api.app)
    if len(spec.name) > 200:
        raise BadRequestError(f"scenario: name: at most 200 characters, not {len(spec.name)}")
    region = region_by_name(session, who.org_id, spec.region)
    if region is None:
        names = session.scalars(select(Region.name).where(Region.org_id == who.org_id).order_by(Region.name)).all()
        raise BadRequestError(f"scenario: region: region {spec.region!r} is not imported in your organisation "
                                 f"(its regions: {', '.join(names) or 'none'})")  # fmt: skip
    known = {b["id"] for b in (region.summary or {}).get("branch_list", [])}
    if known:
        for what in ("keep", "close"):
            unknown = [b for b in getattr(spec.forced, what) if b not in known]
            if unknown:
                raise BadRequestError(f"scenario: forced.{what}: unknown branch id(s) {', '.join(unknown)} in "
                                         f"region {region.name!r}")  # fmt: skip
    return spec, region


def _own_scenario(session: Session, who: Principal, scenario_id: str) -> ScenarioRow:
    row = session.get(ScenarioRow, scenario_id)
    if row is None or row.org_id != who.org_id:
        raise NotFoundError(f"scenario {scenario_id!r} not found")
    return row


def _region_name(session: Session, region_id: str) -> str:
    return session.scalar(select(Region.name).where(Region.id == region_id)) or ""


def _etag(row: ScenarioRow) -> str:
    return f'"{row.version}"'


_SCENARIO_DOC = json_request(inline_refs(Scenario.model_json_schema()))


@router.post("/scenarios", status_code=201, tags=["scenarios"], openapi_extra=_SCENARIO_DOC,
             response_model=ScenarioOut, responses=errors(409, 413, 415, 422))  # fmt: skip
def create_scenario(who: Planner, body: Body, session: DB, request: Request, response: Response) -> dict[str, Any]:
    """Store a scenario (the JSON of a planner scenario file); 422 naming the field when it is invalid."""
    spec, region = _validate(session, who, body)
    row = ScenarioRow(org_id=who.org_id, region_id=region.id, name=spec.name, body=body, version=1)
    session.add(row)
    try:
        session.commit()
    except IntegrityError:  # the region was deleted meanwhile
        session.rollback()
        raise ConflictError(f"region {spec.region!r} was deleted meanwhile") from None
    response.headers["Location"] = f"{request.url.path}/{row.id}"
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, region.name)


@router.get("/scenarios", tags=["scenarios"], response_model=list[ScenarioOut])
def list_scenarios(who: Viewer, session: DB, region: str | None = None) -> list[dict[str, Any]]:
    """The organisation's scenarios (optionally of one region, by name), oldest first."""
    query = (
        select(ScenarioRow, Region.name)
        .join(Region, Region.id == ScenarioRow.region_id)
        .where(ScenarioRow.org_id == who.org_id)
        .order_by(ScenarioRow.created_at, ScenarioRow.id)
    )
    if region is not None:
        query = query.where(Region.name == region)
    return [_scenario_out(row, name) for row, name in session.execute(query).all()]


@router.get("/scenarios/{scenario_id}", tags=["scenarios"], response_model=ScenarioOut, responses=errors(404))
def get_scenario(scenario_id: str, who: Viewer, session: DB, response: Response) -> dict[str, Any]:
    row = _own_scenario(session, who, scenario_id)
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, _region_name(session, row.region_id))


@router.put("/scenarios/{scenario_id}", tags=["scenarios"], openapi_extra=_SCENARIO_DOC, response_model=ScenarioOut,
            responses=errors(404, 409, 412, 413, 415, 422))  # fmt: skip
def update_scenario(
    scenario_id: str,
    who: Planner,
    body: Body,
    session: DB,
    response: Response,
    if_match: Annotated[str | None, Header(description="Only update this version (412 otherwise).")] = None,
) -> dict[str, Any]:
    """Replace a scenario's body (validated; a rejected update changes nothing) and bump its version."""
    row = _own_scenario(session, who, scenario_id)
    if if_match is not None and if_match.strip() != "*":
        wanted = if_match.strip().removeprefix("W/").strip('"')
        if wanted != str(row.version):
            raise PreconditionFailedError(f"scenario {scenario_id!r} is at version {row.version}, not {wanted}")
    spec, region = _validate(session, who, body)
    row.body = body
    row.name = spec.name
    row.region_id = region.id
    row.version += 1
    row.updated_at = now()
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise ConflictError(f"region {spec.region!r} was deleted meanwhile") from None
    response.headers["ETag"] = _etag(row)
    return _scenario_out(row, region.name)


@router.delete("/scenarios/{scenario_id}", status_code=204, tags=["scenarios"], responses=errors(404, 409))
def delete_scenario(scenario_id: str, who: Planner, session: DB, svc: Svc) -> Response:
    """Delete a scenario with its finished runs and their results; 409 while a run is queued or running."""
    row = _own_scenario(session, who, scenario_id)
    runs = session.scalars(select(Run).where(Run.scenario_id == row.id)).all()
    active = [r.id for r in runs if r.status in ACTIVE_RUNS]
    if active:
        raise ConflictError(f"scenario {scenario_id!r} has {len(active)} queued or running run(s) "
                                 f"({', '.join(active)}); cancel them first")  # fmt: skip
    for run in runs:
        session.delete(run)
    session.delete(row)
    session.commit()
    for run in runs:
        if run.result_path:
            svc.files.remove(svc.files.root / run.result_path)
        svc.files.remove(svc.files.run_dir(who.org_id, run.id))
    return Response(status_code=204)
