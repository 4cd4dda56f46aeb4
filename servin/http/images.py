"""Images API: pull (``POST /images/create``), list and inspect."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import attrs
from aiohttp import web

from servin.errors import InvalidArgument, ServinError
from servin.http.context import engine_of
from servin.http.params import query_filters
from servin.http.responses import json_response
from servin.http.routing import Routes
from servin.images.filters import ListedImage
from servin.images.imagestore import Image
from servin.images.progress import ProgressMessage
from servin.jsoncodec import dumps

routes = Routes()

GRAPH_DRIVER = "overlay2"

# dockerd marshals an image's container config through its Config struct: every field shows.
CONTAINER_CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}


@attrs.frozen
class ImageSummary:
    Id: str
    ParentId: str
    RepoTags: list[str]
    RepoDigests: list[str]
    Created: int
    Size: int
    SharedSize: int
    VirtualSize: int
    Labels: dict[str, str] | None
    Containers: int

    @classmethod
    def of(cls, listed: ListedImage) -> "ImageSummary":
        image = listed.image
        tags, digests = listed.repo_tags, listed.repo_digests
        if not tags and not digests:
            tags, digests = ["<none>:<none>"], ["<none>@<none>"]
        return cls(image.id, "", tags, digests, int(image.created_unix), image.size, -1,
                   image.size, image.labels or None, -1)


def container_config(config: dict | None) -> dict:
    return {**CONTAINER_CONFIG_DEFAULTS, **(config or {})}


def image_inspect(image: Image, graph_driver_data: dict) -> dict:
    config = image.config
    out = {
        "Id": image.id, "RepoTags": image.repo_tags, "RepoDigests": image.repo_digests,
        "Parent": "", "Comment": config.get("comment", ""), "Created": image.created,
        "Container": config.get("container", ""),
        "ContainerConfig": container_config(config.get("container_config")),
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": container_config(config.get("config")),
        "Architecture": config.get("architecture", ""), "Os": config.get("os", ""),
        "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": {"Name": GRAPH_DRIVER, "Data": graph_driver_data},
        "RootFS": {"Type": "layers", "Layers": config.get("rootfs", {}).get("diff_ids", [])},
        "Metadata": {"LastTagTime": image.last_tag_time},
    }
    if config.get("variant"):
        out["Variant"] = config["variant"]
    return out


def registry_auth(request: web.Request) -> dict | None:
    """X-Registry-Auth (base64url JSON); dockerd ignores a header it cannot decode."""
    header = request.headers.get("X-Registry-Auth")
    if not header:
        return None
    try:
        auth = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    return auth if isinstance(auth, dict) else None


class JSONStreamProgress:
    """Writes progress messages as JSON lines; the response starts with the first one."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self.response: web.StreamResponse | None = None

    async def send(self, message: ProgressMessage) -> None:
        await self.write(message.to_json())

    async def write(self, body: dict) -> None:
        if self.response is None:
            self.response = web.StreamResponse(headers={"Content-Type": "application/json"})
            self.response.enable_chunked_encoding()
            await self.response.prepare(self.request)
        await self.response.write(dumps(body) + b"\r\n")


@routes.post("/images/create")
async def create_image(request: web.Request) -> web.StreamResponse:
    from_image = request.query.get("fromImage")
    if not from_image:
        raise InvalidArgument("fromImage is required: servin creates images by pulling them")
    stream = JSONStreamProgress(request)
    try:
        await engine_of(request).images.pull(from_image, tag=request.query.get("tag"),
                                             auth=registry_auth(request), progress=stream)
    except Exception as exc:  # noqa: BLE001 - once streaming, errors travel in the stream
        if stream.response is None:
            raise
        message = exc.message if isinstance(exc, ServinError) else str(exc)
        await stream.write({"errorDetail": {"message": message}, "error": message})
    assert stream.response is not None  # a pull reports progress before it succeeds
    await stream.response.write_eof()
    return stream.response


@routes.get("/images/json")
async def list_images(request: web.Request) -> web.Response:
    filters = query_filters(request)
    listed = engine_of(request).images.list_images(filters)
    return json_response([attrs.asdict(ImageSummary.of(item)) for item in listed])


@routes.get("/images/{name:.+}/json")
async def inspect_image(request: web.Request) -> web.Response:
    images = engine_of(request).images
    image = images.resolve(request.match_info["name"])
    data = images.layers.graph_driver_data(image.chain_id) if image.chain_id else {}
    return json_response(image_inspect(image, data))

