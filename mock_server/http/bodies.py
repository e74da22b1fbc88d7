"""Request bodies of the API's own resources, read and checked against their ``schemas/api/`` JSON Schema."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from mock_server.contract import apischemas
from mock_server.contract.errors import BadRequest
from mock_server.http.routes import read_json


async def validated_body(request: Request, schema: str) -> dict[str, Any]:
    """The JSON body, valid against ``schemas/api/<schema>.json``, with the schema's defaults filled in.

    Every violation is listed in the 400, as for model requests. An empty body counts as ``{}``.
    """
    body = await read_json(request)
    violations = apischemas.validate(schema, body)
    if violations:
        listed = "; ".join(f"{v.path}: {v.message}" for v in violations)
        raise BadRequest(f"Invalid request body: {listed}", errors=[v.to_json() for v in violations])
    if not isinstance(body, dict):  # every body schema says "type": "object"; this only narrows the type
        raise BadRequest("Request body must be a JSON object")
    return apischemas.with_defaults(schema, body)
