"""Request bodies and OpenAPI helpers: strict JSON bodies (media type, size, encoding, depth checked, every
error a precise 4xx), JSON-safe values, and request-body schemas for the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from service.errors import (
    BadRequestError,
    PayloadTooLargeError,
    UnsupportedMediaError,
)

MB = 1024 * 1024
MAX_JSON_BYTES = 1 * MB


async def json_body(request: Request) -> Any:
    """The request body as JSON: 415 for another content type, 413 above 1 MB, 422 naming where it is malformed."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise UnsupportedMediaError(f"send JSON with 'Content-Type: application/json', not {media_name(media)}")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise PayloadTooLargeError(f"the JSON body is larger than {MAX_JSON_BYTES // MB} MB")
    if not raw.strip():
        raise BadRequestError("the request body is empty; send a JSON object")
    try:
        return json.loads(bytes(raw), parse_constant=no_constant)
    except UnicodeDecodeError:
        raise BadRequestError("the request body is not UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise BadRequestError(f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise BadRequestError("malformed JSON: nested too deeply") from None


def media_name(media: str) -> str:
    return repr(media) if media else "a body without a Content-Type"


def no_constant(name: str) -> Any:
    raise BadRequestError(f"malformed JSON: {name} is not a JSON number")


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` inlined (for ``openapi_extra``, where ``#/$defs`` would not resolve)."""
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk({**defs[ref.split("/")[-1]], **{k: v for k, v in node.items() if k != "$ref"}})
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    out: dict[str, Any] = walk(schema)
    return out


def json_request(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
