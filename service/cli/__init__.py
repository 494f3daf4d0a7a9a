"""The ``branchnet`` command line: thin adapters over the one plan pipeline and region storage.

Commands by module: :mod:`~service.cli.regions` (``region import``, ``region show``, ``region list``),
:mod:`~service.cli.plans` (``plan``, ``demo``, ``compare``), :mod:`~service.cli.timetables` (``timetable replan``,
``timetable check``), :mod:`~service.cli.batch` (``batch``), :mod:`~service.cli.server` (``keys create``,
``serve``) and :mod:`~service.cli.ops` (``backup``, ``restore``). Every command that prints a
table takes ``--json``. Errors are reported by the one error table (:mod:`service.errors`).
"""

from __future__ import annotations

from service.cli import batch, ops, plans, regions, server, timetables
from service.cli._common import app

__all__ = ["app", "batch", "ops", "plans", "regions", "server", "timetables"]

if __name__ == "__main__":
    app()
