"""A real registry on loopback, with test images built from busybox-static.

Fixtures (session scope):
- ``registry``: Debian's ``docker-registry`` serving anonymously on 127.0.0.1.
- ``auth_registry``: a second registry on the same storage that demands Bearer
  tokens from a token server of ours (JWTs signed with a throw-away key), so
  the token challenge is tested against the real registry.
- ``test_images``: the images every test relies on, pushed to ``registry``.

The builder helpers (``layer_tar``, ``build_image``, ``push_image``,
``push_index``) are plain functions, reusable by any test.
"""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator
from urllib.parse import parse_qs, urlparse

import attrs
import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.support.rootfs import make_busybox_rootfs

REGISTRY_BINARY = "/usr/bin/docker-registry"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

TOKEN_SERVICE = "servin-test-registry"
TOKEN_ISSUER = "servin-test-token-issuer"
TOKEN_USER = ("servin", "s3cret")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---- layers and images ---------------------------------------------------------------


@attrs.frozen
class Entry:
    """One tar entry of a hand-made layer."""

    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    mode: int = 0o644
    linkname: str = ""
    uid: int = 0
    gid: int = 0
    mtime: int = 1_700_000_000
    xattrs: dict[str, str] = attrs.field(factory=dict)


def layer_tar(entries: list[Entry]) -> bytes:
    """An uncompressed layer tar from entries, in the given order."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type, info.mode, info.linkname = entry.type, entry.mode, entry.linkname
            info.uid, info.gid, info.mtime = entry.uid, entry.gid, entry.mtime
            info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in entry.xattrs.items()}
            if entry.type == tarfile.REGTYPE:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            else:
                tar.addfile(info)
    return out.getvalue()


def dir_tar(root: Path) -> bytes:
    """An uncompressed layer tar of a directory tree, owned by root, sorted."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            return info
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False, filter=reset)
    return out.getvalue()


@attrs.frozen
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    def descriptor(self, **extra: object) -> dict:
        return {"mediaType": self.media_type, "size": len(self.data), "digest": self.digest,
                **extra}


@attrs.frozen
class BuiltImage:
    config: Blob
    layers: list[Blob]
    manifest: Blob
    diff_ids: list[str]

    @property
    def id(self) -> str:
        return self.config.digest


