"""Daemon configuration: dockerd-named flags merged with daemon.json.

The rules are dockerd's: a directive may come from a flag or from the file, a
flag and a file key naming different values is an error, and so is a file key
that names no directive. Every value is validated here, so a bad one stops the
daemon before it touches anything.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Sequence

import attrs

from servin import __version__

DEFAULT_SOCKET_PATH = "/var/run/servin.sock"
DEFAULT_SOCKET = "unix://" + DEFAULT_SOCKET_PATH
DEFAULT_CONFIG_FILE = "/etc/servin/daemon.json"
DEFAULT_TCP_HOST = "127.0.0.1"
DEFAULT_TCP_PORT = 2375
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")


class ConfigError(Exception):
    """A start-up configuration problem; its message is printed as is, on one line."""


@attrs.define
class DaemonConfig:
    hosts: list[str] = attrs.field(factory=lambda: [DEFAULT_SOCKET])
    data_root: Path = Path("/var/lib/servin")
    exec_root: Path = Path("/run/servin")
    pidfile: Path = Path("/var/run/servin.pid")
    config_file: Path = Path(DEFAULT_CONFIG_FILE)
    registry_mirrors: list[str] = attrs.field(factory=list)
    insecure_registries: list[str] = attrs.field(factory=list)
    log_level: str = "info"
    live_restore: bool = True
    bip: str | None = None
    default_address_pools: list[dict] = attrs.field(factory=list)
    labels: list[str] = attrs.field(factory=list)

    @property
    def debug(self) -> bool:
        return self.log_level == "debug"


@attrs.frozen
class Host:
    """One address the API is served on: ``unix://PATH``, ``tcp://HOST:PORT`` or ``fd://[N]``."""

    scheme: str
    address: str  # socket path, HOST:PORT, or an fd number ("" for every activated socket)

    def __str__(self) -> str:
        return f"{self.scheme}://{self.address}"

    @property
    def tcp_endpoint(self) -> tuple[str, int]:
        parsed = urllib.parse.urlsplit(str(self))
        return parsed.hostname or DEFAULT_TCP_HOST, parsed.port or DEFAULT_TCP_PORT


