"""The catalogue's own checks: its index (the package docstring) lists every entry, there are at least 60, their
ids are unique, and the snapshot that every entry compares would see a change."""

from __future__ import annotations

import importlib
import textwrap
from pathlib import Path

import pytest

import tests.catalogue as catalogue
from tests.catalogue._support import Entry, snapshot, unchanged
from tests.catalogue.conftest import API, Service

MODULES = {
    "test_region_files": "Region files (``branchnet region import``: exit 2; ``POST /api/v1/regions``: 422)",
    "test_scenarios": "Scenarios (``branchnet plan``: exit 2; ``POST`` and ``PUT /api/v1/scenarios``: 422)",
    "test_timetables": "Timetables (``branchnet timetable check`` and ``replan``: exit 2)",
    "test_api_calls": "API calls (the status after each entry)",
}


def entries() -> dict[str, list[Entry]]:
    return {m: importlib.import_module(f"tests.catalogue.{m}").ENTRIES for m in MODULES}


def _outcome(module: str, e: Entry) -> str:
    if module == "test_api_calls":
        return str(e.status)
    if module == "test_timetables":
        return f"exit {e.exit_code}"
    return f"exit {e.exit_code} / {e.status}"


def render() -> str:
    """The index: one line per entry, ``id``: what it sends -> outcome: what the message says."""
    found = entries()
    total = sum(len(v) for v in found.values())
    lines = [f"{total} entries, each a test (several through more than one entry point).", ""]
    for module, title in MODULES.items():
        lines += [f"{title}, ``{module}.py``:", ""]
        for e in found[module]:
            expect = e.expect if isinstance(e.expect, str) else " | ".join(f"{k}: {v}" for k, v in e.expect.items())
            text = f'- ``{e.id}``: {e.sends} -> {_outcome(module, e)}: "{expect}"'
            lines += textwrap.wrap(text, width=116, subsequent_indent="  ", break_on_hyphens=False)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def test_the_index_lists_every_entry() -> None:
    doc = catalogue.__doc__ or ""
    index = doc[doc.index("Index\n-----\n") + len("Index\n-----\n") :].lstrip("\n")
    hint = "regenerate it: python -c 'from tests.catalogue.test_index import render; print(render())'"
    assert index.rstrip() == render().rstrip(), hint


def test_at_least_sixty_entries_with_unique_ids() -> None:
    found = entries()
    assert sum(len(v) for v in found.values()) >= 60
    for module, items in found.items():
        ids = [e.id for e in items]
        assert len(ids) == len(set(ids)), module


def test_the_snapshot_sees_a_changed_byte_and_a_new_row(
    service: Service, region_files: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    (folder / "regions").mkdir(parents=True)
    (folder / "regions" / "x.json").write_bytes(b"{}")
    before = snapshot(folder)
    (folder / "regions" / "x.json").write_bytes(b"[]")  # same size, one byte changed
    with pytest.raises(AssertionError):
        unchanged(before, snapshot(folder))

    before = service.snapshot()
    r = service.client.post(f"{API}/scenarios", headers=service.headers("a", "planner"),
                            json={"region": "tiny", "budget_share": 0.5, "name": "another"})  # fmt: skip
    assert r.status_code == 201, r.text
    with pytest.raises(AssertionError):
        unchanged(before, service.snapshot())
    r = service.client.delete(f"{API}/scenarios/{r.json()['id']}", headers=service.headers("a", "planner"))
    assert r.status_code == 204