def build_image(layers: list[bytes], config: dict | None = None, *, oci: bool = False,
                architecture: str = "amd64", created: str = "2024-01-02T03:04:05.123456789Z"
                ) -> BuiltImage:
    """An image from uncompressed layer tars; ``config`` is the container config part."""
    layer_type, config_type, manifest_type = ((MT_OCI_LAYER, MT_OCI_CONFIG, MT_OCI_MANIFEST)
                                              if oci else
                                              (MT_DOCKER_LAYER, MT_DOCKER_CONFIG,
                                               MT_DOCKER_MANIFEST))
    blobs = [Blob(layer_type, gzip.compress(tar, mtime=0)) for tar in layers]
    diff_ids = [sha256(tar) for tar in layers]
    image_config = {
        "architecture": architecture, "os": "linux", "created": created,
        "config": {"Env": [DEFAULT_PATH_ENV], "Cmd": ["sh"], **(config or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": created, "created_by": f"layer {i}"}
                    for i in range(len(layers))],
    }
    config_blob = Blob(config_type, json.dumps(image_config).encode())
    manifest = {"schemaVersion": 2, "mediaType": manifest_type,
                "config": config_blob.descriptor(),
                "layers": [blob.descriptor() for blob in blobs]}
    return BuiltImage(config_blob, blobs, Blob(manifest_type, json.dumps(manifest).encode()),
                      diff_ids)


def push_blob(url: str, repo: str, blob: Blob) -> None:
    if requests.head(f"{url}/v2/{repo}/blobs/{blob.digest}", timeout=30).status_code == 200:
        return
    started = requests.post(f"{url}/v2/{repo}/blobs/uploads/", timeout=30)
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    if location.startswith("/"):
        location = url + location
    separator = "&" if "?" in location else "?"
    done = requests.put(f"{location}{separator}digest={blob.digest}", data=blob.data,
                        headers={"Content-Type": "application/octet-stream"}, timeout=60)
    assert done.status_code == 201, done.text


def push_manifest(url: str, repo: str, reference: str, manifest: Blob) -> str:
    response = requests.put(f"{url}/v2/{repo}/manifests/{reference}", data=manifest.data,
                            headers={"Content-Type": manifest.media_type}, timeout=30)
    assert response.status_code == 201, response.text
    return manifest.digest


def push_image(url: str, repo: str, tag: str, image: BuiltImage) -> str:
    """Push an image's blobs and manifest; returns the manifest digest."""
    for blob in [*image.layers, image.config]:
        push_blob(url, repo, blob)
    return push_manifest(url, repo, tag, image.manifest)


def push_index(url: str, repo: str, tag: str, images: dict[str, BuiltImage], *,
               oci: bool = False) -> str:
    """Push images per architecture and a manifest list (or OCI index) over them."""
    entries = []
    for arch, image in images.items():
        push_image(url, repo, image.manifest.digest, image)
        entries.append(image.manifest.descriptor(platform={"architecture": arch, "os": "linux"}))
    media_type = MT_OCI_INDEX if oci else MT_DOCKER_LIST
    index = Blob(media_type, json.dumps({"schemaVersion": 2, "mediaType": media_type,
                                         "manifests": entries}).encode())
    return push_manifest(url, repo, tag, index)


# ---- the registry processes ---------------------------------------------------------


@attrs.define
class Registry:
    address: str
    storage: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def start_registry(storage: Path, workdir: Path, auth: dict | None = None) -> Registry:
    address = f"127.0.0.1:{free_port()}"
    config = {"version": 0.1, "log": {"level": "warn", "accesslog": {"disabled": True}},
              "storage": {"filesystem": {"rootdirectory": str(storage)},
                          "delete": {"enabled": True}},
              "http": {"addr": address}}
    if auth is not None:
        config["auth"] = auth
    config_path = workdir / f"registry-{address.split(':')[1]}.yml"
    config_path.write_text(json.dumps(config))  # YAML is a superset of JSON
    log = open(workdir / f"registry-{address.split(':')[1]}.log", "wb")
    process = subprocess.Popen([REGISTRY_BINARY, "serve", str(config_path)],
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    registry = Registry(address, storage, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {config_path.with_suffix('.log')}")
        try:
            requests.get(f"{registry.url}/v2/", timeout=1)
            return registry
        except requests.ConnectionError:
            time.sleep(0.05)
    stop_registry(registry)
    raise RuntimeError("docker-registry did not answer on /v2/")


def stop_registry(registry: Registry) -> None:
    registry.process.terminate()
    try:
        registry.process.wait(10)
    except subprocess.TimeoutExpired:
        registry.process.kill()
        registry.process.wait()


# ---- a token server for the Bearer challenge ----------------------------------------


class TokenServer:
    """Issues registry JWTs to clients that present ``TOKEN_USER`` credentials."""

    def __init__(self, workdir: Path) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        now = datetime.datetime.now(datetime.timezone.utc)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, TOKEN_ISSUER)])
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = workdir / "token-cert.pem"
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []   # what clients asked for, for the tests to check
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/token"

    def registry_auth(self) -> dict:
        return {"token": {"realm": self.realm, "service": TOKEN_SERVICE, "issuer": TOKEN_ISSUER,
                          "rootcertbundle": str(self.cert_path)}}

    def issue(self, subject: str, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": TOKEN_ISSUER, "sub": subject, "aud": TOKEN_SERVICE, "iat": now,
                  "nbf": now - 10, "exp": now + 300, "jti": uuid.uuid4().hex, "access": access}
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return jwt.encode(claims, self.key, algorithm="RS256",
                          headers={"x5c": [base64.b64encode(der).decode()]})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                query = parse_qs(urlparse(self.path).query)
                header = self.headers.get("Authorization", "")
                user = None
                if header.startswith("Basic "):
                    name, _, password = base64.b64decode(header[6:]).decode().partition(":")
                    if (name, password) != TOKEN_USER:
                        self._answer(401, {"details": "bad credentials"})
                        return
                    user = name
                scopes = query.get("scope", [])
                server.requests.append({"user": user, "scopes": scopes,
                                        "service": query.get("service", [""])[0]})
                # Anonymous clients get a token without access, as Docker Hub does for
                # private repositories: the registry then denies them.
                token = server.issue(user or "", scopes if user else [])
                self._answer(200, {"token": token, "expires_in": 300})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- fixtures -----------------------------------------------------------------------


