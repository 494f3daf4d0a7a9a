"""The audit log: who (key, organisation, role) changed what (an action on a resource), when, and the outcome.

:class:`AuditMiddleware` (pure ASGI) writes one :class:`~service.store.db.AuditEntry` for every request under
``/api/v1`` whose method can change something (POST, PUT, PATCH, DELETE), whatever its outcome: done (2xx),
refused (401 without a valid key, also an expired one, whose owner is recorded; 403 below the role), invalid (4xx)
or failed (5xx). The row is written when the response starts, so it exists once the client has its answer.
Reads (GET, HEAD, OPTIONS) are not audited and pay nothing but a method check. Requests that the rate limit
refuses (429) never reach the audit (:mod:`service.api.ratelimit` sits outside it), so a flood cannot become a
flood of writes. The key management of the command line (``branchnet keys create|rotate|revoke``) writes its
rows with :func:`audit_cli`, in the same transaction as the change.

A failed audit write is never silent: it is logged as an error with every field of the entry (so the entry can
be recovered from the logs) and counted in ``branchnet_audit_write_failures_total`` at ``/metrics``; the
response still goes out, since the change it reports is already committed.

``GET /api/v1/audit`` (admins, their own organisation only) reads the log, newest first, filtered by ``since``,
``action`` and ``key`` and paged with ``limit`` and ``before`` (an entry id; the ``Link: rel="next"`` header gives
the next page). ``branchnet audit`` reads it on the server (:mod:`service.cli.keys`).
"""

from __future__ import annotations

import getpass
import logging
import socket
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.api.auth import Principal, identify, utc
from service.api.deps import DB, PRINCIPAL_SCOPE, Admin, Services
from service.store.db import ApiKey, AuditEntry

log = logging.getLogger("branchnet.audit")
router = APIRouter()
API = "/api/v1"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Actions by (method, route template); any other write is recorded as ``METHOD /route/template``.
ACTIONS = {
    ("POST", f"{API}/regions"): "region.create",
    ("DELETE", f"{API}/regions/{{region_id}}"): "region.delete",
    ("POST", f"{API}/scenarios"): "scenario.create",
    ("PUT", f"{API}/scenarios/{{scenario_id}}"): "scenario.update",
    ("DELETE", f"{API}/scenarios/{{scenario_id}}"): "scenario.delete",
    ("POST", f"{API}/scenarios/{{scenario_id}}/runs"): "run.create",
    ("DELETE", f"{API}/runs/{{run_id}}"): "run.cancel",
}
FAILURES_METRIC = "audit_write_failures"


def action_of(method: str, route: str | None) -> str:
    """The audit action of a request: a name from :data:`ACTIONS`, else ``METHOD /route/template``."""
    if route is None:
        return f"{method} (no route)"
    return ACTIONS.get((method, route), f"{method} {route}")[:64]


def route_template(scope: dict[str, Any]) -> str | None:
    """The matched route's path template with its prefix (``/api/v1/runs/{run_id}``), or None when none matched.

    FastAPI 0.165 leaves the router's own route (without the ``include_router`` prefix) in ``scope["route"]`` and
    the full path in ``scope["fastapi"]["effective_route_context"]``; older versions put it in the route."""
    full = getattr((scope.get("fastapi") or {}).get("effective_route_context"), "path", None)
    if isinstance(full, str):
        return full
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else None


def _presented_key(scope: dict[str, Any]) -> str | None:
    from starlette.requests import Request as StarletteRequest

    from service.api.deps import _basic_key, _key_of

    request = StarletteRequest(scope)
    return _key_of(request) or _basic_key(request)


def entry_of(scope: dict[str, Any], status: int) -> dict[str, Any]:
    """The audit entry of a finished request (its scope after routing, and its status); ``_key`` is the key the
    caller presented when no endpoint authenticated it (a method or path that matched nothing)."""
    who: Principal | None = scope.get(PRINCIPAL_SCOPE)
    method = scope["method"]
    detail: dict[str, Any] = {"method": method}
    client = scope.get("client")
    if client:
        detail["client"] = client[0]
    return {"at": datetime.now(UTC), "key_id": who.key_id if who else None, "org_id": who.org_id if who else None,
            "role": who.role if who else None, "action": action_of(method, route_template(scope)),
            "resource": scope["path"][:300], "status": status, "detail": detail,
            "_key": None if who else _presented_key(scope)}  # fmt: skip


