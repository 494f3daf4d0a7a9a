"""``branchnet keys`` (create, list, rotate, revoke), ``branchnet audit`` and ``branchnet serve``: the web
service's API keys, its audit log and its server.

The key commands work on the database directly (migrating it first) and record each change in the audit log
(:func:`service.api.audit.audit_cli`) in the same transaction. A plain key is printed once, alone on stdout, so
``KEY=$(branchnet keys create ...)`` and ``KEY=$(branchnet keys rotate ...)`` capture it; everything else goes to
stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from service.cli._common import JsonOption, app, console, err, print_json, settings, user_errors

keys_app = typer.Typer(help="Manage the web service's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
ExpiresIn = Annotated[str | None, typer.Option(help="The key expires after this long: 90d, 12h, 30m, 2w.")]
Expires = Annotated[str | None, typer.Option(help="The key expires at the end of this day (YYYY-MM-DD, UTC).")]


@contextmanager
def _database() -> Iterator[Session]:
    """A session on the migrated database of the settings, committed at the end (rolled back on error)."""
    from sqlalchemy.orm import sessionmaker

    from service.store.db import make_engine, migrate, session_scope

    config = settings()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    migrate(config.db_url)
    engine = make_engine(config.db_url)
    try:
        with session_scope(sessionmaker(engine, expire_on_commit=False)) as session:
            yield session
    finally:
        engine.dispose()


def _when(value: datetime | None) -> str:
    from service.api.auth import utc

    at = utc(value)
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def _past(value: datetime | None, now: datetime) -> bool:
    from service.api.auth import utc

    at = utc(value)
    return at is not None and at <= now


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation name; created when new.")],
    role: Annotated[str, typer.Option(help="viewer (reads), planner (+ scenarios, runs) or admin (+ regions).")],
    name: Annotated[str, typer.Option(help="A label for the key, e.g. who holds it.")] = "",
    expires_in: ExpiresIn = None,
    expires: Expires = None,
) -> None:
    """Create an API key and print it once (only its hash is stored); the database is migrated first."""
    from service.api.audit import audit_cli
    from service.api.auth import create_key, parse_expiry
    from service.store.db import ROLES

    if role not in ROLES:
        raise typer.BadParameter(f"--role {role!r}: use {', '.join(ROLES)}")
    with user_errors():
        expires_at = parse_expiry(expires_in, expires)
        with _database() as session:
            plain, row = create_key(session, org, role, name, expires_at=expires_at)
            audit_cli(session, "key.create", row, expires_at=expires_at.isoformat() if expires_at else None)
            key_id = row.id
    until = f", expiring {_when(expires_at)}" if expires_at else ""
    err.print(f"created {role} key {key_id} for organisation {org!r}{until}; it is shown only once:",
              highlight=False, soft_wrap=True)  # fmt: skip
    print(plain)  # alone on stdout, for KEY=$(branchnet keys create ...)


@keys_app.command("list")
def keys_list(
    org: Annotated[str | None, typer.Option(help="Only this organisation's keys (by name).")] = None,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """List the keys: id, prefix, organisation, role, name, created, expires, revoked (never the keys)."""
    from sqlalchemy import select

    from service.api.auth import utc
    from service.store.db import ApiKey, Organisation

    with user_errors(), _database() as session:
        query = select(ApiKey, Organisation.name).join(Organisation, Organisation.id == ApiKey.org_id)
        if org is not None:
            query = query.where(Organisation.name == org)
        rows = session.execute(query.order_by(Organisation.name, ApiKey.created_at, ApiKey.id)).all()
    now = datetime.now(UTC)
    keys: list[dict[str, Any]] = [{"id": k.id, "prefix": k.prefix, "organisation": o, "role": k.role, "name": k.name,
             "created": utc(k.created_at), "expires": utc(k.expires_at), "revoked": k.revoked,
             "active": not k.revoked and not _past(k.expires_at, now)} for k, o in rows]  # fmt: skip
    if as_json:
        print_json([{**k, "created": k["created"].isoformat() if k["created"] else None,
                     "expires": k["expires"].isoformat() if k["expires"] else None} for k in keys])  # fmt: skip
        return
    from rich.table import Table

    table = Table("id", "prefix", "organisation", "role", "name", "created", "expires", "revoked")
    for k in keys:
        until = _when(k["expires"]) + (" (expired)" if _past(k["expires"], now) else "")
        table.add_row(k["id"], k["prefix"], k["organisation"], k["role"], k["name"], _when(k["created"]), until,
                      "yes" if k["revoked"] else "")  # fmt: skip
    console.print(table)


@keys_app.command("rotate")
def keys_rotate(
    key: Annotated[str, typer.Argument(help="The key's id or prefix (branchnet keys list).")],
    grace: Annotated[str, typer.Option(help="Keep the old key working this long (e.g. 1d); 0: revoke it now.")] = "0",
    expires_in: ExpiresIn = None,
    expires: Expires = None,
) -> None:
    """Replace a key by a new one (same organisation, role and name) and print the new key alone on stdout; the
    old one is revoked at once or, with --grace, expires then. Without --expires-in/--expires, the new key gets the
    old one's lifetime (if it had one)."""
    from service.api.audit import audit_cli
    from service.api.auth import parse_duration, parse_expiry, rotate_key

    with user_errors():
        wait = parse_duration(grace, "--grace")
        expires_at = parse_expiry(expires_in, expires)
        with _database() as session:
            plain, new, old = rotate_key(session, key, grace=wait, expires_at=expires_at)
            audit_cli(session, "key.rotate", old, new_key=new.id, grace_s=wait.total_seconds(),
                      old_expires_at=old.expires_at.isoformat() if old.expires_at else None)  # fmt: skip
            audit_cli(session, "key.create", new, rotated_from=old.id,
                      expires_at=new.expires_at.isoformat() if new.expires_at else None)  # fmt: skip
            new_id, old_id, old_end, new_end = new.id, old.id, old.expires_at, new.expires_at
    retired = f"old key {old_id} works until {_when(old_end)}" if wait.total_seconds() else f"old key {old_id} revoked"
    err.print(f"new key {new_id} (expires {_when(new_end)}); {retired}; the new key is shown only once:",
              highlight=False, soft_wrap=True)  # fmt: skip
    print(plain)  # alone on stdout, for KEY=$(branchnet keys rotate ...)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id or prefix (branchnet keys list).")]) -> None:
    """Revoke a key: a running server refuses it within 5 seconds (its key cache)."""
    from service.api.audit import audit_cli
    from service.api.auth import revoke_key

    with user_errors(), _database() as session:
        row = revoke_key(session, key)
        audit_cli(session, "key.revoke", row)
        key_id = row.id
    err.print(f"revoked key {key_id}", highlight=False)


