"""Networks API: list, inspect, create, remove, connect, disconnect, prune."""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web

from servin.errors import InvalidArgument, NotFound
from servin.http.context import engine_of
from servin.http.params import json_body, query_filters
from servin.http.responses import json_response
from servin.http.routing import Routes
from servin.networks.manager import NetworkSpec

routes = Routes()


class NetworkAttachments(Protocol):
    """What the connect/disconnect handlers need of the containers manager: it records
    the network in the container (EndpointsConfig) and, for a running container,
    connects its sandbox through the networks manager."""

    async def connect_network(self, container_ref: str, network_id: str,
                              endpoint_config: dict[str, Any]) -> None: ...

    async def disconnect_network(self, container_ref: str, network_id: str, *,
                                 force: bool) -> None: ...


def _strings(body: dict[str, Any], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {key}: expected an object of strings")
    return dict(value)


def network_spec(body: dict[str, Any]) -> NetworkSpec:
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("network name cannot be empty")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, dict):
        raise InvalidArgument("invalid IPAM: expected an object")
    if (ipam.get("Driver") or "default") != "default":
        raise NotFound(f'plugin "{ipam["Driver"]}" not found')
    config = ipam.get("Config") or []
    if not isinstance(config, list) or not all(isinstance(c, dict) for c in config):
        raise InvalidArgument("invalid IPAM Config: expected a list of objects")
    if body.get("Ingress"):
        raise InvalidArgument("ingress networks need swarm mode, which Servin does not run")
    return NetworkSpec(name, driver=body.get("Driver") or "bridge",
                       check_duplicate=bool(body.get("CheckDuplicate", True)),
                       internal=bool(body.get("Internal")), attachable=bool(body.get("Attachable")),
                       enable_ipv6=bool(body.get("EnableIPv6")), ipam_config=tuple(config),
                       ipam_options=_strings(ipam, "Options"), labels=_strings(body, "Labels"),
                       options=_strings(body, "Options"))


@routes.get("/networks")
async def network_list(request: web.Request) -> web.Response:
    return json_response(engine_of(request).networks.list(query_filters(request)))


@routes.get("/networks/{id}")
async def network_inspect(request: web.Request) -> web.Response:
    return json_response(engine_of(request).networks.inspect(request.match_info["id"]))


@routes.post("/networks/create")
async def network_create(request: web.Request) -> web.Response:
    spec = network_spec(await json_body(request, allow_empty=False))
    network_id = await engine_of(request).networks.create(spec)
    return json_response({"Id": network_id, "Warning": ""}, status=201)


@routes.delete("/networks/{id}")
async def network_delete(request: web.Request) -> web.Response:
    await engine_of(request).networks.remove(request.match_info["id"])
    return web.Response(status=204)


def _container_ref(body: dict[str, Any]) -> str:
    ref = body.get("Container")
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("no container given: Container is required")
    return ref


@routes.post("/networks/{id}/connect")
async def network_connect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await json_body(request)
    network = engine.networks.get(request.match_info["id"])
    endpoint_config = body.get("EndpointConfig") or {}
    if not isinstance(endpoint_config, dict):
        raise InvalidArgument("invalid EndpointConfig: expected an object")
    containers: NetworkAttachments = engine.containers
    await containers.connect_network(_container_ref(body), network.id, endpoint_config)
    return web.Response(status=200)


@routes.post("/networks/{id}/disconnect")
async def network_disconnect(request: web.Request) -> web.Response:
    engine = engine_of(request)
    body = await json_body(request)
    network = engine.networks.get(request.match_info["id"])
    containers: NetworkAttachments = engine.containers
    await containers.disconnect_network(_container_ref(body), network.id,
                                        force=bool(body.get("Force")))
    return web.Response(status=200)


@routes.post("/networks/prune")
async def network_prune(request: web.Request) -> web.Response:
    deleted = await engine_of(request).networks.prune(query_filters(request))
    return json_response({"NetworksDeleted": deleted})
