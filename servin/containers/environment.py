"""The environment a container's processes get, as dockerd makes it."""

from __future__ import annotations

from servin.containers.createconfig import DEFAULT_PATH
from servin.containers.record import Container


def replace_or_append(defaults: list[str], overrides: list[str]) -> list[str]:
    """dockerd's ReplaceOrAppendEnvValues: each ``KEY=value`` of ``overrides`` replaces the
    entry of its key in place or comes after them; a bare ``KEY`` (``docker run -e KEY``
    with KEY unset on the client) unsets it and is passed on to no process."""
    merged: list[str | None] = list(defaults)
    index = {entry.partition("=")[0]: n for n, entry in enumerate(defaults)}
    for entry in overrides:
        key, has_value, _ = entry.partition("=")
        if key in index:
            merged[index[key]] = entry if has_value else None
        elif has_value:
            index[key] = len(merged)
            merged.append(entry)
    return [entry for entry in merged if entry is not None]


def container_environment(container: Container, tty: bool) -> list[str]:
    """dockerd's CreateDaemonEnvironment: PATH, HOSTNAME and (with a TTY) TERM, then the
    container's Env over them."""
    defaults = [DEFAULT_PATH, f"HOSTNAME={container.config.get('Hostname') or ''}"]
    if tty:
        defaults.append("TERM=xterm")
    return replace_or_append(defaults, container.config.get("Env") or [])
