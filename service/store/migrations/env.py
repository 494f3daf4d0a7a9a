"""Alembic environment: the URL comes from the caller (service.store.db.migrate) or -x url=... on the command line."""

from __future__ import annotations

from alembic import context

from service.store.db import Base, make_engine, migration_lock

config = context.config
url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
if not url:
    raise RuntimeError("no database URL: call service.store.db.migrate(url) or pass -x url=...")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = make_engine(url)
    # Any number of processes may start on a fresh database at once (servers, workers, `keys create`, the batch):
    # the migrations run under a lock, and whoever waited finds the schema at head and does nothing.
    with migration_lock(engine), engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
