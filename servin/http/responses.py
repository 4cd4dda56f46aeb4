"""JSON response bodies as dockerd writes them: compact and newline-terminated."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from servin.jsoncodec import dumps


def encode_json(data: Any) -> bytes:
    return dumps(data, newline=True)


def json_response(data: Any, *, status: int = 200) -> web.Response:
    return web.Response(body=encode_json(data), status=status, content_type="application/json")
