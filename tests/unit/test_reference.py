"""Reference parsing and normalisation, as Docker's distribution/reference."""

from __future__ import annotations

import pytest

from servin.errors import InvalidArgument
from servin.images.reference import parse_reference, with_tag_or_digest

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, domain, path, tag, digest, familiar", [
    ("alpine", "docker.io", "library/alpine", None, None, "alpine"),
    ("alpine:3.18", "docker.io", "library/alpine", "3.18", None, "alpine:3.18"),
    ("docker.io/library/alpine:latest", "docker.io", "library/alpine", "latest", None,
     "alpine:latest"),
    ("index.docker.io/foo/bar", "docker.io", "foo/bar", None, None, "foo/bar"),
    ("foo/bar:v1", "docker.io", "foo/bar", "v1", None, "foo/bar:v1"),
    ("localhost/foo", "localhost", "foo", None, None, "localhost/foo"),
    ("127.0.0.1:5000/a/b:t", "127.0.0.1:5000", "a/b", "t", None, "127.0.0.1:5000/a/b:t"),
    (f"alpine@{DIGEST}", "docker.io", "library/alpine", None, DIGEST, f"alpine@{DIGEST}"),
    (f"registry.example:443/x:t@{DIGEST}", "registry.example:443", "x", "t", DIGEST,
     f"registry.example:443/x:t@{DIGEST}"),
    ("alpine:Latest_1", "docker.io", "library/alpine", "Latest_1", None, "alpine:Latest_1"),
])
def test_parse(text, domain, path, tag, digest, familiar):
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert ref.familiar() == familiar


def test_default_tag_and_full_name():
    ref = parse_reference("alpine").with_default_tag()
    assert str(ref) == "docker.io/library/alpine:latest"
    assert ref.familiar() == "alpine:latest"
    assert parse_reference(f"alpine@{DIGEST}").with_default_tag().tag is None


@pytest.mark.parametrize("text, message", [
    ("Alpine", "invalid reference format: repository name must be lowercase"),
    ("foo/Bar:v1", "invalid reference format: repository name must be lowercase"),
    ("alpine:", "invalid reference format"),
    ("-alpine", "invalid reference format"),
    ("alpine::tag", "invalid reference format"),
    ("a" * 64, "invalid repository name (" + "a" * 64 + "), cannot specify 64-byte "
     "hexadecimal strings"),
    ("alpine@sha256:abc", "invalid reference format"),
    ("x/" + "a" * 300, "repository name must not be more than 255 characters"),
])
def test_invalid(text, message):
    with pytest.raises(InvalidArgument) as info:
        parse_reference(text)
    assert info.value.message == message


def test_tag_parameter_takes_tag_or_digest():
    ref = parse_reference("alpine")
    assert with_tag_or_digest(ref, "3.18").tag == "3.18"
    by_digest = with_tag_or_digest(ref, DIGEST)
    assert (by_digest.tag, by_digest.digest) == (None, DIGEST)
    assert with_tag_or_digest(ref, None) is ref
    with pytest.raises(InvalidArgument, match="invalid reference format"):
        with_tag_or_digest(ref, "bad tag")
