"""API keys, organisations and roles: creation, authentication, expiry, rotation and revocation.

A key is ``bn_<prefix>_<secret>``; only its SHA-256 hash is stored (keys are 256-bit random, so a plain hash is
enough; no slow KDF needed). Roles are ordered: ``viewer`` reads, ``planner`` also writes scenarios and starts
runs, ``admin`` also manages regions and keys. Everything an organisation owns is invisible to others: a foreign
id answers 404, exactly like a missing one.

A key may expire (``api_keys.expires_at``): from that moment :func:`authenticate` refuses it with
:class:`KeyExpiredError`, whose message says when. :func:`rotate_key` makes a new key with the same organisation,
role and name and retires the old one, at once (revoked) or after a grace period (its expiry brought forward).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from service.errors import BadRequestError, NotFoundError
from service.store.db import ROLES, ApiKey, Organisation


@dataclass(frozen=True)
class Principal:
    """Who is calling: their organisation, role and key (and when the key expires, if it does)."""

    org_id: str
    role: str
    key_id: str
    expires_at: datetime | None = None

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def expired(self, at: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or datetime.now(UTC))


class KeyExpiredError(Exception):
    """A well-formed, known, unrevoked key whose expiry has passed (the API answers 401 with this message)."""

    def __init__(self, principal: Principal) -> None:
        assert principal.expires_at is not None
        when = principal.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(f"this API key expired at {when}; ask an admin for a new one (branchnet keys rotate)")
        self.principal = principal


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (SQLite hands back naive datetimes of the UTC times stored)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_duration(text: str, option: str = "duration") -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w`` (or ``0``) as a timedelta; :class:`BadRequestError` otherwise."""
    if text.strip() == "0":
        return timedelta(0)
    match = _DURATION.match(text.lower())
    if match is None:
        raise BadRequestError(f"{option} {text!r}: use a number and a unit, e.g. 90d, 12h, 30m, 45s or 2w")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_expiry(expires_in: str | None, expires: str | None, *, now: datetime | None = None) -> datetime | None:
    """The expiry of a new key from ``--expires-in 90d`` or ``--expires YYYY-MM-DD`` (the end of that day, UTC, or
    an ISO date-time), or None for neither; it must lie in the future."""
    if expires_in and expires:
        raise BadRequestError("give --expires-in or --expires, not both")
    now = now or datetime.now(UTC)
    if expires_in:
        delta = parse_duration(expires_in, "--expires-in")
        if delta <= timedelta(0):
            raise BadRequestError(f"--expires-in {expires_in!r} must be longer than 0")
        return now + delta
    if not expires:
        return None
    try:
        at = (datetime.combine(date.fromisoformat(expires), time.max, UTC) if len(expires.strip()) == 10
              else datetime.fromisoformat(expires))  # fmt: skip
    except ValueError:
        raise BadRequestError(f"--expires {expires!r}: use a date YYYY-MM-DD or an ISO date-time") from None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at <= now:
        raise BadRequestError(f"--expires {expires!r} is in the past")
    return at


def create_key(
    session: Session, org_name: str, role: str, name: str = "", *, expires_at: datetime | None = None
) -> tuple[str, ApiKey]:
    """Create a key (and the organisation if new); return the plain key (shown once) and its row."""
    if role not in ROLES:
        raise BadRequestError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not org_name.strip():
        raise BadRequestError("the organisation name must not be empty")
    org = session.scalar(select(Organisation).where(Organisation.name == org_name))
    if org is None:
        org = Organisation(name=org_name)
        session.add(org)
        session.flush()
    return _new_key(session, org.id, role, name, expires_at)


def _new_key(session: Session, org_id: str, role: str, name: str, expires_at: datetime | None) -> tuple[str, ApiKey]:
    prefix = secrets.token_hex(4)
    plain = f"bn_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(org_id=org_id, role=role, name=name, prefix=prefix, hash=hash_key(plain), revoked=False,
                 expires_at=expires_at)  # fmt: skip
    session.add(row)
    session.flush()
    return plain, row


def find_key(session: Session, ref: str) -> ApiKey:
    """The key whose id or prefix is ``ref`` (a plain key also works: its prefix is used)."""
    ref = ref.strip()
    if ref.startswith("bn_") and ref.count("_") >= 2:
        ref = ref.split("_", 2)[1]
    rows = list(session.scalars(select(ApiKey).where(or_(ApiKey.id == ref, ApiKey.prefix == ref))))
    if not rows:
        raise NotFoundError(f"no API key with the id or prefix {ref!r} (branchnet keys list shows them)")
    if len(rows) > 1:
        raise BadRequestError(f"{ref!r} is the prefix of {len(rows)} keys; give the key id instead: "
                              + ", ".join(r.id for r in rows))  # fmt: skip
    return rows[0]


def rotate_key(
    session: Session, ref: str, *, grace: timedelta = timedelta(0), expires_at: datetime | None = None
) -> tuple[str, ApiKey, ApiKey]:
    """Replace the key ``ref`` by a new one with the same organisation, role and name; return the new plain key,
    the new row and the old row.

    The old key is revoked at once without ``grace``; with it, it keeps working until now + ``grace`` (its expiry is
    brought forward, never pushed back). The new key expires at ``expires_at`` when given; else, when the old key
    had an expiry, after the same lifetime from now; else never.
    """
    old = find_key(session, ref)
    if old.revoked:
        raise BadRequestError(f"key {old.id} is revoked; create a new one with branchnet keys create")
    now = datetime.now(UTC)
    old_expiry = utc(old.expires_at)
    if old_expiry is not None and old_expiry <= now:
        raise BadRequestError(f"key {old.id} expired at {old_expiry:%Y-%m-%d %H:%M} UTC; create a new one instead")
    if grace < timedelta(0):
        raise BadRequestError("--grace must not be negative")
    if expires_at is None and old_expiry is not None:
        expires_at = now + (old_expiry - utc(old.created_at))  # type: ignore[operator]
    plain, new = _new_key(session, old.org_id, old.role, old.name, expires_at)
    if grace == timedelta(0):
        old.revoked = True
    else:
        old.expires_at = min(now + grace, old_expiry) if old_expiry else now + grace
    session.flush()
    return plain, new, old


def revoke_key(session: Session, ref: str) -> ApiKey:
    """Revoke the key ``ref`` (id or prefix); it stops working within the API's key cache time (5 s)."""
    row = find_key(session, ref)
    row.revoked = True
    session.flush()
    return row


def identify(session: Session, key: str | None) -> Principal | None:
    """The principal of an unrevoked ``key`` (expired or not), or None for a missing, malformed or unknown key."""
    if not key or not key.startswith("bn_") or key.count("_") < 2:
        return None
    prefix = key.split("_", 2)[1]
    digest = hash_key(key)
    for row in session.scalars(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked.is_(False))):
        if secrets.compare_digest(row.hash, digest):
            return Principal(row.org_id, row.role, row.id, utc(row.expires_at))
    return None


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal of ``key``, or None for a missing, malformed, unknown or revoked key; raises
    :class:`KeyExpiredError` for an expired one."""
    who = identify(session, key)
    if who is not None and who.expired():
        raise KeyExpiredError(who)
    return who
