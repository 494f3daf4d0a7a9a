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
    assert o["within_5min"] == 10 and o["within_15min"] == 30
    assert o["unreachable"] == 5
    assert o["mean_time_min"] == pytest.approx((10 * 100 + 20 * 800) / 30 / 60)
    assert k["by_group"]["y"]["within_20min"] == 0
    closed = access_kpis(t, d, np.array([False, True]))["overall"]
    assert closed["within_15min"] == 10


def test_kpis_do_not_depend_on_row_order() -> None:
    rng = np.random.default_rng(1)
    t, d = rng.uniform(0, 2000, (50, 4)), rng.uniform(0, 9, 50)
    perm = rng.permutation(50)
    a = access_kpis(t, d, np.array([1, 0, 1, 1], bool))["overall"]
    b = access_kpis(t[perm], d[perm], np.array([1, 0, 1, 1], bool))["overall"]
    assert a == pytest.approx(b)


def test_nearest_open_with_nothing_open() -> None:
    assert np.isinf(nearest_open(np.ones((3, 2)), np.zeros(2, bool))).all()
