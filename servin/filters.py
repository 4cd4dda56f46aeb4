"""Docker's list filters: the ``filters`` argument and the matching rules all lists share."""

from __future__ import annotations

from typing import Any, Iterable

from servin.errors import InvalidArgument

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
