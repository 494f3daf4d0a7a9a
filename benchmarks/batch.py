"""The nightly batch at national scale: 98 merged municipalities (about 5.9 M people), one scenario each.

Usage::

    python -m benchmarks.batch [--regions 98] [--subset 10] [--parts national,noop,changed,speedup] [--fresh] [--json]

Set-up (kept in ``var/bench/batch`` between runs, ``--fresh`` rebuilds it): 98 seeded synthetic regions sized
like Denmark's municipalities after the 2007 reform (log-normal, median about 45,000 people, 10,000 to 250,000,
scaled to 5.9 M in all; 2 to 8 former municipalities each), registered through the API by an admin (server files)
with one scenario each: the best coverage for today's money (``max_coverage``, ``budget_share: 1.0``, the demo's
standards, costs and fleet, a 10 s time limit).

Measured, in one run:

1. **the national batch**: every scenario recomputed (``--force``) on a Dask ``LocalCluster`` of 2 workers:
   wall time (target <= 30 min), summed task time, parallelism, and peak memory per worker (the largest child);
2. **a no-op rerun** of all 98 through the command line (``branchnet batch``): target <= 5 s, nothing recomputed;
3. **the changed set**: 3 scenarios edited through the API and the census files of 2 other regions changed; the
   batch must recompute exactly those 5 scenarios and no other;
4. **speed-up** from 1 to 2 Dask workers on the ``--subset`` smallest regions whose plan in the national batch
   ended by the search's own work limit or proof, not the time limit (target >= 1.8x): the baseline is the
   1-worker batch of the same scenarios in the same run. Their plans must end that way again (checked and
   printed), so the speed-up measures work, not waiting. Each batch's wall time includes starting and stopping
   its ``LocalCluster``.

``--parts`` runs a subset of the four measurements on the cached set-up (``speedup`` without ``national`` takes
the statuses of each scenario's last run).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import REPO, emit, verdict

NATIONAL_TARGET_S = 30 * 60.0
NOOP_TARGET_S = 5.0
SPEEDUP_TARGET = 1.8
TOTAL_PEOPLE = 5_900_000
SETUP_VERSION = 1  # bump when the regions or the scenario change: the cached set-up is rebuilt
FIELDS = {"area_field": "area_id", "group_field": "municipality", "id_field": "branch_id"}
API = "/api/v1"


def region_sizes(n: int, seed: int = 2007) -> np.ndarray:
    """People per region: log-normal (median 45,000), clipped to [10,000, 250,000], scaled to 5.9 M in all."""
    rng = np.random.default_rng(seed)
    pop = np.exp(rng.normal(np.log(45_000), 0.55, n))
    for _ in range(50):  # scale, clip, repeat: the clipped sizes keep the total
        pop = np.clip(pop * TOTAL_PEOPLE * n / 98 / pop.sum(), 10_000, 250_000)
    return np.round(pop).astype(int)


def scenario(region: str) -> dict[str, Any]:
    """The bench's scenario: the demo's standards and costs, best coverage for today's money, 10 s."""
    from service.plans.scenario import Scenario

    body = Scenario.from_file(REPO / "examples" / "demo_network.yaml").model_dump(mode="json", exclude_none=True)
    body.update(name=f"coverage-{region}", region=region, objective="max_coverage", budget_share=1.0)
    body["standards"].pop("coverage_target", None)
    body["solve"] = {"time_limit_s": 10, "seed": 0}
    return body


