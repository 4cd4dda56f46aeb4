"""Parsing of request bodies and query parameters, with Docker's leniency."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from servin.errors import InvalidArgument
from servin.filters import Filters, parse_filters

MAX_JSON_BODY = 8 * 1024 * 1024


async def json_body(request: web.Request, *, allow_empty: bool = True) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise InvalidArgument("request body is too large")
    raw = await request.content.read(MAX_JSON_BODY + 1)
    if len(raw) > MAX_JSON_BODY:
        raise InvalidArgument("request body is too large")
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidArgument("invalid JSON: request body is empty")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"invalid JSON: {exc}") from None
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: expected an object")
    return body


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """Docker's boolValue: absent is the default; "", "0", "no", "false", "none" are false."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.strip().lower() not in ("", "0", "no", "false", "none")


def query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {value!r} is not an integer") from None


def query_json(request: web.Request, name: str) -> Any:
    value = request.query.get(name)
    if not value:
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid {name} parameter: {exc}") from None


def query_filters(request: web.Request) -> Filters:
    return parse_filters(query_json(request, "filters"))
