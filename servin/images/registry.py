"""A Docker Registry v2 / OCI distribution client: manifests, blobs, authentication.

Anonymous access, the Bearer token challenge (``WWW-Authenticate: Bearer
realm=,service=,scope=`` -> GET a token -> retry) and Basic authentication, with
credentials from the client's ``X-Registry-Auth`` when it sent some.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
from typing import AsyncIterator

import aiohttp
import attrs
import structlog

from servin.images.reference import DEFAULT_DOMAIN, Reference

log = structlog.get_logger("servin.images.registry")

DOCKER_HUB_URL = "https://registry-1.docker.io"
DEFAULT_INSECURE_CIDRS = ("127.0.0.0/8",)   # dockerd always trusts loopback this way

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPES = (MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_OCI_INDEX)
INDEX_TYPES = (MT_DOCKER_LIST, MT_OCI_INDEX)

MAX_MANIFEST_SIZE = 4 * 1024 * 1024
BLOB_CHUNK = 256 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_read=120)

_CHALLENGE_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """An error answer of the registry (its ``errors`` body) or of its token server."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code.lower().replace('_', ' ')}: {message}")
        self.status = status
        self.code = code
        self.message = message


class RegistryUnreachable(Exception):
    """The registry could not be reached at all."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f'Get "{url}": {reason}')


@attrs.frozen
class Endpoint:
    url: str           # scheme://host[:port], no trailing slash
    mirror: bool = False


@attrs.frozen
class Manifest:
    media_type: str
    body: bytes
    digest: str | None   # as the registry announced it (Docker-Content-Digest)

    def json(self) -> dict:
        return json.loads(self.body)


@attrs.frozen
class Credentials:
    """The parts of an X-Registry-Auth the registry protocol uses."""

    username: str = ""
    password: str = ""
    identity_token: str = ""
    registry_token: str = ""

    @classmethod
    def from_auth(cls, auth: dict | None) -> "Credentials":
        auth = auth or {}
        return cls(auth.get("username") or "", auth.get("password") or "",
                   auth.get("identitytoken") or "", auth.get("registrytoken") or "")

    def basic(self) -> str | None:
        """The Basic ``Authorization`` header value, when there is a user name."""
        return aiohttp.encode_basic_auth(self.username, self.password) if self.username else None


def is_insecure(host: str, insecure: list[str]) -> bool:
    """Whether ``host`` (host[:port]) is listed by name or falls in a listed CIDR."""
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    hostname = hostname.strip("[]")
    if hostname == "localhost":
        hostname = "127.0.0.1"
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        address = None
    for entry in [*insecure, *DEFAULT_INSECURE_CIDRS]:
        entry = entry.removeprefix("http://").removeprefix("https://").rstrip("/")
        if "/" in entry:
            try:
                if address is not None and address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif entry in (host, hostname):
            return True
    return False


def endpoints_for(ref: Reference, *, mirrors: list[str], insecure: list[str]) -> list[Endpoint]:
    """Where to pull ``ref`` from, in order.

    Names on docker.io go to the configured mirrors; Docker Hub itself is the
    endpoint only when no mirror is configured (this engine does not reach
    past its mirrors).
    """
    if ref.domain == DEFAULT_DOMAIN:
        if mirrors:
            return [Endpoint(m.rstrip("/"), mirror=True) for m in mirrors]
        return [Endpoint(DOCKER_HUB_URL)]
    scheme = "http" if is_insecure(ref.domain, insecure) else "https"
    return [Endpoint(f"{scheme}://{ref.domain}")]


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM_RE.findall(rest))


class RegistryClient:
    """One repository on one endpoint, with the token it earned."""

    def __init__(self, session: aiohttp.ClientSession, endpoint: Endpoint, repository: str,
                 credentials: Credentials) -> None:
        self.session = session
        self.endpoint = endpoint
        self.repository = repository
        self.credentials = credentials
        self._authorization: str | None = None

    def _url(self, kind: str, reference: str) -> str:
        return f"{self.endpoint.url}/v2/{self.repository}/{kind}/{reference}"

    async def get_manifest(self, reference: str) -> Manifest:
        url = self._url("manifests", reference)
        async with self._request(url, {"Accept": ", ".join(MANIFEST_TYPES)}) as response:
            await _raise_for_status(response)
            body = await response.content.read(MAX_MANIFEST_SIZE + 1)
            if len(body) > MAX_MANIFEST_SIZE:
                raise RegistryError(response.status, "MANIFEST_INVALID", "manifest too big")
            media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
            if media_type not in MANIFEST_TYPES:
                media_type = json.loads(body).get("mediaType", media_type)
            return Manifest(media_type, body, response.headers.get("Docker-Content-Digest"))

    async def get_blob(self, digest: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream_blob(digest)])

    async def stream_blob(self, digest: str) -> AsyncIterator[bytes]:
        async with self._request(self._url("blobs", digest), {}) as response:
            await _raise_for_status(response)
            async for chunk in response.content.iter_chunked(BLOB_CHUNK):
                yield chunk

    @contextlib.asynccontextmanager
    async def _request(self, url: str, headers: dict[str, str]
                       ) -> AsyncIterator[aiohttp.ClientResponse]:
        response = await self._send(url, headers)
        try:
            yield response
        finally:
            response.release()

    async def _send(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        """GET ``url``; on an auth challenge, authenticate and try once more."""
        try:
            response = await self._get(url, headers)
            challenge = response.headers.get("WWW-Authenticate")
            if response.status == 401 and challenge:
                response.release()
                await self._authenticate(challenge)
                response = await self._get(url, headers)
            return response
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise RegistryUnreachable(url, str(exc) or type(exc).__name__) from None

    async def _get(self, url: str, headers: dict[str, str]) -> aiohttp.ClientResponse:
        if self._authorization:
            headers = {**headers, "Authorization": self._authorization}
        return await self.session.get(url, headers=headers, timeout=TIMEOUT)

    async def _authenticate(self, challenge: str) -> None:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            basic = self.credentials.basic()
            if basic is None:
                raise RegistryError(401, "UNAUTHORIZED", "authentication required")
            self._authorization = basic
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(401, "UNAUTHORIZED", f"unsupported challenge {challenge!r}")
        if self.credentials.registry_token:
            self._authorization = f"Bearer {self.credentials.registry_token}"
            return
        self._authorization = f"Bearer {await self._fetch_token(params)}"

    async def _fetch_token(self, params: dict[str, str]) -> str:
        query = {"service": params.get("service", "")}
        scope = params.get("scope") or f"repository:{self.repository}:pull"
        if self.credentials.identity_token:
            form = {"grant_type": "refresh_token", "refresh_token": self.credentials.identity_token,
                    "service": query["service"], "scope": scope, "client_id": "servin"}
            request = self.session.post(params["realm"], data=form, timeout=TIMEOUT)
        else:
            basic = self.credentials.basic()
            request = self.session.get(params["realm"], params={**query, "scope": scope},
                                       headers={"Authorization": basic} if basic else {},
                                       timeout=TIMEOUT)
        async with request as response:
            if response.status != 200:
                text = (await response.text())[:200]
                raise RegistryError(response.status, "UNAUTHORIZED",
                                    f"token server answered {response.status}: {text}")
            body = await response.json(content_type=None)
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(401, "UNAUTHORIZED", "token server answered without a token")
        log.debug("registry_token", realm=params["realm"], scope=scope)
        return token


async def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status < 400:
        return
    text = await response.text()
    try:
        first = json.loads(text)["errors"][0]
        code, message = first.get("code", "UNKNOWN"), first.get("message", "")
    except (ValueError, KeyError, IndexError, TypeError):
        code, message = "UNKNOWN", text.strip()[:200] or response.reason or str(response.status)
    raise RegistryError(response.status, code, message)