class Bench:
    def __init__(self, folder: Path, n: int) -> None:
        from fastapi.testclient import TestClient

        from service.api.app import create_app
        from service.config import Settings

        self.folder, self.n = folder, n
        self.settings = Settings(data_dir=folder / "data", leaflet_dir=Settings().leaflet_dir, run_workers=1)
        self.app = create_app(self.settings)
        self.client = TestClient(self.app)
        self.keys_file = folder / "keys.json"

    @property
    def services(self) -> Any:
        return self.app.state.services

    def setup(self) -> dict[str, Any]:
        """Generate, register and add a scenario for every region (once; reused while the set-up is current)."""
        from geodata.synthetic import PRESETS, generate_region, write_region
        from service.api.auth import create_key

        stamp = self.folder / "setup.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("version") == SETUP_VERSION:
            return dict(json.loads(stamp.read_text()))
        started = time.perf_counter()
        keys = {}
        with self.services.sessions() as s:
            for role in ("admin", "planner", "viewer"):
                keys[role], _ = create_key(s, "national", role, name=f"bench {role}")
            s.commit()
        self.keys_file.write_text(json.dumps(keys))
        sizes = region_sizes(self.n)
        base = PRESETS["demo"]
        ids: dict[str, str] = {}
        for i, people in enumerate(sizes.tolist(), start=1):
            name = f"dk{i:02d}"
            spec = dataclasses.replace(
                base, name=name, population=people, n_municipalities=int(np.clip(round(people / 20_000), 2, 8)),
                town_population=(2_000, max(15_000, people // 4)),
                centre=(8.3 + 4.2 * ((i * 0.618) % 1.0), 54.9 + 2.6 * ((i * 0.382) % 1.0)),
            )  # fmt: skip
            src = self.settings.data_dir / "sources" / name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                paths = write_region(generate_region(spec, seed=i), src)
            body = {"name": name, **FIELDS, "paths": {"osm": str(paths["osm"]), "population": str(paths["areas"]),
                    "branches": str(paths["branches"]), "settlements": str(paths["settlements"])}}  # fmt: skip
            r = self.client.post(f"{API}/regions", headers=self.headers("admin"), json=body)
            assert r.status_code == 201, r.text
            r = self.client.post(f"{API}/scenarios", headers=self.headers("planner"), json=scenario(name))
            assert r.status_code == 201, r.text
            ids[name] = r.json()["id"]
            print(f"  set-up: region {i}/{self.n} ({people:,} people) ready", file=sys.stderr, flush=True)
        info = {"version": SETUP_VERSION, "scenarios": ids, "sizes": dict(zip(ids, sizes.tolist(), strict=True)),
                "people": int(sizes.sum()), "setup_s": round(time.perf_counter() - started, 1)}  # fmt: skip
        stamp.write_text(json.dumps(info))
        return info

    def headers(self, role: str) -> dict[str, str]:
        return {"X-API-Key": json.loads(self.keys_file.read_text())[role]}

    def batch(self, **options: Any) -> Any:
        from service.batch.run import BatchOptions, run_batch

        return run_batch(self.settings, BatchOptions(**options))

    def cli(self, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
        env = {**os.environ, "BRANCHNET_DATA_DIR": str(self.settings.data_dir)}
        started = time.perf_counter()
        out = subprocess.run([str(Path(sys.executable).parent / "branchnet"), "batch", *args], env=env,
                             capture_output=True, text=True, timeout=600)  # fmt: skip
        return time.perf_counter() - started, out

    def edit(self, scenario_id: str) -> None:
        now = self.client.get(f"{API}/scenarios/{scenario_id}", headers=self.headers("viewer")).json()
        body = copy.deepcopy(now["body"])
        body["budget_share"] = 0.95 if body.get("budget_share") == 1.0 else 1.0
        r = self.client.put(f"{API}/scenarios/{scenario_id}", json=body,
                            headers={**self.headers("planner"), "If-Match": f'"{now["version"]}"'})  # fmt: skip
        assert r.status_code == 200, r.text

    def touch_sources(self, region: str) -> None:
        """Move 10 residents between two areas of a region's census file (a new census table)."""
        path = self.settings.data_dir / "sources" / region / "areas.geojson"
        data = json.loads(path.read_text())
        a, b = sorted(data["features"], key=lambda f: -f["properties"]["population"])[:2]
        for feature, step in ((a, -10), (b, 10)):
            feature["properties"]["population"] += step
            feature["properties"]["age_18_64"] += step
        path.write_text(json.dumps(data))


def worker_peaks(report: dict[str, Any]) -> dict[str, float]:
    """The largest child process per worker (MB)."""
    peaks: dict[str, float] = {}
    for row in report["scenarios"]:
        if row.get("worker") and row.get("peak_rss_mb") is not None:
            peaks[row["worker"]] = max(peaks.get(row["worker"], 0.0), float(row["peak_rss_mb"]))
    return dict(sorted(peaks.items()))


def statuses(bench: Bench, report: dict[str, Any]) -> dict[str, str]:
    """The solver status of each recomputed scenario's plan."""
    out = {}
    root = bench.services.files.root
    from service.store.db import Run

    with bench.services.sessions() as s:
        for row in report["scenarios"]:
            run = s.get(Run, row["run_id"]) if row.get("run_id") else None
            if run is not None and run.result_path:
                out[row["name"]] = json.loads((root / run.result_path / "plan.json").read_text())["solver"]["status"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--regions", type=int, default=98)
    parser.add_argument("--subset", type=int, default=10, help="regions of the 1-vs-2-worker speed-up")
    parser.add_argument("--parts", default="national,noop,changed,speedup", help="measurements to run")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached set-up")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.subset < 2 or args.subset > args.regions:
        raise SystemExit("--subset: at least 2 regions, and no more than --regions")
    folder = REPO / "var" / "bench" / f"batch-{args.regions}"
    if args.fresh:
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    bench = Bench(folder, args.regions)
    info = bench.setup()
    ids: dict[str, str] = info["scenarios"]
    record: dict[str, Any] = {"regions": len(ids), "people": info["people"], "setup_s": info["setup_s"]}
    say = (lambda *_: None) if args.json else print
    say(f"{len(ids)} regions, {info['people']:,} people (set-up {info['setup_s']:.0f} s, cached in {folder})")

    parts = {x.strip() for x in args.parts.split(",") if x.strip()}
    unknown = parts - {"national", "noop", "changed", "speedup"}
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(sorted(unknown))}")
    verdicts: list[str] = []

    if "national" in parts:  # 1. the national batch on 2 Dask workers
        national = bench.batch(force=True, executor="dask", workers=2, timeout_s=1800)
        rep = national.report
        record.update(national_s=rep["wall_s"], national_task_s=rep["task_s"], parallelism=rep["parallelism"],
                      national_exit=national.exit_code, national_failed=rep["counts"]["failed"],
                      peak_rss_mb_per_worker=worker_peaks(rep))  # fmt: skip
        status_counts: dict[str, int] = {}
        for status in statuses(bench, rep).values():
            status_counts[status] = status_counts.get(status, 0) + 1
        record["national_statuses"] = status_counts
        say(f"national batch: {rep['wall_s']:.0f} s wall, {rep['task_s']:.0f} s of tasks (parallelism "
            f"{rep['parallelism']:.2f}), {rep['counts']['succeeded']} succeeded, {rep['counts']['failed']} failed; "
            f"plans {status_counts}")  # fmt: skip
        say("  peak memory per worker (largest child): "
            + ", ".join(f"{w} {mb:,.0f} MB" for w, mb in record["peak_rss_mb_per_worker"].items()))  # fmt: skip
        ok_national = national.exit_code == 0 and rep["wall_s"] <= NATIONAL_TARGET_S
        verdicts.append(f"national batch {rep['wall_s']:.0f} s (target <= {NATIONAL_TARGET_S:.0f} s, every "
                        f"scenario succeeded): {verdict(ok_national)}")  # fmt: skip

    if "noop" in parts:  # 2. a no-op rerun through the command line
        noop_s, out = bench.cli("--json")
        noop = json.loads(out.stdout) if out.stdout.strip() else {}
        record.update(noop_s=noop_s, noop_exit=out.returncode,
                      noop_recomputed=noop.get("counts", {}).get("recomputed"))  # fmt: skip
        say(f"no-op rerun (branchnet batch, starting Python included): {noop_s:.2f} s, exit {out.returncode}, "
            f"{record['noop_recomputed']} recomputed")  # fmt: skip
        ok_noop = noop_s <= NOOP_TARGET_S and out.returncode == 0 and record["noop_recomputed"] == 0
        verdicts.append(f"no-op rerun {noop_s:.2f} s (target <= {NOOP_TARGET_S:g} s, nothing recomputed): "
                        f"{verdict(ok_noop)}")  # fmt: skip

    if "changed" in parts:  # 3. the changed set
        names = sorted(ids)
        edited, touched = names[0:3], names[3:5]
        for name in edited:
            bench.edit(ids[name])
        for name in touched:
            bench.touch_sources(name)
        changed = bench.batch(executor="processes", workers=2)
        expected = {ids[n] for n in edited + touched}
        got = {r["scenario_id"] for r in changed.report["scenarios"] if r["status"] != "skipped"}
        record.update(changed_expected=len(expected), changed_recomputed=len(got), changed_exact=got == expected,
                      changed_s=changed.report["wall_s"], changed_exit=changed.exit_code)  # fmt: skip
        say(f"changed set: {len(edited)} scenarios edited, {len(touched)} regions' census files changed -> "
            f"recomputed {len(got)} ({'exactly those' if got == expected else 'NOT exactly those'}) in "
            f"{changed.report['wall_s']:.0f} s")  # fmt: skip
        verdicts.append(f"recomputed set == changed set ({len(expected)} scenarios): {verdict(got == expected)}")

    if "speedup" in parts:  # 4. speed-up from 1 to 2 Dask workers on the smallest work-bound regions
        last = last_statuses(bench, ids)
        bound_by_work = [n for n in ids if last.get(n) not in (None, "time_limit")]
        small = sorted(bound_by_work, key=lambda n: info["sizes"][n])[: args.subset]
        subset = tuple(ids[n] for n in small)
        one = bench.batch(force=True, executor="dask", workers=1, scenario_ids=subset)
        two = bench.batch(force=True, executor="dask", workers=2, scenario_ids=subset)
        speedup = one.report["wall_s"] / two.report["wall_s"]
        ends = statuses(bench, two.report)
        work_bound = len(subset) == args.subset and all(s != "time_limit" for s in ends.values())
        record.update(subset=len(subset), subset_people=int(sum(info["sizes"][n] for n in small)),
                      one_worker_s=one.report["wall_s"], two_workers_s=two.report["wall_s"], speedup=speedup,
                      subset_statuses=ends, subset_work_bound=work_bound)  # fmt: skip
        say(f"speed-up on the {len(subset)} smallest work-bound regions ({record['subset_people']:,} people): "
            f"1 worker {one.report['wall_s']:.1f} s (baseline), 2 workers {two.report['wall_s']:.1f} s -> "
            f"{speedup:.2f}x; plans ended by {sorted(set(ends.values()))}")  # fmt: skip
        verdicts.append(f"speed-up 1 -> 2 Dask workers {speedup:.2f}x (target >= {SPEEDUP_TARGET}x, work-bound "
                        f"plans {work_bound}): {verdict(speedup >= SPEEDUP_TARGET and work_bound)}")  # fmt: skip

    if args.json:
        emit(record)
        return
    for line in verdicts:
        print(line)


def last_statuses(bench: Bench, ids: dict[str, str]) -> dict[str, str]:
    """The solver status of each scenario's last succeeded run (by name)."""
    from sqlalchemy import select

    from service.store.db import Run

    root = bench.services.files.root
    names = {sid: name for name, sid in ids.items()}
    out: dict[str, str] = {}
    with bench.services.sessions() as s:
        runs = s.scalars(select(Run).where(Run.scenario_id.in_(list(names)), Run.status == "succeeded")
                         .order_by(Run.finished_at))  # fmt: skip
        for run in runs:  # later runs overwrite earlier ones
            if run.result_path:
                plan = json.loads((root / run.result_path / "plan.json").read_text())
                out[names[run.scenario_id]] = plan["solver"]["status"]
    return out


if __name__ == "__main__":
    main()
