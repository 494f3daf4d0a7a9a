"""The Rutland roadmap (examples/rutland_roadmap.yaml, 2025-2035), warm, against the single-year plan of the same
region measured in the same run.

Target (issue 15): the roadmap in <= 60 s warm (the region imported and loaded, the road graphs cached), with its
status, bound and gap. The single-year min-cost plan (examples/rutland_network.yaml) is the baseline: the ratio
says how many single-year plans a roadmap costs.

The synthetic demo region's roadmap (examples/demo_roadmap.yaml, 14 branches, a restricted family of networks)
is run too: no former municipality may lose more than 5 pp of coverage against today's network in any year,
recounted here from roadmap.json.

Usage: ``python -m benchmarks.roadmap [--scenario examples/rutland_roadmap.yaml] [--no-demo]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks._common import REPO, demo_sources, emit, rutland_sources, shared_dir, verdict


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=REPO / "examples" / "rutland_roadmap.yaml")
    parser.add_argument("--baseline", type=Path, default=REPO / "examples" / "rutland_network.yaml")
    parser.add_argument("--no-demo", action="store_true", help="skip the synthetic demo region's roadmap")
    args = parser.parse_args(argv)
    from geodata.region import prepare_region
    from service.config import Settings
    from service.plans.pipeline import run_plan
    from service.plans.scenario import Scenario
    from service.store.regions import load_region, save_region

    shared = shared_dir()
    if shared is None:
        raise SystemExit("benchmarks.roadmap needs ../shared (or BRANCHNET_SHARED_DIR) for the Rutland files")
    sources = rutland_sources(shared)
    leaflet = Settings().leaflet_dir
    print("roadmap benchmark: Rutland 2025-2035, warm")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = Path(tmp)
        save_region(prepare_region("rutland", sources, cache_dir=base / "cache"), base / "regions")
        region = load_region("rutland", base / "regions")
        t0 = time.perf_counter()
        run_plan(region, Scenario.from_file(args.baseline), base / "single", leaflet_dir=leaflet)
        single_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_plan(region, Scenario.from_file(args.scenario), base / "roadmap", leaflet_dir=leaflet)
        road_s = time.perf_counter() - t0
        doc = json.loads((base / "roadmap" / "roadmap.json").read_text(encoding="utf-8"))
    s = doc["solver"]
    ok = road_s <= 60.0
    emit({"bench": "roadmap", "scenario": args.scenario.name, "warm_s": road_s, "solve_s": s["runtime_s"],
          "single_year_plan_s": single_s, "ratio_to_single_year": road_s / single_s, "status": s["status"],
          "objective": s["objective"], "bound": s["bound"], "gap": s["gap"], "networks_planned": s["search"],
          "years": len(doc["years"]), "ok": ok})  # fmt: skip
    gap = "none" if s["gap"] is None else f"{s['gap']:.2%}"
    print(f"  roadmap {road_s:.1f} s warm (solve {s['runtime_s']:.1f} s; target <= 60 s: {verdict(ok)}); the "
          f"single-year plan {single_s:.1f} s, ratio {road_s / single_s:.1f}x; {s['status']}, objective "
          f"{s['objective']:,.4f}, bound {s['bound']}, gap {gap}; {s['search']['patterns_planned']} networks, "
          f"{s['search']['solves']} solves")  # fmt: skip
    for m in doc["milestones"]:
        print(f"    {m['year']}: {m['text']}")
    if not args.no_demo:
        ok &= demo(leaflet)
    return 0 if ok else 1


def demo(leaflet: Path) -> bool:
    """The demo region's roadmap: its time, gap and the worst zone loss of any year (target <= 5 pp)."""
    from geodata.region import prepare_region
    from service.plans.pipeline import run_plan
    from service.plans.scenario import Scenario

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = Path(tmp)
        region = prepare_region("synthetic-demo-42", demo_sources(base / "demo"), cache_dir=base / "cache")
        t0 = time.perf_counter()
        run_plan(region, Scenario.from_file(REPO / "examples" / "demo_roadmap.yaml"), base / "out", leaflet_dir=leaflet)
        seconds = time.perf_counter() - t0
        doc = json.loads((base / "out" / "roadmap.json").read_text(encoding="utf-8"))
    worst = float(max(z["loss_pp"] for y in doc["years"] for z in y["kpis"]["by_zone"].values()))
    s = doc["solver"]
    ok = worst <= 5.0 + 1e-6
    saving = {y["year"]: 1 - y["costs"]["running"] / doc["today_cost"] for y in doc["years"]}
    emit({"bench": "roadmap", "scenario": "demo_roadmap.yaml", "seconds": seconds, "status": s["status"],
          "objective": s["objective"], "bound": s["bound"], "gap": s["gap"], "worst_zone_loss_pp": worst,
          "saving_by_year": saving, "search": s["search"], "ok": ok})  # fmt: skip
    gap = "none" if s["gap"] is None else f"{s['gap']:.1%}"
    closures = [m["text"].split(" closes")[0] + f" {m['year']}" for m in doc["milestones"] if " closes" in m["text"]]
    print(f"  demo roadmap {seconds:.0f} s: {s['status']}, gap {gap} ({s['search']['patterns_planned']} of "
          f"{s['search']['patterns_candidate']} networks planned); worst zone loss in any year {worst:.2f} pp "
          f"(target <= 5: {verdict(ok)}); running cost {saving[doc['years'][-1]['year']]:.1%} below today's by "
          f"{doc['target_year']}; closures: {', '.join(closures) or 'none'}")  # fmt: skip
    return ok


if __name__ == "__main__":
    raise SystemExit(main())
