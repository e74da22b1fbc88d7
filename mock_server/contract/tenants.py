"""Tenants are API keys; the fake keeps and shows only their fingerprints, never a key in clear."""

from __future__ import annotations

import functools
import hashlib
import re

_FINGERPRINT = re.compile(r"tk_[0-9a-f]{12}")


def bearer_key(authorization: str) -> str | None:
    """The key an ``Authorization`` header names as ``Bearer <key>`` (any case of "Bearer"), or None: the one rule
    the front door, the routes and the control plane tell tenants by."""
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    return key if key and scheme.lower() == "bearer" else None


# Every request names its tenant up to three times (faults, journal, route); a run uses a handful of keys. Keys stay
# in this process's memory only, as they already do while a request is handled.
@functools.lru_cache(maxsize=1024)
def fingerprint(key: str) -> str:
    """A stable, non-reversible name for an API key: ``tk_`` and 12 hex digits of its SHA-256 (48 bits: tells a
    run's tenants apart, and too short to be worth brute-forcing back to a key)."""
    return "tk_" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def tenant_id(key_or_fingerprint: str) -> str:
    """The tenant a control call names, by key or by fingerprint (a key shaped like a fingerprint is taken as one)."""
    return key_or_fingerprint if _FINGERPRINT.fullmatch(key_or_fingerprint) else fingerprint(key_or_fingerprint)
