"""``GET /images/json`` filtering, as dockerd does it (daemon/images/images.go)."""

from __future__ import annotations

import re
from typing import Callable

import attrs

from servin.errors import InvalidArgument
from servin.filters import bool_filter, check_keys, label_matches
from servin.images.imagestore import Image
from servin.images.reference import parse_reference

ACCEPTED_FILTERS = ("dangling", "label", "before", "since", "reference")


@attrs.frozen
class ListedImage:
    """An image as listed: only the references the filters let through."""

    image: Image
    repo_tags: list[str]
    repo_digests: list[str]


def path_match(pattern: str, name: str) -> bool:
    """Go's path.Match: ``*`` and ``?`` never match ``/``."""
    regex = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                raise InvalidArgument("syntax error in pattern")
            body = pattern[i + 1:end]
            regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            regex += re.escape(pattern[i])
        else:
            regex += re.escape(char)
        i += 1
    return re.fullmatch(regex, name) is not None


def familiar_match(pattern: str, ref: str) -> bool:
    """reference.FamiliarMatch: the whole familiar string, or just the name."""
    return path_match(pattern, ref) or path_match(pattern, parse_reference(ref).familiar_name)


def filter_images(images: list[Image], filters: dict[str, list[str]],
                  resolve: Callable[[str], Image]) -> list[ListedImage]:
    check_keys(filters, ACCEPTED_FILTERS)
    dangling = bool_filter(filters, "dangling")
    before = [resolve(name).created_unix for name in filters.get("before", [])]
    since = [resolve(name).created_unix for name in filters.get("since", [])]
    labels = filters.get("label", [])
    patterns = filters.get("reference", [])
    out: list[ListedImage] = []
    for image in sorted(images, key=lambda img: img.created_unix, reverse=True):
        if dangling is not None and dangling != (not image.repo_tags):
            continue
        if any(image.created_unix >= limit for limit in before):
            continue
        if any(image.created_unix <= limit for limit in since):
            continue
        if not all(label_matches(image.labels, label) for label in labels):
            continue
        tags, digests = image.repo_tags, image.repo_digests
        if patterns:
            tags = [t for t in tags if any(familiar_match(p, t) for p in patterns)]
            digests = [d for d in digests if any(familiar_match(p, d) for p in patterns)]
            if not tags and not digests:
                continue
        out.append(ListedImage(image, list(tags), list(digests)))
    return out

