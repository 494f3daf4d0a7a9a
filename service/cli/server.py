"""``branchnet keys`` and ``branchnet serve``: the web service's API keys and its server."""

from __future__ import annotations

from typing import Annotated

import typer

from service.cli._common import app, err, settings, user_errors

keys_app = typer.Typer(help="Manage the web service's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    org: Annotated[str, typer.Option(help="Organisation name; created when new.")],
    role: Annotated[str, typer.Option(help="viewer (reads), planner (+ scenarios, runs) or admin (+ regions).")],
    name: Annotated[str, typer.Option(help="A label for the key, e.g. who holds it.")] = "",
) -> None:
    """Create an API key and print it once (only its hash is stored); the database is migrated first."""
    from sqlalchemy.orm import sessionmaker

    from service.api.auth import create_key
    from service.store.db import ROLES, make_engine, migrate, session_scope

    if role not in ROLES:
        raise typer.BadParameter(f"--role {role!r}: use {', '.join(ROLES)}")
    config = settings()
    with user_errors():
        config.data_dir.mkdir(parents=True, exist_ok=True)
        migrate(config.db_url)
        engine = make_engine(config.db_url)
        try:
            with session_scope(sessionmaker(engine)) as session:
                plain, row = create_key(session, org, role, name)
                key_id = row.id
        finally:
            engine.dispose()
    err.print(
        f"created {role} key {key_id} for organisation {org!r}; it is shown only once:", highlight=False, soft_wrap=True
    )
    print(plain)  # alone on stdout, for KEY=$(branchnet keys create ...)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the HTTP API (docs at /api/v1/docs) with uvicorn; settings from BRANCHNET_* or .env."""
    import uvicorn

    # our structured request log replaces uvicorn's access log (one line per request, not two)
    uvicorn.run("service.api.app:create_app", factory=True, host=host, port=port, access_log=False)
