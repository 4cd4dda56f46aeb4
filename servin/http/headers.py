"""Headers dockerd puts on every response: server, API version, OS type, experimental.

They are added when a response is prepared rather than in a middleware, so that
streamed responses (logs, events, pull progress), which handlers prepare
themselves, carry them too.
"""

from __future__ import annotations

from aiohttp import web

from servin import API_VERSION, __version__

SERVER_HEADERS = {
    "Server": f"Servin/{__version__} (linux)",
    "Api-Version": API_VERSION,
    "Ostype": "linux",
    "Docker-Experimental": "false",
}


async def _add_server_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SERVER_HEADERS)


def install(app: web.Application) -> None:
    app.on_response_prepare.append(_add_server_headers)
