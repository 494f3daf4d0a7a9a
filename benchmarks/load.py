"""Load: ``--clients`` clients for ``--seconds`` mixing reads, scenario writes and run submissions on a live server.

Usage::

    python -m benchmarks.load [--clients 50] [--seconds 60] [--rate 2] [--processes 1] [--baseline-seconds 10] [--json]

Starts ``branchnet serve`` (SQLite in a temporary data folder, the default ``run_workers=1``) on a free loopback
port, creates an admin key, uploads the synthetic toy region and runs one toy scenario to success
(:func:`benchmarks.api.prepare`); every client then gets a scenario of its own (a light plan: the cheapest network
without a bookmobile). Each client sends ``--rate`` requests a second (evenly paced, staggered; 2 by default, so
100 requests a second in all: 50 planners each clicking every half second, with the web app's polling, is more
than a council's staff make), drawn with a seeded generator from this mix:

=============  ======  ====================================================================================
kind           share   request
=============  ======  ====================================================================================
read           85 %    one of: ``GET /regions``, ``GET /scenarios``, ``GET /scenarios/{own}``,
                       ``GET /scenarios/{seeded}/runs``, ``GET /runs/{seeded}``, ``GET /runs/{seeded}/plan``
update         8 %     ``PUT /scenarios/{own}`` with ``If-Match`` of the version it last saw (expects 200)
create         5 %     ``POST /scenarios``; a client keeping more than 2 such scenarios deletes its oldest
                       (``DELETE``, counted as ``delete``), so the database does not grow without end
run            2 %     ``POST /scenarios/{own}/runs`` (expects 202): the runs queue behind the one worker
=============  ======  ====================================================================================

Any other status, a wrong plan body or a transport error is an error (target 0). Latencies are reported per kind
and pooled for reads and for writes (p50, p95, p99); target: p99 of reads <= 50 ms.

Baseline measured in the same run, before the load: the same read mix from **one** client at the same rate, on
the quiet server; the load's read latencies are printed as ratios against it. Then ``--warmup-seconds`` of the full
load (not counted: the server's thread pool and caches fill), then the measured phase.

Memory: ``VmRSS`` from ``/proc/<pid>/status`` of the server process, sampled every second, and separately the sum
over its child processes (the run workers, one spawned process per run), at the start and the end of the measured
phase; the server's is flat when end / start <= 1.2. CPU seconds of the server, its workers and this client over
the phase are printed too: the client must not be the bottleneck, so its CPU share and how late its paced
requests went out (send lag) are reported.

Capacity (measured on this 2-core machine): one server process serves this mix at about 180 requests a second
while a run worker plans on the other core. At ``--rate 5`` (250 requests a second) the machine is saturated, with
one server process or two (``--processes 2``: the servers take one core, the two run workers the other) and the
requests queue: read p99 0.6-0.7 s. That load misses the target, and is printed as measured.

The per-key rate limit (``BRANCHNET_RATE_LIMIT_PER_S``) is set to 100,000 requests/s with a burst of 100,000 for
this server, so the limiter's code runs on every request but never refuses one: all clients share one key, and the
point is the server's capacity, not the limiter's (which ``--rate-limit`` can set instead). Only 127.0.0.1 is ever
contacted; every loop is bounded by the duration.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import random
import resource
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._common import REPO, emit, verdict
from benchmarks.api import prepare
from service.api.local_server import local_server
from service.plans.scenario import example

API = "/api/v1"
P99_TARGET_MS = 50.0
RSS_FLAT = 1.2
READS = ("regions", "scenarios", "scenario", "scenario_runs", "run_status", "run_plan")
WRITES = ("update", "create", "delete", "run_submit")
MIX = (("read", 0.85), ("update", 0.08), ("create", 0.05), ("run_submit", 0.02))
KEEP_CREATED = 2

# the light plan the clients own and run: the cheapest network without a bookmobile, 2 s of solver at most
LIGHT: dict[str, Any] = example("toy_quick", name="load", objective="min_cost", fleet={"max_vehicles": 0},
                                solve={"time_limit_s": 2, "seed": 0})  # fmt: skip
LIGHT["standards"] = {**LIGHT["standards"], "coverage_target": 0.8}
LIGHT.pop("budget_share")


# ---------------------------------------------------------------------------------------------------------------
# a minimal HTTP/1.1 client: httpx costs about a millisecond of CPU a request, which on 2 shared cores would be
# measured as server latency


class Conn:
    """One kept-alive HTTP/1.1 connection on asyncio streams (Content-Length and chunked bodies)."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nX-API-Key: {key}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: str = "") -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        extra = headers
        if body is not None:
            extra += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + (body or b""))
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(int(hdrs.get("content-length", "0")))
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, hdrs, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


