"""Pure logic of image progress lines and list filters."""

from __future__ import annotations

import pytest

from servin.errors import InvalidArgument
from servin.images.filters import filter_images, path_match
from servin.images.imagestore import Image
from servin.images.progress import ProgressMessage, human_size, progress_bar


def test_human_size_matches_go_units():
    assert [human_size(n) for n in (0, 999, 1000, 32768, 2_812_345, 5 * 10**9)] == \
        ["0B", "999B", "1kB", "32.77kB", "2.812MB", "5GB"]


def test_progress_bar_as_dockerd_renders_it():
    assert progress_bar(0, 0) == ""
    assert progress_bar(500_000, 1_000_000) == \
        "[" + "=" * 25 + ">" + " " * 25 + "] " + "   500kB/1MB"
    assert progress_bar(2048, None) == " 2.048kB"


def test_progress_message_shapes():
    assert ProgressMessage("Pulling from library/alpine", id="latest", detail=False).to_json() \
        == {"status": "Pulling from library/alpine", "id": "latest"}
    assert ProgressMessage("Waiting", id="abc").to_json() == \
        {"status": "Waiting", "progressDetail": {}, "id": "abc"}
    downloading = ProgressMessage("Downloading", id="abc", current=10, total=100).to_json()
    assert downloading["progressDetail"] == {"current": 10, "total": 100}
    assert downloading["progress"].startswith("[=====>")
    assert ProgressMessage("Digest: sha256:x").to_json() == {"status": "Digest: sha256:x"}


def test_path_match_is_go_path_match():
    assert path_match("alp*", "alpine:latest")
    assert not path_match("*", "foo/bar")
    assert path_match("*/*", "foo/bar")
    assert path_match("b?sybox", "busybox")
    assert path_match("[a-c]lpine", "alpine")


def image(id_: str, created: str, tags: list[str], labels: dict | None = None) -> Image:
    return Image(id_, {"created": created, "config": {"Labels": labels}}, None,
                 repo_tags=tags)


def test_filters():
    old = image("sha256:" + "1" * 64, "2020-01-01T00:00:00Z", ["old:1"], {"a": "b"})
    new = image("sha256:" + "2" * 64, "2024-01-01T00:00:00.5Z", ["new:1", "other:2"])
    dangling = image("sha256:" + "3" * 64, "2022-01-01T00:00:00Z", [])
    images = [old, new, dangling]
    by_name = {"old": old, "new": new}

    def ids(filters):
        return [(item.image.id[7], item.repo_tags)
                for item in filter_images(images, filters, by_name.__getitem__)]

    assert ids({}) == [("2", ["new:1", "other:2"]), ("3", []), ("1", ["old:1"])]
    assert ids({"reference": ["new"]}) == [("2", ["new:1"])]
    assert ids({"dangling": ["true"]}) == [("3", [])]
    assert ids({"label": ["a=b"]}) == [("1", ["old:1"])]
    assert ids({"label": ["a"], "dangling": ["false"]}) == [("1", ["old:1"])]
    assert ids({"before": ["new"]}) == [("3", []), ("1", ["old:1"])]
    assert ids({"since": ["old"]}) == [("2", ["new:1", "other:2"]), ("3", [])]
    with pytest.raises(InvalidArgument, match="invalid filter 'nope'"):
        ids({"nope": ["x"]})
    with pytest.raises(InvalidArgument, match="invalid filter 'dangling=maybe'"):
        ids({"dangling": ["maybe"]})
