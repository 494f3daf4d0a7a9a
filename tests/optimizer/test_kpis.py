"""Access KPIs from arrays."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer.kpis import access_kpis, nearest_open


def test_kpis_by_hand() -> None:
    t = np.array([[100.0, 700.0], [800.0, np.inf], [np.inf, np.inf]])
    d = np.array([10.0, 20.0, 5.0])
    k = access_kpis(t, d, np.array([True, True]), groups=["x", "x", "y"])
    o = k["overall"]
    assert o["population"] == 35
    assert o["within_5_min"] == 10 and o["within_15_min"] == 30
    assert o["share_within_15_min"] == pytest.approx(30 / 35)
    assert o["unreachable"] == 5
    assert o["mean_drive_min"] == pytest.approx((10 * 100 + 20 * 800) / 30 / 60)
    assert k["by_group"]["y"]["within_20_min"] == 0
    closed = access_kpis(t, d, np.array([False, True]))["overall"]
    assert closed["within_15_min"] == 10
    std = access_kpis(t, d, np.array([True, True]), standard_s=750.0,
                      distance_m=np.array([[3000.0, 0.0], [4000.0, 5.0], [1.0, 1.0]]))["overall"]  # fmt: skip
    assert std["within_standard"] == 10 and std["within_2_miles"] == 35


def test_kpi_keys_are_fixed_names() -> None:
    """Bands are whole minutes: a key is never made from a float (10.5 minutes is refused, not '10.5min')."""
    with pytest.raises(ValueError, match="whole positive minutes"):
        access_kpis(np.ones((2, 1)), np.ones(2), np.ones(1, bool), bands_min=(10.5,))  # type: ignore[arg-type]


def test_kpis_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(1)
    t, d = rng.uniform(0, 2000, (50, 4)), rng.uniform(0, 9, 50)
    perm = rng.permutation(50)
    a = access_kpis(t, d, np.array([1, 0, 1, 1], bool))["overall"]
    b = access_kpis(t[perm], d[perm], np.array([1, 0, 1, 1], bool))["overall"]
    assert a == pytest.approx(b)


def test_nearest_open_with_nothing_open() -> None:
    assert np.isinf(nearest_open(np.ones((3, 2)), np.zeros(2, bool))).all()
