"""``GET /containers/json`` filtering, as dockerd's daemon/list.go does it."""

from __future__ import annotations

import re
from typing import Callable

from servin.containers.record import Container
from servin.errors import InvalidArgument
from servin.filters import Filters, bool_filter, check_keys, label_matches

ACCEPTED_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since",
                    "health", "network", "volume", "publish", "expose", "is-task")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
HEALTH_STATES = ("starting", "healthy", "unhealthy", "none")


def _matches(pattern: str, value: str) -> bool:
    """filters.Args.Match: equal, or the value holds the pattern as a regular expression."""
    if pattern == value:
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def _port_matches(wanted: str, ports: set[str]) -> bool:
    """``80``, ``80/tcp`` or a range ``8000-8080/tcp`` against ``port/proto`` keys."""
    spec, _, proto = wanted.partition("/")
    proto = proto or "tcp"
    low, _, high = spec.partition("-")
    try:
        first, last = int(low), int(high or low)
    except ValueError:
        raise InvalidArgument(f"invalid port filter: {wanted}") from None
    for port in ports:
        number, _, port_proto = port.partition("/")
        if (port_proto or "tcp") == proto and first <= int(number) <= last:
            return True
    return False


def _network_names(container: Container) -> set[str]:
    mode = container.host_config.get("NetworkMode") or "default"
    return {"bridge" if mode == "default" else mode}


def _published(container: Container) -> set[str]:
    """Host ports, as ``port/proto``, that the container's ports are published on."""
    out = set()
    for port, bindings in (container.host_config.get("PortBindings") or {}).items():
        proto = port.partition("/")[2] or "tcp"
        out |= {f"{b['HostPort']}/{proto}" for b in bindings or [] if b.get("HostPort")}
    return out


def _volume_names(container: Container) -> set[str]:
    names = {m.get("Target") or "" for m in container.host_config.get("Mounts") or []}
    names |= {m.get("Source") or "" for m in container.host_config.get("Mounts") or []}
    for bind in container.host_config.get("Binds") or []:
        names.update(bind.split(":")[:2])
    return names - {""}


def filter_containers(containers: list[Container], filters: Filters, *,
                      resolve: Callable[[str], Container],
                      image_ids: Callable[[str], str | None],
                      health: Callable[[Container], str]) -> list[Container]:
    """The containers, newest first, that pass every filter.

    ``resolve`` finds a container by name or id (for before/since), ``image_ids`` an
    image id by reference (for ancestor), ``health`` a container's health status.
    """
    ordered = sorted(containers, key=lambda c: c.created_ns, reverse=True)
    if not filters:
        return ordered
    check_keys(filters, ACCEPTED_FILTERS)
    for status in filters.get("status", []):
        if status not in STATUSES:
            raise InvalidArgument(f"Unrecognised filter value for status: {status}")
    for state in filters.get("health", []):
        if state not in HEALTH_STATES:
            raise InvalidArgument(f"Unrecognised filter value for health: {state}")
    try:
        exit_codes = {int(code) for code in filters.get("exited", [])}
    except ValueError:
        raise InvalidArgument("invalid filter 'exited': exit codes are integers") from None
    before = [resolve(ref).created_ns for ref in filters.get("before", [])]
    since = [resolve(ref).created_ns for ref in filters.get("since", [])]
    # Unknown ancestors are skipped, as dockerd does; none known then matches nothing.
    ancestors = {image_id for ref in filters.get("ancestor", [])
                 if (image_id := image_ids(ref)) is not None}
    is_task = bool_filter(filters, "is-task")

    def keep(c: Container) -> bool:
        if is_task:  # no container of this engine is a swarm task
            return False
        if "id" in filters and not any(_matches(p, c.id) for p in filters["id"]):
            return False
        if "name" in filters and not any(_matches(p, "/" + c.name) or _matches(p, c.name)
                                         for p in filters["name"]):
            return False
        labels = c.config.get("Labels") or {}
        if not all(label_matches(labels, wanted) for wanted in filters.get("label", [])):
            return False
        if "status" in filters and not any(_matches(p, c.state.status)
                                           for p in filters["status"]):
            return False
        # Only containers that ran and stopped have an exit code to match.
        if exit_codes and (c.state.running or not c.state.started_ns
                           or c.state.exit_code not in exit_codes):
            return False
        if "ancestor" in filters and c.image_id not in ancestors:
            return False
        if any(c.created_ns >= limit for limit in before):
            return False
        if any(c.created_ns <= limit for limit in since):
            return False
        if "health" in filters and health(c) not in filters["health"]:
            return False
        if "network" in filters and not any(_matches(n, name) for n in filters["network"]
                                            for name in _network_names(c)):
            return False
        if "volume" in filters and not set(filters["volume"]) & _volume_names(c):
            return False
        if "publish" in filters and not any(_port_matches(p, _published(c))
                                            for p in filters["publish"]):
            return False
        exposed = set((c.config.get("ExposedPorts") or {}).keys())
        if "expose" in filters and not any(_port_matches(p, exposed) for p in filters["expose"]):
            return False
        return True

    return [c for c in ordered if keep(c)]
