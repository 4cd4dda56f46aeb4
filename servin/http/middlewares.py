"""Middlewares: API version negotiation and the one error mapping."""

from __future__ import annotations

import structlog
from aiohttp import web

from servin import API_VERSION, MIN_API_VERSION
from servin.errors import ServinError
from servin.http.responses import json_response
from servin.http.routing import Handler

log = structlog.get_logger("servin.http")

# The API version a request asked for (its /v1.xx prefix), or the current one.
API_VERSION_KEY = web.RequestKey("servin.api_version", str)


def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


def error_response(status: int, message: str, code: str, details: dict | None = None) -> web.Response:
    return json_response({"message": message, "code": code, "details": details or {}},
                         status=status)


class _BadVersion(ServinError):
    status = 400
    code = "INVALID_API_VERSION"


@web.middleware
async def api_version_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    requested = request.match_info.get("api_version")
    if requested is not None:
        version = _version_tuple(requested)
        if version > _version_tuple(API_VERSION):
            raise _BadVersion(f"client version {requested} is too new. "
                              f"Maximum supported API version is {API_VERSION}")
        if version < _version_tuple(MIN_API_VERSION):
            raise _BadVersion(f"client version {requested} is too old. Minimum supported API "
                              f"version is {MIN_API_VERSION}, please upgrade your client to a "
                              f"newer version")
    request[API_VERSION_KEY] = requested or API_VERSION
    return await handler(request)


_HTTP_CODES = {400: "INVALID_ARGUMENT", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
               404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 409: "CONFLICT",
               413: "REQUEST_TOO_LARGE"}


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServinError as exc:
        if exc.status == 304:
            return web.Response(status=304)
        if exc.status >= 500:
            log.error("request_failed", method=request.method, path=request.path,
                      error=exc.message)
        return error_response(exc.status, exc.message, exc.code, exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = "page not found" if exc.status == 404 else exc.reason
        if exc.status == 413:
            message = "request body is too large"
        return error_response(exc.status, message, _HTTP_CODES.get(exc.status, "HTTP_ERROR"))
    except (ConnectionResetError, BrokenPipeError):
        raise
    except Exception as exc:  # noqa: BLE001 - last resort: a 500 with a body, logged
        log.exception("request_crashed", method=request.method, path=request.path)
        return error_response(500, f"internal error: {exc}", "INTERNAL")
