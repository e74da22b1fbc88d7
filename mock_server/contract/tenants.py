"""Showing a tenant without showing its secret: API keys are bearer credentials, so anything displayed or logged
(journal dumps, control listings, error messages) names a tenant by a fingerprint instead."""

from __future__ import annotations

import hashlib

PREFIX = "tk_"
LENGTH = 12  # 48 bits: tells a test run's tenants apart, and too short to be worth brute-forcing back to a key


def fingerprint(key: str) -> str:
    """A stable, non-reversible label for an API key: ``tk_`` + the first 12 hex digits of its SHA-256."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return PREFIX + digest[:LENGTH]