def parse_host(text: str) -> Host:
    scheme, sep, rest = text.strip().partition("://")
    bad = ConfigError(f"invalid bind address format: {text}")
    if not sep:
        raise bad
    if scheme == "unix":
        path = rest or DEFAULT_SOCKET_PATH
        if not path.startswith("/"):
            raise ConfigError(f"invalid bind address {text}: the socket path must be absolute")
        return Host("unix", path)
    if scheme == "fd":
        if rest and not (rest.isdigit() and int(rest) >= 3):
            raise bad
        return Host("fd", rest)
    if scheme == "tcp":
        try:
            parsed = urllib.parse.urlsplit(text.strip())
            port = parsed.port or DEFAULT_TCP_PORT
        except ValueError:
            raise bad from None
        if parsed.path not in ("", "/") or parsed.query or parsed.username:
            raise bad
        host = parsed.hostname or DEFAULT_TCP_HOST
        return Host("tcp", f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    raise bad


def _string(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"invalid value for {key}: expected a non-empty string, got {value!r}")
    return value


def _strings(key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ConfigError(f"invalid value for {key}: expected a list of strings, got {value!r}")
    return [_string(key, item) for item in value]


def _path(key: str, value: Any) -> Path:
    return Path(_string(key, value)).absolute()


def _bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise ConfigError(f"invalid value for {key}: expected true or false, got {value!r}")


def _hosts(key: str, value: Any) -> list[str]:
    return [str(parse_host(item)) for item in _strings(key, value)]


def _log_level(key: str, value: Any) -> str:
    level = _string(key, value)
    if level not in LOG_LEVELS:
        raise ConfigError(f"unable to parse logging level: {level}")
    return level


def validate_mirror(text: str) -> str:
    """dockerd's rule: an http(s) URL with nothing after the host; normalised to ``scheme://host/``."""
    try:
        url = urllib.parse.urlsplit(text)
        if url.port == 0:  # reading the port checks it: ValueError when not a number
            raise ValueError
    except ValueError:
        raise ConfigError(f'invalid mirror: "{text}" is not a valid URI') from None
    if url.scheme not in ("http", "https"):
        raise ConfigError(f'invalid mirror: unsupported scheme "{url.scheme}" in "{text}"')
    if not url.hostname:
        raise ConfigError(f'invalid mirror: "{text}" is not a valid URI')
    if url.username or url.password:
        raise ConfigError(f'invalid mirror: username/password not allowed in URI "{text}"')
    if url.path not in ("", "/") or url.query or url.fragment:
        raise ConfigError(f'invalid mirror: path, query, or fragment at end of the URI "{text}"')
    return f"{url.scheme}://{url.netloc}/"


def _mirrors(key: str, value: Any) -> list[str]:
    return [validate_mirror(item) for item in _strings(key, value)]


def _insecure_registries(key: str, value: Any) -> list[str]:
    registries = _strings(key, value)
    for registry in registries:
        if "://" in registry:
            raise ConfigError(f"insecure registry {registry} should not contain '://'")
    return registries


def _bip(key: str, value: Any) -> str:
    text = _string(key, value)
    try:
        interface = ipaddress.IPv4Interface(text)
    except ValueError:
        interface = None
    if interface is None or "/" not in text or interface.ip == interface.network.network_address:
        raise ConfigError(f"invalid bip {text!r}: expected an IPv4 gateway address with a "
                          f"prefix length, like 172.17.0.1/16")
    return str(interface)


def _labels(key: str, value: Any) -> list[str]:
    labels = _strings(key, value)
    seen: dict[str, str] = {}
    for label in labels:
        name, sep, _ = label.partition("=")
        if not sep or not name:
            raise ConfigError(f"bad attribute format: {label}")
        if seen.setdefault(name, label) != label:
            raise ConfigError(f"conflict labels for {seen[name]} and {label}")
    return labels


def _address_pools(key: str, value: Any) -> list[dict]:
    if not isinstance(value, list):
        raise ConfigError(f"invalid value for {key}: expected a list of {{base, size}} objects")
    pools = []
    for pool in value:
        try:
            base = ipaddress.ip_network(pool["base"])
            size = pool["size"]
        except (TypeError, KeyError, ValueError):
            raise ConfigError(f"invalid default address pool {pool!r}: expected "
                              f'{{"base": "CIDR", "size": PREFIX_LENGTH}}') from None
        if not isinstance(size, int) or not base.prefixlen <= size <= base.max_prefixlen:
            raise ConfigError(f"invalid default address pool {pool!r}: size must be a prefix "
                              f"length between {base.prefixlen} and {base.max_prefixlen}")
        pools.append({"base": str(base), "size": size})
    return pools


@attrs.frozen
class Directive:
    """One configuration directive: its daemon.json key, flag and config field."""

    key: str
    attr: str
    convert: Callable[[str, Any], Any]
    flag: str | None = None  # flag name when it differs from the key
    short: str | None = None
    repeated: bool = False  # a flag given once per list item
    help: str = ""


DIRECTIVES = (
    Directive("hosts", "hosts", _hosts, flag="host", short="-H", repeated=True,
              help=f"daemon socket to listen on: unix://PATH, tcp://HOST:PORT, fd:// or fd://N "
                   f"(default {DEFAULT_SOCKET})"),
    Directive("data-root", "data_root", _path, help="root of persistent state"),
    Directive("exec-root", "exec_root", _path, help="root of runtime state"),
    Directive("pidfile", "pidfile", _path, short="-p", help="path of the daemon's PID file"),
    Directive("registry-mirrors", "registry_mirrors", _mirrors, flag="registry-mirror",
              repeated=True, help="preferred registry mirror for docker.io"),
    Directive("insecure-registries", "insecure_registries", _insecure_registries,
              flag="insecure-registry", repeated=True,
              help="registry (host[:port] or CIDR) reached over plain HTTP"),
    Directive("log-level", "log_level", _log_level, short="-l",
              help=f"logging level: {', '.join(LOG_LEVELS)}"),
    Directive("live-restore", "live_restore", _bool,
              help="keep containers running while the daemon is down"),
    Directive("bip", "bip", _bip, help="gateway address and prefix of the default bridge"),
    Directive("default-address-pools", "default_address_pools", _address_pools),
    Directive("labels", "labels", _labels, flag="label", repeated=True,
              help="key=value label of this daemon"),
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def _flag_parser() -> argparse.ArgumentParser:
    # Unset flags stay out of the namespace, so only flags given on the command line
    # take part in the merge with the file.
    parser = _Parser(prog="servind", argument_default=argparse.SUPPRESS,
                     description="Servin: a Docker-compatible container engine daemon.")
    parser.add_argument("-v", "--version", action="version", version=f"Servin {__version__}")
    parser.add_argument("--config-file", help=f"daemon.json to read (default {DEFAULT_CONFIG_FILE})")
    for d in DIRECTIVES:
        if d.attr == "default_address_pools":
            continue  # file only, as its structure does not fit a flag
        names = [f"--{d.flag or d.key}"] + ([d.short] if d.short else [])
        if d.repeated:
            parser.add_argument(*names, dest=d.key, action="append", metavar="VALUE", help=d.help)
        elif d.convert is _bool:
            # Go's bool flags: --live-restore or --live-restore=false
            parser.add_argument(*names, dest=d.key, nargs="?", const="true", metavar="BOOL",
                                help=d.help)
        else:
            parser.add_argument(*names, dest=d.key, metavar="VALUE", help=d.help)
    return parser


def _go_format(value: Any) -> str:
    """Print a value as dockerd's messages do (Go's %v)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + " ".join(_go_format(item) for item in value) + "]"
    return str(value)


def _read_file(path: Path, explicit: bool) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"unable to configure the Servin daemon with file {path}: "
                              f"open {path}: no such file or directory") from None
        return {}
    except OSError as exc:
        raise ConfigError(f"unable to configure the Servin daemon with file {path}: "
                          f"{exc.strerror}") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"unable to configure the Servin daemon with file {path}: "
                          f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"unable to configure the Servin daemon with file {path}: "
                          f"expected a JSON object")
    return data


def load_config(argv: Sequence[str], default_config_file: str = DEFAULT_CONFIG_FILE) -> DaemonConfig:
    """Parse the flags, read the config file, merge them and validate every value."""
    flags = vars(_flag_parser().parse_args(list(argv)))
    explicit_file = "config_file" in flags
    config_file = Path(flags.pop("config_file", default_config_file)).absolute()
    file = _read_file(config_file, explicit_file)

    by_key = {d.key: d for d in DIRECTIVES}
    unknown = sorted(key for key in file if key not in by_key)
    if unknown:
        raise ConfigError(f"unable to configure the Servin daemon with file {config_file}: the "
                          f"following directives don't match any configuration option: "
                          f"{', '.join(unknown)}")

    values: dict[str, Any] = {}
    conflicts = []
    for d in DIRECTIVES:
        from_flag = d.convert(d.key, flags[d.key]) if d.key in flags else None
        from_file = d.convert(d.key, file[d.key]) if d.key in file else None
        if d.key in flags and d.key in file and from_flag != from_file:
            conflicts.append(f"{d.key}: (from flag: {_go_format(flags[d.key])}, "
                             f"from file: {_go_format(file[d.key])})")
        if d.key in flags or d.key in file:
            values[d.attr] = from_flag if d.key in flags else from_file
    if conflicts:
        raise ConfigError(f"unable to configure the Servin daemon with file {config_file}: the "
                          f"following directives are specified both as a flag and in the "
                          f"configuration file: {', '.join(conflicts)}")
    if not values.get("hosts", True):
        values.pop("hosts")  # an empty list means the default socket, as in dockerd
    return DaemonConfig(config_file=config_file, **values)
