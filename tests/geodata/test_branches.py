"""Branches: schema hours, the default cost model, flags and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodata.branches import CostModel, load_branches, parse_hours
from geodata.errors import AssumptionWarning, DuplicateIdError, InvalidValueError, MissingFieldError

HEADER = "Library name,lon,lat,Monday staffed hours,Tuesday staffed hours,annual_cost,must_keep,closable\n"


@pytest.mark.parametrize(
    ("cell", "hours"),
    [
        ("09:30-17:00", 7.5),
        ("10:00-12:00,14:00-17:00", 5.0),
        ("9.00 - 13.00", 4.0),
        ("", 0.0),
        (None, 0.0),
        ("Closed", 0.0),
    ],
)
def test_parse_hours(cell: object, hours: float) -> None:
    assert parse_hours(cell, where="x") == hours


@pytest.mark.parametrize("cell", ["9am-5pm", "17:00-09:00", "25:00-26:00"])
def test_bad_hours_name_the_place(cell: str) -> None:
    with pytest.raises(InvalidValueError, match="branch 'X'"):
        parse_hours(cell, where="branch 'X'")


def test_schema_csv_with_coordinates_and_default_costs(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(
        HEADER + "Alpha,9.5,56.2,09:00-17:00,,,yes,\nBeta,9.6,56.2,,10:00-12:00,50000,,no\nGamma,9.7,56.2,,,,no,yes\n"
    )
    model = CostModel(hourly_cost=10.0, fixed_cost=1000.0, weeks_per_year=50.0)
    with pytest.warns(AssumptionWarning, match="2 branch"):
        b = load_branches(f, cost_model=model).set_index("branch_id")
    assert b.loc["Alpha", "staffed_hours_week"] == 8.0
    assert b.loc["Alpha", "annual_cost"] == 8 * 50 * 10 + 1000
    assert b.loc["Beta", "annual_cost"] == 50000 and b.loc["Beta", "cost_source"] == "input"
    assert bool(b.loc["Alpha", "must_keep"]) and not bool(b.loc["Alpha", "closable"])
    assert bool(b.loc["Beta", "must_keep"])  # closable=no means it cannot close
    assert bool(b.loc["Gamma", "closable"])


def test_duplicate_ids(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(HEADER + "Alpha,9.5,56.2,,,,,\nAlpha,9.6,56.2,,,,,\n")
    with pytest.raises(DuplicateIdError, match=r"b\.csv: branch id 'Alpha' in field 'Library name' repeats"):
        load_branches(f)


def test_schema_csv_without_coordinates(tmp_path: Path) -> None:
    f = tmp_path / "schema.csv"
    f.write_text("Library name,Postcode\nAlpha,AB1 2CD\n")
    with pytest.raises(MissingFieldError, match=r"schema\.csv: no coordinate fields"):
        load_branches(f)


def test_bad_cost_and_flag(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(HEADER + "Alpha,9.5,56.2,,,-5,,\n")
    with pytest.raises(InvalidValueError, match="branch 'Alpha': field 'annual_cost'"):
        load_branches(f)
    f.write_text(HEADER + "Alpha,9.5,56.2,,,,perhaps,\n")
    with pytest.raises(InvalidValueError, match=r"'must_keep'.*yes/no"), pytest.warns(AssumptionWarning):
        load_branches(f)
