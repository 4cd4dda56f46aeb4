"""The error and API-version middlewares on a tiny app served by aiohttp's test server."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servin import errors
from servin.http.middlewares import API_VERSION_KEY, api_version_middleware, error_middleware
from servin.http.routing import Routes

ERROR_CLASSES = [
    (errors.InvalidArgument, 400, "INVALID_ARGUMENT"),
    (errors.Unauthorized, 401, "UNAUTHORIZED"),
    (errors.Forbidden, 403, "FORBIDDEN"),
    (errors.NotFound, 404, "NOT_FOUND"),
    (errors.Conflict, 409, "CONFLICT"),
    (errors.Unavailable, 503, "UNAVAILABLE"),
    (errors.SystemFailure, 500, "SYSTEM"),
]


def make_app() -> web.Application:
    routes = Routes()

    @routes.get("/raise/{kind}")
    async def raise_error(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "NotModified":
            raise errors.NotModified("container already started")
        if kind == "crash":
            raise RuntimeError("boom")
        raise getattr(errors, kind)(f"{kind} happened", id="abc")

    @routes.get("/version-seen")
    async def version_seen(request: web.Request) -> web.Response:
        return web.json_response({"version": request[API_VERSION_KEY]})

    @routes.post("/only-post")
    async def only_post(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application(middlewares=[error_middleware, api_version_middleware])
    routes.install(app)
    return app


def call(method: str, path: str) -> tuple[int, str, bytes]:
    """One request to a fresh test server: status, content type, body."""
    async def go() -> tuple[int, str, bytes]:
        async with TestClient(TestServer(make_app())) as client:
            response = await client.request(method, path)
            return response.status, response.content_type, await response.read()
    return asyncio.run(go())


@pytest.mark.parametrize("cls, status, code", ERROR_CLASSES)
def test_each_error_class_maps_to_its_status_and_body(cls, status, code):
    got_status, content_type, body = call("GET", f"/v1.41/raise/{cls.__name__}")
    assert got_status == status
    assert content_type == "application/json"
    assert json.loads(body) == {"message": f"{cls.__name__} happened", "code": code,
                                "details": {"id": "abc"}}


def test_not_modified_is_304_without_body():
    status, _, body = call("GET", "/raise/NotModified")
    assert (status, body) == (304, b"")


def test_unexpected_exception_is_500_with_a_message():
    status, _, body = call("GET", "/raise/crash")
    assert status == 500
    assert json.loads(body)["message"] == "internal error: boom"


def test_unknown_route_is_page_not_found():
    for path in ("/nowhere", "/v1.41/nowhere"):
        status, content_type, body = call("GET", path)
        assert (status, content_type) == (404, "application/json")
        assert json.loads(body)["message"] == "page not found"


def test_wrong_method_is_405_with_a_json_body():
    status, _, body = call("GET", "/only-post")
    assert status == 405
    assert json.loads(body)["message"] == "Method Not Allowed"


def test_version_too_new():
    status, _, body = call("GET", "/v1.99/version-seen")
    assert status == 400
    assert json.loads(body)["message"] == ("client version 1.99 is too new. "
                                           "Maximum supported API version is 1.41")


def test_version_too_old():
    status, _, body = call("GET", "/v1.11/version-seen")
    assert status == 400
    assert json.loads(body)["message"] == (
        "client version 1.11 is too old. Minimum supported API version is 1.12, "
        "please upgrade your client to a newer version")


@pytest.mark.parametrize("path, seen", [("/v1.41/version-seen", "1.41"),
                                        ("/v1.24/version-seen", "1.24"),
                                        ("/version-seen", "1.41")])
def test_valid_prefix_reaches_the_handler(path, seen):
    status, _, body = call("GET", path)
    assert status == 200
    assert json.loads(body) == {"version": seen}


def test_get_routes_do_not_answer_head():
    status, _, _ = call("HEAD", "/version-seen")
    assert status == 405