def write_entry(svc: Services, entry: dict[str, Any]) -> bool:
    """Write ``entry``; on failure log it whole as an error, count it, and return False (never raise).

    A key presented to no endpoint is looked up here (off the event loop): a valid one names the caller, any other
    leaves its prefix (never the secret) in the detail."""
    entry = dict(entry)
    key = entry.pop("_key", None)
    try:
        with svc.sessions() as session:
            if key:
                who = identify(session, key)
                if who is not None:
                    entry.update(key_id=who.key_id, org_id=who.org_id, role=who.role)
                elif key.startswith("bn_") and key.count("_") >= 2:
                    entry["detail"] = {**entry["detail"], "key_prefix": key.split("_", 2)[1][:16]}
            session.add(AuditEntry(**entry))
            session.commit()
        return True
    except Exception as exc:
        svc.metrics.count(FAILURES_METRIC)
        log.error("audit write failed: %s: %s", type(exc).__name__, exc,
                  extra={"fields": {"audit": {**entry, "at": entry["at"].isoformat()}}})  # fmt: skip
        return False


class AuditMiddleware:
    """Write an audit entry for every write request under ``/api/v1`` when its response starts (see the module)."""

    def __init__(self, app: Any, services: Services) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES or not scope["path"].startswith(API + "/"):
            await self.app(scope, receive, send)
            return
        written = [False]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start" and not written[0]:
                written[0] = True
                await run_in_threadpool(write_entry, self.services, entry_of(scope, int(message["status"])))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            if not written[0]:  # an unhandled error: the server answers 500
                written[0] = True
                await run_in_threadpool(write_entry, self.services, entry_of(scope, 500))
            raise


def audit_cli(session: Session, action: str, key: ApiKey, **detail: Any) -> None:
    """Record a key management command of the command line (no API key: the operating-system user and host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    session.add(AuditEntry(at=datetime.now(UTC), key_id=None, org_id=key.org_id, role=None, action=action,
                           resource=f"keys/{key.id}", status=None,
                           detail={"via": "cli", "user": user, "host": socket.gethostname(), "key": key.id,
                                   "role": key.role, **detail}))  # fmt: skip


class AuditOut(BaseModel):
    """One audit entry."""

    id: int
    at: datetime
    key_id: str | None
    role: str | None
    action: str
    resource: str
    status: int | None
    detail: dict[str, Any] | None


def audit_query(org_id: str | None, *, since: datetime | None = None, action: str | None = None,
                key: str | None = None, before: int | None = None, limit: int = 100) -> Any:  # fmt: skip
    """The select of audit entries (newest first) of an organisation (None: every one) with these filters."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if org_id is not None:
        query = query.where(AuditEntry.org_id == org_id)
    if since is not None:
        query = query.where(AuditEntry.at >= (since if since.tzinfo else since.replace(tzinfo=UTC)))
    if action:
        query = query.where(AuditEntry.action == action)
    if key:
        query = query.where(AuditEntry.key_id == key)
    if before is not None:
        query = query.where(AuditEntry.id < before)
    return query


def entry_out(row: AuditEntry) -> AuditOut:
    return AuditOut(id=row.id, at=utc(row.at) or row.at, key_id=row.key_id, role=row.role, action=row.action,
                    resource=row.resource, status=row.status, detail=row.detail)  # fmt: skip


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def list_audit(
    who: Admin,
    session: DB,
    request: Request,
    response: Response,
    since: datetime | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    key: Annotated[str | None, Query(max_length=32, description="a key id")] = None,
    before: Annotated[int | None, Query(ge=1, description="entries older than this id (the next page)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    """Your organisation's audit log (every write request and key change), newest first."""
    rows = list(session.scalars(audit_query(who.org_id, since=since, action=action, key=key, before=before,
                                            limit=limit)))  # fmt: skip
    if len(rows) == limit:
        response.headers["Link"] = f'<{request.url.include_query_params(before=rows[-1].id)}>; rel="next"'
    return [entry_out(r) for r in rows]