# ---------------------------------------------------------------------------------------------------------------
# measurement


@dataclass
class Phase:
    """Latencies (s) per kind, errors, send lags of one phase."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    lags: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    client_cpu_s: float = 0.0

    def pooled(self, kinds: tuple[str, ...]) -> np.ndarray:
        values = [v for k in kinds for v in self.latencies.get(k, [])]
        return np.asarray(values, dtype=float) * 1000

    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values()) + sum(
            n for k, n in self.errors.items() if k.startswith("transport")
        )


def pct(ms: np.ndarray, q: float) -> float:
    return round(float(np.percentile(ms, q)), 2) if len(ms) else float("nan")


def stats(ms: np.ndarray) -> dict[str, Any]:
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99), "max_ms": pct(ms, 100)}


def _status_field(pid: int, name: str) -> int:
    """A ``kB`` field of /proc/<pid>/status in bytes (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _cpu_s(pid: int, children: bool = False) -> float:
    """User + system CPU seconds of a process (``children``: of its children that ended), 0.0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    first = 13 if children else 11  # utime, stime; cutime, cstime
    return (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")


#: Server processes (``--processes``): with more than one, ``branchnet serve`` is a supervisor whose children are
#: the serving processes, and the run workers are their children.
PROCESSES = 1


def server_pids(pid: int) -> list[int]:
    """The processes that serve requests: the server itself, or the supervisor and its serving children."""
    if PROCESSES == 1:
        return [pid]
    return [pid, *children(pid)]


def children(pid: int) -> list[int]:
    return [k for k in descendants(pid) if _ppid(k) == pid]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
        return -1


def server_cpu_s(pid: int) -> float:
    return sum(_cpu_s(k) for k in server_pids(pid))


def run_worker_pids(pid: int) -> list[int]:
    serving = set(server_pids(pid))
    return [k for k in descendants(pid) if k not in serving]


def workers_cpu_s(pid: int) -> float:
    """CPU seconds of the run workers so far: those their parents reaped, and those still running."""
    parents = server_pids(pid)[1:] if PROCESSES > 1 else [pid]
    return sum(_cpu_s(p, children=True) for p in parents) + sum(_cpu_s(k) for k in run_worker_pids(pid))


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc/*/stat's parent ids)."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                continue
            parents[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Sampler(threading.Thread):
    """Samples the server's RSS and its children's (the run workers) every ``every_s``."""

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int, int, int]] = []  # (t, server rss, workers' rss, workers)
        self.stop = threading.Event()

    def sample(self) -> tuple[float, int, int, int]:
        kids = run_worker_pids(self.pid)
        serving = sum(_status_field(k, "VmRSS") for k in server_pids(self.pid))
        row = (time.monotonic(), serving, sum(_status_field(k, "VmRSS") for k in kids), len(kids))
        self.samples.append(row)
        return row

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            self.sample()


# ---------------------------------------------------------------------------------------------------------------
# the clients


@dataclass
class World:
    """What the clients know: the seeded ids, and each client's own scenario and its version."""

    key: str
    seeded_scenario: str
    seeded_run: str
    plan: bytes
    own: list[str]
    versions: list[int]
    created: list[list[str]]


async def one_client(i: int, world: World, out: Phase, host: str, port: int, rate: float, start: float,
                     deadline: float, offset: float, reads_only: bool, rng: random.Random) -> None:  # fmt: skip
    conn = Conn(host, port, world.key)
    own = world.own[i]
    paths = {"regions": f"{API}/regions", "scenarios": f"{API}/scenarios", "scenario": f"{API}/scenarios/{own}",
             "scenario_runs": f"{API}/scenarios/{world.seeded_scenario}/runs",
             "run_status": f"{API}/runs/{world.seeded_run}",
             "run_plan": f"{API}/runs/{world.seeded_run}/plan"}  # fmt: skip
    kinds = [kind for kind, _ in MIX]
    weights = [share for _, share in MIX]
    k = 0
    edits = 0
    try:
        await conn.request("GET", f"{API}/regions")  # the connection opens outside the measurement
        while True:
            due = start + offset + k / rate
            k += 1
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            if time.perf_counter() >= deadline:
                break
            out.lags.append(max(0.0, time.perf_counter() - due))
            kind: str = "read" if reads_only else rng.choices(kinds, weights)[0]
            if kind == "read":
                kind = rng.choice(READS)
            method, path, body, headers, expect = "GET", paths.get(kind, ""), None, "", 200
            if kind == "update":
                edits += 1
                body = json.dumps(LIGHT | {"name": f"load-{i}-v{edits}"}).encode()
                method, path, headers = "PUT", f"{API}/scenarios/{own}", f'If-Match: "{world.versions[i]}"\r\n'
            elif kind == "create":
                if len(world.created[i]) >= KEEP_CREATED:
                    kind, method, expect = "delete", "DELETE", 204
                    path = f"{API}/scenarios/{world.created[i][0]}"
                else:
                    edits += 1
                    body = json.dumps(LIGHT | {"name": f"load-{i}-new{edits}"}).encode()
                    method, path, expect = "POST", f"{API}/scenarios", 201
            elif kind == "run_submit":
                method, path, expect = "POST", f"{API}/scenarios/{own}/runs", 202
            t0 = time.perf_counter()
            try:
                status, hdrs, data = await asyncio.wait_for(conn.request(method, path, body, headers), 30.0)
            except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                out.errors[f"transport:{kind}:{type(exc).__name__}"] += 1
                conn.close()
                continue
            out.latencies[kind].append(time.perf_counter() - t0)
            if status != expect:
                out.errors[f"{kind}:{status}"] += 1
                if kind == "update" and status == 412:  # learn the version again, so one error stays one
                    got = await conn.request("GET", f"{API}/scenarios/{own}")
                    world.versions[i] = int(got[1].get("etag", '"0"').strip('"'))
            elif kind == "run_plan" and data != world.plan:
                out.errors["run_plan:wrong body"] += 1
            elif kind == "update":
                world.versions[i] = int(hdrs["etag"].strip('"'))
            elif kind == "create":
                world.created[i].append(json.loads(data)["id"])
            elif kind == "delete":
                world.created[i].pop(0)
    finally:
        conn.close()


async def run_phase(world: World, base: str, clients: int, rate: float, seconds: float, *, reads_only: bool,
                    seed: int) -> Phase:  # fmt: skip
    out = Phase()
    url = httpx.URL(base)
    host, port = str(url.host), int(url.port or 80)
    start = time.perf_counter() + 0.5  # connections open first
    deadline = start + seconds
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(*(
        one_client(i, world, out, host, port, rate, start, deadline, (i / clients) / rate, reads_only,
                   random.Random(seed * 1000 + i))
        for i in range(clients)
    ))  # fmt: skip
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out.elapsed_s = time.perf_counter() - start
    out.client_cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return out


def seed_world(base: str, key: str, run_id: str, plan: bytes, clients: int) -> World:
    """One scenario per client (the light plan) and the seeded run's scenario."""
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=60) as http:
        seeded_scenario = http.get(f"{API}/runs/{run_id}").json()["scenario_id"]
        own, versions = [], []
        for i in range(clients):
            r = http.post(f"{API}/scenarios", json=copy.deepcopy(LIGHT) | {"name": f"load-{i}"})
            if r.status_code != 201:
                raise SystemExit(f"scenario failed: {r.status_code} {r.text}")
            own.append(r.json()["id"])
            versions.append(r.json()["version"])
    return World(key, seeded_scenario, run_id, plan, own, versions, [[] for _ in range(clients)])


