"""The /etc/hostname, /etc/hosts and /etc/resolv.conf files Docker writes per container."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import attrs

from servin.containers.createconfig import parse_extra_host
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


def hosts_lines(entries: list[tuple[str, str]]) -> str:
    """``address<TAB>names`` lines."""
    return "".join(f"{address}\t{names}\n" for address, names in entries)


def hosts_content(entries: list[tuple[str, str]]) -> str:
    return HOSTS_BASE + hosts_lines(entries)


def container_resolv_conf(host_text: str) -> str:
    """The host's resolv.conf without resolvers the container cannot reach."""
    lines = [line for line in host_text.splitlines() if not _LOOPBACK_NAMESERVER.match(line)]
    if not any(line.strip().startswith("nameserver") for line in lines):
        lines += [f"nameserver {ns}" for ns in DEFAULT_NAMESERVERS]
    return "\n".join(lines) + "\n"


@attrs.frozen
class DnsSettings:
    """HostConfig's Dns, DnsSearch and DnsOptions: each replaces the host's when given."""

    servers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.servers or self.search or self.options)


def _entries(text: str, keyword: str) -> list[str]:
    values = []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == keyword:
            values += fields[1:]
    return values


def custom_resolv_conf(base: str, dns: DnsSettings) -> str:
    """resolv.conf as dockerd builds it with --dns/--dns-search/--dns-option: search,
    nameservers, options, each the request's if given, else ``base``'s."""
    search = list(dns.search) or _entries(base, "search")
    servers = list(dns.servers) or _entries(base, "nameserver")
    options = list(dns.options) or _entries(base, "options")
    lines = []
    if search and search != ["."]:  # "." asks for no search domains at all
        lines.append("search " + " ".join(search))
    lines += [f"nameserver {server}" for server in servers]
    if options:
        lines.append("options " + " ".join(options))
    return "\n".join(lines) + "\n"


def embedded_dns_resolv_conf(host_text: str) -> str:
    """Containers on user-defined networks ask the embedded DNS server; the host's
    search domains and options stay, with ndots:0 as dockerd adds it."""
    lines = [line for line in host_text.splitlines()
             if line.split()[:1] in (["search"], ["domain"])]
    options = _entries(host_text, "options")
    if not any(option.startswith("ndots:") for option in options):
        options.append("ndots:0")
    return "\n".join(["nameserver 127.0.0.11", *lines, "options " + " ".join(options)]) + "\n"


def write_etc_files(directory: Path, *, hostname: str, host_network: bool,
                    extra_hosts: list[tuple[str, str]] = (), dns: DnsSettings = DnsSettings(),
                    own_entries: list[tuple[str, str]] = (), embedded_dns: bool = False,
                    host_etc: Path = Path("/etc")) -> dict[str, Path]:
    """Write the three files into ``directory``; return them by their path in the container.

    ``extra_hosts`` are (name, address) pairs (--add-host) for /etc/hosts,
    ``own_entries`` (address, names) lines for the container's own addresses and
    links; ``embedded_dns`` points resolv.conf at 127.0.0.11.
    """
    try:
        host_resolv = (host_etc / "resolv.conf").read_text()
    except FileNotFoundError:
        host_resolv = ""
    added = [(address, name) for name, address in extra_hosts]
    if host_network:
        hosts = (host_etc / "hosts").read_text() if (host_etc / "hosts").exists() else HOSTS_BASE
        hosts += hosts_lines(added)
        resolv = host_resolv
    else:
        # As dockerd's: --add-host entries before the links and the container's own lines.
        hosts = hosts_content([*added, *own_entries])
        resolv = (embedded_dns_resolv_conf(host_resolv) if embedded_dns
                  else container_resolv_conf(host_resolv))
    if dns:
        # The embedded DNS server stays the nameserver; the request's search and options apply.
        resolv = custom_resolv_conf(resolv, DnsSettings((), dns.search, dns.options)
                                    if embedded_dns else dns)
    files = {"/etc/hostname": (directory / "hostname", hostname + "\n"),
             "/etc/hosts": (directory / "hosts", hosts),
             "/etc/resolv.conf": (directory / "resolv.conf", resolv)}
    for path, text in files.values():
        # Made again at each start: no need to wait for the disk.
        atomic_write(path, text.encode(), mode=0o644, durable=False)
    return {target: path for target, (path, _) in files.items()}


def etc_file_options(host_config: dict[str, Any]) -> dict[str, Any]:
    """write_etc_files' keyword arguments from a container's (validated) HostConfig."""
    return {"extra_hosts": [parse_extra_host(e) for e in host_config.get("ExtraHosts") or []],
            "dns": DnsSettings(tuple(host_config.get("Dns") or ()),
                               tuple(host_config.get("DnsSearch") or ()),
                               tuple(host_config.get("DnsOptions") or ()))}
