"""Observability of the API: structured JSON logs, request metrics (Prometheus text) and the middleware that feeds
them."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from service.config import Settings

log = logging.getLogger("branchnet.api")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line (structured logs)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str)


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger("branchnet")
    if any(getattr(h, "_branchnet", False) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler._branchnet = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if settings.log_json else logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


@dataclass
class Metrics:
    """Counters and latency histograms, served in the Prometheus text format at ``/metrics``."""

    buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    requests: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    hist: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 12))
    total_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Events counted as ``branchnet_<name>_total`` (for example failed audit writes).
    events: Counter[str] = field(default_factory=Counter)

    def count(self, name: str, n: int = 1) -> None:
        self.events[name] += n

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        counts = self.hist[route]
        for i, b in enumerate(self.buckets):
            if seconds <= b:
                counts[i] += 1
        counts[-1] += 1
        self.total_s[route] += seconds

    def render(self, extra: dict[str, float]) -> str:
        lines = ["# HELP branchnet_http_requests_total HTTP requests by method, route and status.",
                 "# TYPE branchnet_http_requests_total counter"]  # fmt: skip
        for (m, r, s), n in sorted(self.requests.items()):
            lines.append(f'branchnet_http_requests_total{{method="{m}",route="{r}",status="{s}"}} {n}')
        lines += ["# HELP branchnet_http_request_seconds Request latency by route.",
                  "# TYPE branchnet_http_request_seconds histogram"]  # fmt: skip
        for r, counts in sorted(self.hist.items()):
            for b, c in zip(self.buckets, counts, strict=False):
                lines.append(f'branchnet_http_request_seconds_bucket{{route="{r}",le="{b}"}} {c}')
            lines.append(f'branchnet_http_request_seconds_bucket{{route="{r}",le="+Inf"}} {counts[-1]}')
            lines.append(f'branchnet_http_request_seconds_sum{{route="{r}"}} {self.total_s[r]:.6f}')
            lines.append(f'branchnet_http_request_seconds_count{{route="{r}"}} {counts[-1]}')
        for name, n in sorted(self.events.items()):
            lines.append(f"# TYPE branchnet_{name}_total counter")
            lines.append(f"branchnet_{name}_total {n}")
        for name, value in sorted(extra.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


class ObserveMiddleware:
    """Pure ASGI middleware: request metrics and structured access logs (the plan hot path is not logged)."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - start
            self.metrics.observe(scope["method"], path, status[0], elapsed)
            if status[0] >= 500 or not path.endswith("/plan"):
                fields = {"method": scope["method"], "path": scope["path"], "status": status[0],
                          "ms": round(1000 * elapsed, 2)}  # fmt: skip
                log.info("request", extra={"fields": fields})