@app.command()
def audit(
    org: Annotated[str | None, typer.Option(help="Only this organisation's entries (by name).")] = None,
    since: Annotated[str | None, typer.Option(help="Entries since a date/time (ISO) or for a while back (7d).")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action, e.g. scenario.create or key.rotate.")] = None,
    key: Annotated[str | None, typer.Option(help="Only this key id's requests.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many entries, newest first.")] = 100,
    as_json: Annotated[bool, JsonOption] = False,
) -> None:
    """Show the audit log of the web service: who (key, organisation, role) changed what, when, with what status."""
    from sqlalchemy import select

    from service.api.audit import audit_query
    from service.api.auth import parse_duration, utc
    from service.errors import BadRequestError, NotFoundError
    from service.store.db import Organisation

    with user_errors():
        start: datetime | None = None
        if since:
            try:
                start = datetime.fromisoformat(since)
            except ValueError:
                start = datetime.now(UTC) - parse_duration(since, "--since")
            if start.tzinfo is None:
                start = start.replace(tzinfo=UTC)
        with _database() as session:
            names = dict(session.execute(select(Organisation.id, Organisation.name)).tuples().all())
            org_id = None
            if org is not None:
                org_id = next((i for i, n in names.items() if n == org), None)
                if org_id is None:
                    raise NotFoundError(f"--org {org!r}: no such organisation ({', '.join(sorted(names.values()))})")
            if limit > 100_000:
                raise BadRequestError("--limit must be at most 100000")
            rows = list(session.scalars(audit_query(org_id, since=start, action=action, key=key, limit=limit)))
    entries: list[dict[str, Any]] = [
        {"id": r.id, "at": utc(r.at), "organisation": names.get(r.org_id or ""), "key_id": r.key_id,
         "role": r.role, "action": r.action, "resource": r.resource, "status": r.status, "detail": r.detail}
        for r in rows
    ]  # fmt: skip
    if as_json:
        print_json([{**e, "at": e["at"].isoformat() if e["at"] else None} for e in entries])
        return
    from rich.table import Table

    table = Table("at", "organisation", "key", "role", "action", "resource", "status")
    for e in entries:
        who = e["key_id"] or (f"cli:{(e['detail'] or {}).get('user', '?')}" if (e["detail"] or {}).get("via") == "cli"
                              else f"anonymous {(e['detail'] or {}).get('key_prefix', '')}".strip())  # fmt: skip
        table.add_row(e["at"].strftime("%Y-%m-%d %H:%M:%S") if e["at"] else "", e["organisation"] or "",
                      who, e["role"] or "", e["action"], e["resource"],
                      "" if e["status"] is None else str(e["status"]))  # fmt: skip
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on the one port (default BRANCHNET_SERVER_PROCESSES, 1). "
            "They share the run queue through leases; each runs up to BRANCHNET_RUN_WORKERS runs.",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (docs at /api/v1/docs) with uvicorn; settings from BRANCHNET_* or .env."""
    import uvicorn

    from service.config import Settings

    n = processes or Settings().server_processes
    # our structured request log replaces uvicorn's access log (one line per request, not two)
    uvicorn.run("service.api.app:create_app", factory=True, host=host, port=port, access_log=False,
                workers=n if n > 1 else None)  # fmt: skip
