"""Image references parsed and normalised as Docker does (distribution/reference).

``alpine`` is ``docker.io/library/alpine:latest``; ``host:port/repo:tag`` names
another registry; ``repo@sha256:...`` pins a manifest digest. Errors carry
Docker's wording, which the CLI prints as is.
"""

from __future__ import annotations

import re

import attrs

from servin.errors import InvalidArgument

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_LENGTH_MAX = 255

_ALPHA_NUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]*)"
_NAME_COMPONENT = rf"{_ALPHA_NUMERIC}(?:{_SEPARATOR}{_ALPHA_NUMERIC})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_NAME = rf"(?:{_DOMAIN}/)?{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*"

REFERENCE_RE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ID_RE = re.compile(r"^[0-9a-f]{64}$")


@attrs.frozen
class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        return self.path.removeprefix(OFFICIAL_REPO_PREFIX)

    def familiar(self) -> str:
        """The short form Docker shows: ``alpine:latest``, ``host:5000/x@sha256:...``."""
        return self.familiar_name + self._suffix()

    def __str__(self) -> str:
        return self.name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def with_default_tag(self) -> "Reference":
        """Docker's TagNameOnly: a bare name means ``:latest``."""
        if self.tag is None and self.digest is None:
            return attrs.evolve(self, tag=DEFAULT_TAG)
        return self

    @property
    def tag_or_digest(self) -> str:
        return self.digest or self.tag or DEFAULT_TAG


def parse_reference(text: str) -> Reference:
    """Docker's ParseNormalizedNamed; raises InvalidArgument with Docker's messages."""
    if ID_RE.match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify "
                              f"64-byte hexadecimal strings")
    domain, remainder = _split_domain(text)
    remote_name = remainder.split(":", 1)[0]
    if remote_name.lower() != remote_name:
        raise InvalidArgument("invalid reference format: repository name must be lowercase")
    match = REFERENCE_RE.match(f"{domain}/{remainder}")
    if match is None:
        raise InvalidArgument("invalid reference format")
    name, tag, digest = match.groups()
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidArgument(f"repository name must not be more than "
                              f"{NAME_TOTAL_LENGTH_MAX} characters")
    if digest is not None:
        _check_digest(digest)
    return Reference(domain, name[len(domain) + 1:], tag, digest)


def parse_digest(text: str) -> str:
    """Validate a ``sha256:<hex>`` digest string."""
    if not DIGEST_RE.match(text):
        raise InvalidArgument("invalid reference format")
    _check_digest(text)
    return text


def _check_digest(digest: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256":
        raise InvalidArgument("unsupported digest algorithm")
    if len(hexpart) != 64:
        raise InvalidArgument("invalid checksum digest length")
    if hexpart.lower() != hexpart:
        raise InvalidArgument("invalid checksum digest format")


def _split_domain(text: str) -> tuple[str, str]:
    first, sep, rest = text.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, text
    else:
        domain, remainder = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = OFFICIAL_REPO_PREFIX + remainder
    return domain, remainder


def with_tag_or_digest(ref: Reference, tag: str | None) -> Reference:
    """Apply the API's separate ``tag`` parameter (a tag or a digest) to ``ref``."""
    if not tag:
        return ref
    if ":" in tag and DIGEST_RE.match(tag):
        return attrs.evolve(ref, tag=None, digest=parse_digest(tag))
    if not TAG_RE.match(tag):
        raise InvalidArgument("invalid reference format")
    return attrs.evolve(ref, tag=tag)
