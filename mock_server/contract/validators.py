"""Compiled JSON Schemas: jsonschema-rs decides whether a document is valid, jsonschema explains why not.

Deciding is on every request's path, so it is done by a validator compiled to native code once per schema.
Explaining is rarer, and its wording is part of the API (a 400's message and ``errors`` come from jsonschema's
errors), so a document the native validator calls invalid is handed to jsonschema, which judges it again and
lists every violation. A native "invalid" is never final; a native "valid" is. So the two must agree wherever the
native one says valid, and a schema using something they read differently is judged by jsonschema alone.

Instances are parsed JSON (``json.loads``, ``jsonbody.parse_json``): jsonschema-rs reads a tuple as an array,
jsonschema does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

Json = dict[str, Any]

# Regex syntax both engines read alike: literals, escaped punctuation, classes of literals, groups, lookarounds,
# bounded repetition, and [\s\S] ("any character", as every shipped pattern ends). Found by running both over
# every code point: \d \w \s \b and their negations follow each engine's own Unicode tables (Python's \s holds
# U+001C..U+001F, its \w holds "²" and not U+0301, Rust's \d holds U+10D40), and so does case folding; "$" also
# matches before a final newline in Python. Anything outside this syntax sends the schema to jsonschema.
_SHARED_REGEX = re.compile(
    r"""(?:
        \[\\s\\S\]                      # any character
      | \\[^0-9A-Za-z]                  # an escaped punctuation character
      | \((?:\?(?:[:=!]|<[=!])|(?!\?))  # a group or lookaround; not (?i), (?P<name>, (?>
      | \{[0-9]+(?:,[0-9]*)?\}          # {m}, {m,}, {m,n}
      | \[(?!:)                         # a class; not [:alpha:]
      | [-&~](?![-&~])                  # not the class operators -- && ~~
      | [^-&~\\$({\[]                   # any other character
    )*""",
    re.VERBOSE,
)


class CompiledSchema:
    """One JSON Schema (draft 2020-12, formats as annotations), compiled once.

    ``resources`` are the documents its ``$ref``s may name, by ``$id``.
    """

    def __init__(self, schema: Json, resources: Mapping[str, Json] | None = None) -> None:
        self.schema = schema
        self._resources = dict(resources or {})
        # None when the schema is judged by jsonschema alone.
        self.native = _native(schema, self._resources) if _shared_semantics(schema) else None
        self._explainer: Draft202012Validator | None = None

    def is_valid(self, instance: Any) -> bool:
        return self._natively_valid(instance) or self.explainer.is_valid(instance)

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        """Every violation of ``instance``, as jsonschema reports them (none for a valid one)."""
        if self._natively_valid(instance):
            return iter(())
        return self.explainer.iter_errors(instance)

    @property
    def explainer(self) -> Draft202012Validator:
        """The jsonschema validator, built on first need: a server whose requests are all valid never loads it."""
        if self._explainer is None:
            self._explainer = _explainer(self.schema, self._resources)
        return self._explainer

    def _natively_valid(self, instance: Any) -> bool:
        if self.native is None:
            return False
        try:
            return self.native.is_valid(instance)
        except ValueError:  # not JSON jsonschema-rs can read (bytes, a set, a non-string key): jsonschema judges
            return False


def _native(schema: Json, resources: Mapping[str, Json]) -> jsonschema_rs.Validator | None:
    import jsonschema_rs

    registry = jsonschema_rs.Registry(list(resources.items())) if resources else None
    try:
        # jsonschema is run without a format checker, so "format" is an annotation here too. Offline: a $ref to a
        # document not in ``resources`` leaves the schema to jsonschema, as before, rather than a fetch here.
        return jsonschema_rs.Draft202012Validator(schema, validate_formats=False, registry=registry, offline=True)
    except ValueError:  # a schema jsonschema-rs refuses (a regex it cannot compile, a $ref it cannot resolve)
        return None


def _explainer(schema: Json, resources: Mapping[str, Json]) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    if not resources:
        return Draft202012Validator(schema)
    from referencing import Registry, Resource

    registry: Registry[Any] = Registry().with_resources(
        (uri, Resource.from_contents(document)) for uri, document in resources.items()
    )
    return Draft202012Validator(schema, registry=registry)


def _shared_semantics(node: Any) -> bool:
    """Whether jsonschema-rs judges ``node`` (a schema, or any part of one) as jsonschema does: its patterns use
    only the shared regex syntax, and it has no ``multipleOf`` (Python divides in floating point, so 0.07 is not
    a multiple of 0.01 there, and is in jsonschema-rs). ``x-`` extensions are annotations to both, unless a
    ``$ref`` points into one."""
    if isinstance(node, list):
        return all(_shared_semantics(item) for item in node)
    if not isinstance(node, Mapping):
        return True
    if "multipleOf" in node or "/x-" in str(node.get("$ref", "")):
        return False
    patterns = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
    if isinstance(node.get("patternProperties"), Mapping):
        patterns += list(node["patternProperties"])
    return all(_SHARED_REGEX.fullmatch(p) for p in patterns) and all(
        _shared_semantics(value) for key, value in node.items() if not str(key).startswith("x-")
    )