@attrs.frozen
class TestImages:
    """What ``test_images`` pushed: built images and manifest digests by name."""

    images: dict[str, BuiltImage]
    digests: dict[str, str]
    busybox_layer: bytes


@pytest.fixture(scope="session")
def registry_workdir() -> Iterator[Path]:
    workdir = Path(tempfile.mkdtemp(prefix="servin-registry-"))
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def registry(registry_workdir: Path) -> Iterator[Registry]:
    storage = registry_workdir / "storage"
    storage.mkdir()
    running = start_registry(storage, registry_workdir)
    yield running
    stop_registry(running)


@pytest.fixture(scope="session")
def token_server(registry_workdir: Path) -> Iterator[TokenServer]:
    server = TokenServer(registry_workdir)
    yield server
    server.close()


@pytest.fixture(scope="session")
def auth_registry(registry: Registry, token_server: TokenServer,
                  registry_workdir: Path) -> Iterator[Registry]:
    """The same content as ``registry``, behind the Bearer token challenge."""
    running = start_registry(registry.storage, registry_workdir, token_server.registry_auth())
    yield running
    stop_registry(running)


def layered_layers(busybox_layer: bytes) -> list[bytes]:
    """busybox, then files, then a layer that deletes one and makes a directory opaque."""
    second = layer_tar([
        Entry("data", type=tarfile.DIRTYPE, mode=0o755),
        Entry("data/keep.txt", b"kept\n"),
        Entry("data/remove-me.txt", b"doomed\n"),
        Entry("opaque", type=tarfile.DIRTYPE, mode=0o755),
        Entry("opaque/old.txt", b"hidden later\n"),
    ])
    third = layer_tar([
        Entry("data", type=tarfile.DIRTYPE, mode=0o755),
        Entry("data/.wh.remove-me.txt"),
        Entry("opaque", type=tarfile.DIRTYPE, mode=0o755),
        Entry("opaque/.wh..wh..opq"),
        Entry("opaque/new.txt", b"only this\n"),
        Entry("etc", type=tarfile.DIRTYPE, mode=0o755),
        Entry("etc/layered-release", b"layered 3\n", uid=1, gid=1, mode=0o640),
    ])
    return [busybox_layer, second, third]


@pytest.fixture(scope="session")
def test_images(registry: Registry, registry_workdir: Path) -> TestImages:
    rootfs = make_busybox_rootfs(registry_workdir / "busybox-rootfs")
    busybox_layer = dir_tar(rootfs)
    shutil.rmtree(rootfs)
    images = {
        "alpine": build_image([busybox_layer]),
        "busybox": build_image([busybox_layer], created="2024-01-03T00:00:00Z"),
        "layered": build_image(layered_layers(busybox_layer),
                               {"Labels": {"org.servin.test": "layered"}}),
        "oci": build_image([busybox_layer], {"Labels": {"org.servin.test": "oci"}}, oci=True),
        "multiarch-amd64": build_image([busybox_layer], {"Labels": {"arch": "amd64"}}),
        "multiarch-arm64": build_image([busybox_layer], {"Labels": {"arch": "arm64"}},
                                       architecture="arm64"),
    }
    digests = {name: push_image(registry.url, f"library/{name}", "latest", images[name])
               for name in ("alpine", "busybox", "layered")}
    digests["multiarch"] = push_index(registry.url, "library/multiarch", "latest",
                                      {"amd64": images["multiarch-amd64"],
                                       "arm64": images["multiarch-arm64"]})
    digests["oci"] = push_index(registry.url, "library/oci", "latest",
                                {"amd64": images["oci"]}, oci=True)
    return TestImages(images, digests, busybox_layer)
