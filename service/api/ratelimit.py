"""A rate limit per API key: a token bucket per key, in this process (pure ASGI middleware).

Each key's bucket holds at most ``rate_limit_burst`` tokens and refills at ``rate_limit_per_s`` tokens a second;
a request takes one token, and one that finds none is answered ``429 Too Many Requests`` with ``Retry-After``
(whole seconds, at least 1, until a token is back) and a JSON ``{"detail": ...}``, before it reaches the
endpoint, the audit log or the database. ``rate_limit_per_s = 0`` turns the limit off.

Requests without a valid key (none, unknown, revoked, expired) share one bucket per client address, so guessing
keys or flooding with made-up ones is limited like anonymous traffic: the limiter learns which presented keys are
valid from the endpoints' authentication (:data:`service.api.deps.PRINCIPAL_SCOPE`), so a key's very first request
counts against its address and every later one against the key. ``/healthz`` is not limited (load balancers).

The buckets live in the server process: with several servers behind a load balancer each limits on its own, so a
key may make up to N times the rate across N servers. Behind a reverse proxy every client has the proxy's address
unless the server is told to trust its ``X-Forwarded-For`` (uvicorn's ``--forwarded-allow-ips``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from service.api.auth import Principal, hash_key
from service.api.deps import PRINCIPAL_SCOPE

EXEMPT = frozenset({"/healthz"})
MAX_TRACKED = 10_000


@dataclass
class Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Token buckets by caller: :meth:`take` spends a token, or says how long until one is back."""

    def __init__(self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s = per_s
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, Bucket] = {}

    def take(self, caller: str) -> float:
        """Spend one of ``caller``'s tokens and return 0, or return the seconds until a token is back."""
        now = self.clock()
        bucket = self.buckets.get(caller)
        if bucket is None:
            if len(self.buckets) >= MAX_TRACKED:
                self._forget_full(now)
            bucket = self.buckets[caller] = Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.stamp) * self.per_s)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.per_s

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (a new bucket starts full, so nothing changes for their callers)."""
        for caller, b in list(self.buckets.items()):
            if b.tokens + (now - b.stamp) * self.per_s >= self.burst:
                del self.buckets[caller]
        if len(self.buckets) >= MAX_TRACKED:  # all busy: start afresh rather than grow without bound
            self.buckets.clear()


def _credential(scope: dict[str, Any]) -> str | None:
    from starlette.requests import Request

    from service.api.deps import _basic_key, _key_of

    request = Request(scope)
    return _key_of(request) or _basic_key(request)


class RateLimitMiddleware:
    """Answer 429 with ``Retry-After`` to callers over their rate (see the module)."""

    def __init__(self, app: Any, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.limiter = RateLimiter(per_s, burst, clock) if per_s > 0 else None
        self.known: dict[str, str] = {}  # digest of a presented key -> its key id, once it authenticated

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.limiter is None or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        key = _credential(scope)
        digest = hash_key(key) if key else None
        key_id = self.known.get(digest) if digest else None
        caller = f"key:{key_id}" if key_id else f"ip:{(scope.get('client') or ('?',))[0]}"
        wait = self.limiter.take(caller)
        if wait > 0:
            await self._refuse(send, wait, by_key=key_id is not None)
            return
        status = [0]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if digest is None:
            return
        who: Principal | None = scope.get(PRINCIPAL_SCOPE)
        if who is not None and not who.expired():
            if digest not in self.known and len(self.known) >= MAX_TRACKED:
                self.known.clear()
            self.known[digest] = who.key_id
        elif status[0] == 401:
            self.known.pop(digest, None)

    @staticmethod
    async def _refuse(send: Any, wait: float, *, by_key: bool) -> None:
        retry = max(1, math.ceil(wait))
        whose = "this API key" if by_key else "requests without a valid API key from your address"
        body = json.dumps({"detail": f"too many requests: {whose} went over the rate limit; retry in {retry} s"})
        await send({"type": "http.response.start", "status": 429,
                    "headers": [(b"content-type", b"application/json"), (b"retry-after", str(retry).encode()),
                                (b"content-length", str(len(body)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": body.encode()})
