"""The /etc/hostname, /etc/hosts and /etc/resolv.conf files Docker writes per container."""

from __future__ import annotations

import re
from pathlib import Path

from servin.store import atomic_write

HOSTS_BASE = ("127.0.0.1\tlocalhost\n"
              "::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\n"
              "ff00::0\tip6-mcastprefix\n"
              "ff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n")

# dockerd's fallback when the host only lists loopback resolvers, which a container
# in its own network namespace cannot reach.
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_LOOPBACK_NAMESERVER = re.compile(r"^\s*nameserver\s+(127\.\S*|::1|0\.0\.0\.0)\s*$")


def hosts_content(entries: list[tuple[str, str]]) -> str:
    """The base entries plus ``address<TAB>names`` lines for the container itself."""
    return HOSTS_BASE + "".join(f"{address}\t{names}\n" for address, names in entries)


def container_resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without resolvers the container cannot reach."""
    lines = [line for line in host_text.splitlines() if not _LOOPBACK_NAMESERVER.match(line)]
    if not any(line.strip().startswith("nameserver") for line in lines):
        lines += [f"nameserver {ns}" for ns in DEFAULT_NAMESERVERS]
    return "\n".join(lines) + "\n"


def write_etc_files(directory: Path, *, hostname: str, host_network: bool,
                    host_etc: Path = Path("/etc")) -> dict[str, Path]:
    """Write the three files into ``directory``; return them by their path in the container."""
    try:
        host_resolv = (host_etc / "resolv.conf").read_text()
    except FileNotFoundError:
        host_resolv = ""
    if host_network:
        hosts = (host_etc / "hosts").read_text() if (host_etc / "hosts").exists() else HOSTS_BASE
        resolv = host_resolv
    else:
        hosts = hosts_content([])
        resolv = container_resolv_conf(host_resolv)
    files = {"/etc/hostname": (directory / "hostname", hostname + "\n"),
             "/etc/hosts": (directory / "hosts", hosts),
             "/etc/resolv.conf": (directory / "resolv.conf", resolv)}
    for path, text in files.values():
        atomic_write(path, text.encode(), mode=0o644)
    return {target: path for target, (path, _) in files.items()}
