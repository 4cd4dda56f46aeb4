"""A pull cut short by kill -9 leaves nothing behind that a restarted daemon would see."""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from tests.support.registry import BuiltImage, Entry, build_image, layer_tar
from tests.support.servind import ServindFactory

pytestmark = pytest.mark.e2e


class StallingRegistry:
    """Serves one image as ``library/stalling``; the first download of ``stalled`` sends
    half of the blob, then waits until ``release`` is set."""

    def __init__(self, image: BuiltImage, stalled: str) -> None:
        self.image = image
        self.blobs = {blob.digest: blob.data for blob in (image.config, *image.layers)}
        self.stalled = stalled
        self.stalling = threading.Event()   # the half was sent
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                prefix = "/v2/library/stalling/"
                if self.path.startswith(prefix + "manifests/"):
                    manifest = registry.image.manifest
                    self._send(manifest.data, manifest.media_type)
                elif self.path.startswith(prefix + "blobs/"):
                    digest = self.path.rsplit("/", 1)[1]
                    self._send(registry.blobs[digest], "application/octet-stream",
                               stall=digest == registry.stalled)
                else:
                    self._send(b"{}", "application/json")

            def _send(self, body: bytes, content_type: str, *, stall: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if stall and not registry.stalling.is_set():
                    self.wfile.write(body[:len(body) // 2])
                    self.wfile.flush()
                    registry.stalling.set()
                    registry.release.wait()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stalling_registry(test_images) -> Iterator[StallingRegistry]:
    big = layer_tar([Entry("big", random.Random(5).randbytes(4_000_000))])
    image = build_image([test_images.busybox_layer, big])
    registry = StallingRegistry(image, stalled=image.layers[1].digest)
    yield registry
    registry.close()


def test_kill9_mid_pull_leaves_nothing_registered(tmp_path, stalling_registry):
    factory = ServindFactory(tmp_path, stalling_registry)
    try:
        daemon = factory()
        client = daemon.client()
        busybox_id = stalling_registry.image.layers[0].digest.split(":")[1][:12]
        messages = client.api.pull("stalling", tag="latest", stream=True, decode=True)
        for message in messages:
            # The small layer is done; the big one is half downloaded and unpacked.
            if message.get("id") == busybox_id and message["status"] == "Download complete":
                break
        assert stalling_registry.stalling.wait(60)
        daemon.kill9()
        messages.close()
        daemon.start()
        overlay = daemon.data_root / "overlay2"
        assert sorted(p.name for p in overlay.iterdir()) == ["l"]
        assert list((overlay / "l").iterdir()) == []
        assert list((daemon.data_root / "image" / "layerdb" / "sha256").iterdir()) == []
        assert daemon.client().images.list(all=True) == []
        # Pulled again, in full this time, the image is whole.
        stalling_registry.release.set()
        image = daemon.client().images.pull("stalling", tag="latest")
        assert image.id == stalling_registry.image.id
        assert image.attrs["RootFS"]["Layers"] == stalling_registry.image.diff_ids
    finally:
        factory.teardown()
