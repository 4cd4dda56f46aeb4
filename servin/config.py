"""Daemon configuration: dockerd-named flags merged with daemon.json."""

from __future__ import annotations

from pathlib import Path

import attrs

DEFAULT_SOCKET = "unix:///var/run/servin.sock"
DEFAULT_CONFIG_FILE = "/etc/servin/daemon.json"


@attrs.define
class DaemonConfig:
    hosts: list[str] = attrs.field(factory=lambda: [DEFAULT_SOCKET])
    data_root: Path = Path("/var/lib/servin")
    exec_root: Path = Path("/run/servin")
    pidfile: Path | None = None
    config_file: Path = Path(DEFAULT_CONFIG_FILE)
    registry_mirrors: list[str] = attrs.field(factory=list)
    insecure_registries: list[str] = attrs.field(factory=list)
    log_level: str = "info"
    live_restore: bool = True
    bip: str | None = None
    default_address_pools: list[dict] = attrs.field(factory=list)
    labels: list[str] = attrs.field(factory=list)
