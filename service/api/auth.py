"""API keys, organisations and roles.

A key is ``bn_<prefix>_<secret>``; only its SHA-256 hash is stored (keys are 256-bit random, so a plain hash is
enough; no slow KDF needed). Roles are ordered: ``viewer`` reads, ``planner`` also writes scenarios and starts
runs, ``admin`` also manages regions and keys. Everything an organisation owns is invisible to others: a foreign
id answers 404, exactly like a missing one.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.errors import BadRequestError
from service.store.db import ROLES, ApiKey, Organisation


@dataclass(frozen=True)
class Principal:
    """Who is calling: their organisation, role and key."""

    org_id: str
    role: str
    key_id: str

    def can(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, org_name: str, role: str, name: str = "") -> tuple[str, ApiKey]:
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
    prefix = secrets.token_hex(4)
    plain = f"bn_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(org_id=org.id, role=role, name=name, prefix=prefix, hash=hash_key(plain), revoked=False)
    session.add(row)
    session.flush()
    return plain, row


def authenticate(session: Session, key: str | None) -> Principal | None:
    """The principal of ``key``, or None for a missing, malformed, unknown or revoked key."""
    if not key or not key.startswith("bn_") or key.count("_") < 2:
        return None
    prefix = key.split("_", 2)[1]
    digest = hash_key(key)
    for row in session.scalars(select(ApiKey).where(ApiKey.prefix == prefix, ApiKey.revoked.is_(False))):
        if secrets.compare_digest(row.hash, digest):
            return Principal(row.org_id, row.role, row.id)
    return None
