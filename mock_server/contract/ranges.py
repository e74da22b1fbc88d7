"""Integer ranges as regular expressions, so a ``W*H`` size with per-side bounds stays plain JSON Schema.

A ``pattern`` keeps validation inside jsonschema (one validator, one error path) and lets
hypothesis-jsonschema draw valid sizes directly instead of filtering.
"""

from __future__ import annotations

# Python's re (what jsonschema runs) lets "$" match before a final newline, so "^1024[*]1024$" accepts
# "1024*1024\n". "(?![\s\S])" — no character at all follows — is the end of the string in Python and in
# ECMA-262 alike (ECMA has no "\Z"; Python's "\Z" means something else in ECMA), so schemas stay portable.
END_OF_STRING = r"(?![\s\S])"


def full_match(body: str) -> str:
    """A JSON Schema ``pattern`` (search semantics) that accepts exactly the strings ``body`` matches whole."""
    return f"^(?:{body}){END_OF_STRING}"


def int_range_regex(lo: int, hi: int) -> str:
    """A non-capturing group matching exactly the decimal integers in ``[lo, hi]`` (no leading zeros)."""
    if lo < 0 or hi < lo:
        raise ValueError(f"unsupported range {lo}..{hi}")
    parts: list[str] = []
    for a, b in _split_by_length(lo, hi):
        parts.extend(_same_length(str(a), str(b)))
    return "(?:" + "|".join(parts) + ")"


def _split_by_length(lo: int, hi: int) -> list[tuple[int, int]]:
    spans = []
    while lo <= hi:
        top = min(hi, 10 ** len(str(lo)) - 1)
        spans.append((lo, top))
        lo = top + 1
    return spans


def _digit(a: str, b: str) -> str:
    return a if a == b else f"[{a}-{b}]"


def _same_length(a: str, b: str) -> list[str]:
    """Alternatives matching every string of len(a) digits between a and b inclusive."""
    n = len(a)
    if n == 1:
        return [_digit(a, b)]
    if a[0] == b[0]:
        return [a[0] + _group(_same_length(a[1:], b[1:]))]
    if a[1:] == "0" * (n - 1) and b[1:] == "9" * (n - 1):
        return [_digit(a[0], b[0]) + _any(n - 1)]
    out: list[str] = []
    low_tail = "0" * (n - 1)
    high_tail = "9" * (n - 1)
    first = int(a[0])
    last = int(b[0])
    if a[1:] != low_tail:
        out.append(a[0] + _group(_same_length(a[1:], high_tail)))
        first += 1
    if b[1:] != high_tail:
        last -= 1
    if first <= last:
        out.append(_digit(str(first), str(last)) + _any(n - 1))
    if b[1:] != high_tail:
        out.append(b[0] + _group(_same_length(low_tail, b[1:])))
    return out


def _any(count: int) -> str:
    return "[0-9]" if count == 1 else f"[0-9]{{{count}}}"


def _group(alternatives: list[str]) -> str:
    return alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
