"""Docker's list filters: the ``filters`` argument and the matching rules all lists share."""

from __future__ import annotations

import re
import time
from typing import Any, Iterable

from servin.errors import InvalidArgument
from servin.timefmt import parse_rfc3339_ns

TRUE_VALUES = ("true", "1")
FALSE_VALUES = ("false", "0")

Filters = dict[str, list[str]]


def parse_filters(raw: Any) -> Filters:
    """``{"key": {"value": true}}`` or the legacy ``{"key": ["value"]}`` into key -> values."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid filters parameter: expected an object")
    out: Filters = {}
    for key, values in raw.items():
        if isinstance(values, dict):
            out[key] = [value for value, enabled in values.items() if enabled]
        elif isinstance(values, list):
            out[key] = [str(value) for value in values]
        else:
            raise InvalidArgument(f"invalid filters parameter: bad value for {key!r}")
    return out


def check_keys(filters: Filters, accepted: Iterable[str]) -> None:
    for key in filters:
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")


def bool_filter(filters: Filters, key: str) -> bool | None:
    """The last value given for a boolean filter such as ``dangling``; None when absent."""
    values = filters.get(key, [])
    if not values:
        return None
    value = values[-1].lower()
    if value in TRUE_VALUES:
        return True
    if value in FALSE_VALUES:
        return False
    raise InvalidArgument(f"invalid filter '{key}={values[-1]}'")


def label_matches(labels: dict[str, str], wanted: str) -> bool:
    """``key`` (present) or ``key=value`` (equal)."""
    key, sep, value = wanted.partition("=")
    if not sep:
        return key in labels
    return labels.get(key) == value


def labels_match(labels: dict[str, str], filters: Filters) -> bool:
    """Every ``label`` filter holds and no ``label!`` filter does, as dockerd's prune."""
    return (all(label_matches(labels, wanted) for wanted in filters.get("label", []))
            and not any(label_matches(labels, unwanted) for unwanted in filters.get("label!", [])))


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_go_duration(text: str) -> float | None:
    """Seconds of a Go duration such as ``90s`` or ``1h30m``; None if it is not one."""
    body = text.lstrip("+-")
    if not body:
        return None
    total, position = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        return None
    return -total if text.startswith("-") else total


def timestamp_filter_ns(value: str, now_ns: int | None = None) -> int:
    """The moment an ``until``/``since`` filter names, as dockerd's GetTimestamp reads it:
    a duration back from now, an RFC 3339 time, or unix seconds with a fraction."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    duration = parse_go_duration(value)
    if duration is not None:
        return now_ns - int(duration * 1e9)
    # A time without a zone is taken as UTC.
    moment = parse_rfc3339_ns(value) or parse_rfc3339_ns(value + "Z")
    if moment:
        return moment
    seconds, _, fraction = value.partition(".")
    if seconds.isdigit() and (not fraction or fraction.isdigit()):
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0")[:9] or 0)
    raise InvalidArgument(f"failed to parse value as time or duration: \"{value}\"")
