"""Joint planner speed on Rutland: raw files to plan, cold and warm.

Usage::

    python -m benchmarks.planner [--scenario examples/rutland_network.yaml] [--json]

*Cold*: a fresh data directory and cache; the region is imported from the raw files in ``<shared>/data/rutland``
(OSM extract, LSOA polygons and population, libraries, settlements), then the scenario is planned and every
result file written. *Warm*: the stored region is loaded and the same scenario planned again (the matrix cache
is warm). Baseline measured in the same run: the branch-only location study (a p-median scenario
keeping 3 branches) on the loaded region, so the ratio shows what the joint planner adds.

Targets (issue 5): cold <= 60 s and warm <= 10 s on this 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks._common import emit, rutland_sources, shared_dir, verdict

COLD_TARGET_S = 60.0
WARM_TARGET_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="examples/rutland_network.yaml")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from geodata.region import prepare_region
    from service.config import Settings
    from service.plans.pipeline import run_plan
    from service.plans.scenario import Scenario
    from service.store.regions import load_region, save_region

    shared = shared_dir()
    if shared is None:
        raise SystemExit("benchmarks.planner needs ../shared (or BRANCHNET_SHARED_DIR) for the Rutland files")
    scenario = Scenario.from_file(args.scenario)
    leaflet = Settings().leaflet_dir
    sources = rutland_sources(shared)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        t0 = time.perf_counter()
        region = prepare_region("rutland", sources, cache_dir=base / "cache")
        save_region(region, base / "regions")
        t_import = time.perf_counter() - t0
        cold_plan = run_plan(region, scenario, base / "cold", leaflet_dir=leaflet)
        cold = time.perf_counter() - t0

        t1 = time.perf_counter()
        warm_region = load_region("rutland", base / "regions")
        t_load = time.perf_counter() - t1
        warm_plan = run_plan(warm_region, scenario, base / "warm", leaflet_dir=leaflet)
        warm = time.perf_counter() - t1

        t2 = time.perf_counter()
        study = {"objective": "p_median", "p": 3}
        pmedian = Scenario.parse({"name": "rutland-pmedian-3", "region": "rutland", "location": study,
                                  "solve": {"time_limit_s": 20}})  # fmt: skip
        run_plan(warm_region, pmedian, base / "base", leaflet_dir=leaflet)
        baseline = time.perf_counter() - t2
    same = cold_plan["decisions"] == warm_plan["decisions"]
    record = {
        "scenario": scenario.name, "cold_s": cold, "import_s": t_import, "warm_s": warm, "load_s": t_load,
        "solve_s": warm_plan["solver"]["runtime_s"], "baseline_location_plan_s": baseline,
        "warm_over_baseline": warm / baseline, "same_plan_cold_and_warm": same,
        "status": warm_plan["solver"]["status"], "gap": warm_plan["solver"]["gap"],
    }  # fmt: skip
    if args.json:
        emit(record)
        return
    print(f"Rutland joint planner ({scenario.name}), raw files to plan:")
    print(f"  cold {cold:6.1f} s  (import {t_import:.1f} s, plan {cold - t_import:.1f} s)")
    print(f"  warm {warm:6.1f} s  (load {t_load:.1f} s, solve {record['solve_s']:.1f} s)")
    print(f"  baseline (branch-only p-median plan, same region, same run): {baseline:.1f} s; "
          f"warm / baseline = {warm / baseline:.2f}x")  # fmt: skip
    print(f"cold {cold:.1f} s (target <= {COLD_TARGET_S:g} s): {verdict(cold <= COLD_TARGET_S)}")
    print(f"warm {warm:.1f} s (target <= {WARM_TARGET_S:g} s): {verdict(warm <= WARM_TARGET_S)}")
    print(f"the cold and warm runs give the same plan: {verdict(same)}")


if __name__ == "__main__":
    main()