def phase_record(p: Phase, clients: int) -> dict[str, Any]:
    reads, writes = p.pooled(READS), p.pooled(WRITES)
    return {
        "clients": clients, "seconds": round(p.elapsed_s, 2), "requests": p.requests(),
        "requests_per_s": round(p.requests() / p.elapsed_s, 1) if p.elapsed_s else 0.0,
        "by_kind": {k: {"requests": len(v), **stats(np.asarray(v) * 1000)} for k, v in sorted(p.latencies.items())},
        "reads": stats(reads), "writes": stats(writes),
        "errors": sum(p.errors.values()), "error_kinds": dict(p.errors),
        "client_cpu_s": round(p.client_cpu_s, 2),
        "client_cores": round(p.client_cpu_s / p.elapsed_s, 3) if p.elapsed_s else 0.0,
        "send_lag_p99_ms": pct(np.asarray(p.lags) * 1000, 99), "send_lag_max_ms": pct(np.asarray(p.lags) * 1000, 100),
    }  # fmt: skip


def mb(n: int) -> float:
    return round(n / 2**20, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the measured load phase")
    parser.add_argument("--rate", type=float, default=2.0, help="requests a second per client")
    parser.add_argument("--baseline-seconds", type=float, default=10.0, help="the one-client read baseline")
    parser.add_argument("--warmup-seconds", type=float, default=5.0, help="full load before the measured phase")
    parser.add_argument("--rate-limit", type=float, default=100_000.0,
                        help="BRANCHNET_RATE_LIMIT_PER_S (and burst) of the server; 0 turns it off")  # fmt: skip
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="server processes (branchnet serve --processes; BRANCHNET_SERVER_PROCESSES)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    global PROCESSES
    PROCESSES = args.processes

    with tempfile.TemporaryDirectory(prefix="branchnet-bench-load-") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        leaflet = REPO / "node_modules" / "leaflet" / "dist"
        settings = {"BRANCHNET_DATA_DIR": str(data), "BRANCHNET_LEAFLET_DIR": str(leaflet),
                    "BRANCHNET_RATE_LIMIT_PER_S": f"{args.rate_limit:g}", "BRANCHNET_RUN_WORKERS": "1",
                    "BRANCHNET_SERVER_PROCESSES": str(args.processes),
                    "BRANCHNET_RATE_LIMIT_BURST": str(max(1, int(args.rate_limit)))}  # fmt: skip
        with local_server(settings, cwd=tmp, log=tmp / "server.log") as server:
            key, run_id, run_s = prepare(server.url, server.env, tmp)
            plan = next(data.glob(f"files/orgs/*/runs/{run_id}/plan.json")).read_bytes()
            world = seed_world(server.url, key, run_id, plan, args.clients)
            pid = server.process.pid
            sampler = Sampler(pid)
            rss_setup = sampler.sample()
            cpu_base0 = server_cpu_s(pid)
            baseline = asyncio.run(run_phase(world, server.url, 1, args.rate, args.baseline_seconds, reads_only=True,
                                             seed=args.seed))  # fmt: skip
            cpu_base1 = server_cpu_s(pid)
            if args.warmup_seconds > 0:
                asyncio.run(run_phase(world, server.url, args.clients, args.rate, args.warmup_seconds,
                                      reads_only=False, seed=args.seed + 1))  # fmt: skip
            first = sampler.sample()
            cpu0 = server_cpu_s(pid)
            workers_cpu0 = workers_cpu_s(pid)
            sampler.start()
            loaded = asyncio.run(run_phase(world, server.url, args.clients, args.rate, args.seconds,
                                           reads_only=False, seed=args.seed + 2))  # fmt: skip
            sampler.stop.set()
            sampler.join(5)
            last = sampler.sample()
            cpu1 = server_cpu_s(pid)
            workers_cpu = workers_cpu_s(pid) - workers_cpu0
            with httpx.Client(base_url=server.url, headers={"X-API-Key": key}, timeout=60) as http:
                listed = [http.get(f"{API}/scenarios/{sc}/runs", params={"limit": 1000}).json() for sc in world.own]
                states = Counter(r["status"] for runs in listed for r in runs)

    load_rec, base_rec = phase_record(loaded, args.clients), phase_record(baseline, 1)
    peak = max(s[1] for s in sampler.samples)
    rss = {"server_setup_mb": mb(rss_setup[1]), "server_start_mb": mb(first[1]), "server_end_mb": mb(last[1]),
           "server_peak_mb": mb(peak), "server_end_over_start": round(last[1] / first[1], 3),
           "workers_start_mb": mb(first[2]), "workers_end_mb": mb(last[2]),
           "workers_start": first[3], "workers_end": last[3],
           "workers_peak_mb": mb(max(s[2] for s in sampler.samples))}  # fmt: skip
    cpu = {"server_cores": round((cpu1 - cpu0) / loaded.elapsed_s, 3),
           "server_cores_baseline": round((cpu_base1 - cpu_base0) / baseline.elapsed_s, 3),
           "workers_cores": round(workers_cpu / loaded.elapsed_s, 3), "client_cores": load_rec["client_cores"],
           "cpus": os.cpu_count(), "loadavg_end": Path("/proc/loadavg").read_text().split()[:3]}  # fmt: skip
    reads, base_reads = load_rec["reads"], base_rec["reads"]
    ratios = {"read_p50": round(reads["p50_ms"] / base_reads["p50_ms"], 2),
              "read_p99": round(reads["p99_ms"] / base_reads["p99_ms"], 2)}  # fmt: skip
    ok_p99 = reads["p99_ms"] <= P99_TARGET_MS
    ok_errors = load_rec["errors"] == 0 and base_rec["errors"] == 0
    ok_rss = rss["server_end_over_start"] <= RSS_FLAT
    record = {"clients": args.clients, "rate_per_client": args.rate, "seconds": args.seconds,
              "rate_limit_per_s": args.rate_limit, "toy_run_s": round(run_s, 1), "load": load_rec,
              "baseline_one_client": base_rec, "over_baseline": ratios, "rss": rss, "cpu": cpu,
              "runs_after": dict(states), "target_read_p99_ms": P99_TARGET_MS,
              "pass": {"read_p99": ok_p99, "errors": ok_errors, "rss_flat": ok_rss}}  # fmt: skip
    if args.json:
        emit(record)
        return
    print(f"branchnet serve (SQLite, {args.processes} process(es), run_workers=1 each, rate limit "
          f"{args.rate_limit:g}/s so it never refuses) under "
          f"{args.clients} clients x {args.rate:g} requests/s for {loaded.elapsed_s:.0f} s "
          f"(after {args.warmup_seconds:g} s of warm-up):")  # fmt: skip
    print(f"  {'kind':<14} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind, r in load_rec["by_kind"].items():
        print(f"  {kind:<14} {r['requests']:>8} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['max_ms']:>8.1f}")  # fmt: skip
    for name, r in (("reads", reads), ("writes", load_rec["writes"]), ("baseline reads", base_reads)):
        print(f"  {name:<14} {r['n']:>8} {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} "
              f"{r['max_ms']:>8.1f}")  # fmt: skip
    print(f"  {load_rec['requests']} requests = {load_rec['requests_per_s']}/s; errors {load_rec['errors']} "
          f"{load_rec['error_kinds'] or ''} (baseline: {base_rec['errors']})")  # fmt: skip
    print(f"  reads against the one-client baseline: p50 x{ratios['read_p50']}, p99 x{ratios['read_p99']}")
    print(f"  server RSS {rss['server_start_mb']} MB at the start, {rss['server_end_mb']} MB at the end "
          f"(x{rss['server_end_over_start']}; peak {rss['server_peak_mb']} MB; {rss['server_setup_mb']} MB before "
          f"the baseline); run workers {rss['workers_start_mb']} MB ({rss['workers_start']} processes) -> "
          f"{rss['workers_end_mb']} MB ({rss['workers_end']}), peak {rss['workers_peak_mb']} MB")  # fmt: skip
    print(f"  CPU (cores of {cpu['cpus']}): server {cpu['server_cores']} (baseline {cpu['server_cores_baseline']}), "
          f"run workers {cpu['workers_cores']}, this client {cpu['client_cores']}; client send lag p99 "
          f"{load_rec['send_lag_p99_ms']} ms, max {load_rec['send_lag_max_ms']} ms; runs at the end: "
          f"{dict(states)}")  # fmt: skip
    print(f"read p99 {reads['p99_ms']:.1f} ms (target <= {P99_TARGET_MS:g} ms): {verdict(ok_p99)}; errors "
          f"{load_rec['errors']} (target 0): {verdict(ok_errors)}; server RSS end/start "
          f"{rss['server_end_over_start']} (flat: <= {RSS_FLAT}): {verdict(ok_rss)}")  # fmt: skip


if __name__ == "__main__":
    main()
