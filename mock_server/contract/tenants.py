"""Tenants by fingerprint: how logs and reports name an API key without ever showing it."""

from __future__ import annotations

import hashlib

PREFIX = "tk_"


def fingerprint(api_key: str) -> str:
    """``tk_`` and the first 12 hex digits of the key's SHA-256: stable per key, useless for calling the API."""
    return PREFIX + hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:12]
