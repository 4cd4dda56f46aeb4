"""A container's HostConfig.LogConfig: the log drivers this engine serves and their options.

Drivers: ``json-file`` (the default, no rotation unless ``max-size`` is set),
``local`` (rotation on by default: 20 MiB x 5 files) and ``none`` (no log kept).
Both file drivers store conmon's k8s-file lines; ``compress`` is accepted and
validated as dockerd does, but rotated files are kept uncompressed.

dockerd 20.10 checks the option names when a container is created and their
values only when the logger starts; here both are checked at create (a 400), the
value errors worded as ``docker run`` prints them from dockerd.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from servin.errors import InvalidArgument

DEFAULT_DRIVER = "json-file"
DRIVERS = ("json-file", "local", "none")

# Options dockerd handles for every driver (log mode, ring buffer, dual-logging cache).
_COMMON_OPTS = frozenset({"mode", "max-buffer-size", "cache-disabled", "cache-max-file",
                          "cache-max-size", "cache-compress"})
_DRIVER_OPTS = {
    "json-file": frozenset({"max-file", "max-size", "compress", "labels", "labels-regex",
                            "env", "env-regex", "tag"}),
    "local": frozenset({"max-file", "max-size", "compress"}),
}
# The drivers that keep a log, as /info lists them.
LOG_FILE_DRIVERS = frozenset(_DRIVER_OPTS)
_LOG_MODES = ("", "blocking", "non-blocking")

LOCAL_MAX_SIZE = 20 * 1024 * 1024
LOCAL_MAX_FILE = 5

# go-units' size syntax; FromHumanSize counts k, m, g... in powers of 1000, RAMInBytes in 1024.
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)*) ?([kKmMgGtTpP])?[iI]?[bB]?")
_UNIT_POWER = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@attrs.frozen
class LogPolicy:
    """How a container's output is kept: where rotation happens and how many files stay."""

    driver: str
    max_size: int | None  # bytes a log file may reach before it is rotated; None: never
    max_file: int         # files kept in all, the live one included

    @property
    def keeps_log(self) -> bool:
        return self.driver != "none"

    @property
    def rotates(self) -> bool:
        return self.driver != "none" and self.max_size is not None


def parse_size(text: str, base: int = 1000) -> int:
    """go-units' FromHumanSize (base 1000) or RAMInBytes (base 1024); ValueError as Go words it."""
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"invalid size: '{text}'")
    number, unit = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f'strconv.ParseFloat: parsing "{number}": invalid syntax') from None
    return int(value * base ** _UNIT_POWER[(unit or "").lower()])


def _atoi(text: str) -> int:
    if _INTEGER.fullmatch(text) is None:
        raise ValueError(f'strconv.Atoi: parsing "{text}": invalid syntax')
    return int(text)


def _parse_bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{text}": invalid syntax')


def normalize_log_config(raw: Any) -> dict[str, Any]:
    """The LogConfig to record for a create request; InvalidArgument with dockerd's words.

    An empty Type is the daemon's default driver, as dockerd's mergeAndVerifyLogConfig.
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise InvalidArgument("invalid LogConfig: expected an object")
    driver = raw.get("Type") or DEFAULT_DRIVER
    options = raw.get("Config") or {}
    if not isinstance(driver, str):
        raise InvalidArgument("invalid LogConfig.Type: expected a string")
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise InvalidArgument("invalid LogConfig.Config: expected an object of strings")
    try:
        _validate_options(driver, options)
        log_policy_of(driver, options)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    return {"Type": driver, "Config": dict(options)}


def _validate_options(driver: str, options: dict[str, str]) -> None:
    """dockerd's logger.ValidateLogOpts: names only (``none`` takes anything)."""
    if driver == "none":
        return
    mode = options.get("mode", "")
    if mode not in _LOG_MODES:
        raise ValueError(f"logger: logging mode not supported: {mode}")
    if "max-buffer-size" in options:
        if mode != "non-blocking":
            raise ValueError("logger: max-buffer-size option is only supported with "
                             "'mode=non-blocking'")
        try:
            parse_size(options["max-buffer-size"], base=1024)
        except ValueError as exc:
            raise ValueError(f"error parsing option max-buffer-size: {exc}") from None
    cache_disabled = options.get("cache-disabled", "")
    if cache_disabled:
        try:
            _parse_bool(cache_disabled)
        except ValueError:
            raise ValueError(f"invalid value for option cache-disabled: {cache_disabled}") from None
    if driver not in _DRIVER_OPTS:
        raise ValueError(f"logger: no log driver named '{driver}' is registered")
    for key in ("labels-regex", "env-regex"):
        if options.get(key):
            try:
                re.compile(options[key])
            except re.error as exc:
                raise ValueError(f"invalid {key} {options[key]!r}: {exc}") from None
    for key in options:
        if key in _COMMON_OPTS or key in _DRIVER_OPTS[driver]:
            continue
        if driver == "json-file":
            raise ValueError(f"unknown log opt '{key}' for json-file log driver")
        raise ValueError(f"unknown log opt '{key}' for log driver {driver}")


def log_attributes(log_config: dict[str, Any], labels: dict[str, str] | None,
                   env: list[str] | None) -> dict[str, str]:
    """The attributes json-file gives each line (``docker logs --details`` shows them):
    the container's labels and environment variables its ``labels``, ``labels-regex``,
    ``env`` and ``env-regex`` options name, as dockerd's ExtraAttributes picks them."""
    if log_config.get("Type") != "json-file":
        return {}
    options = log_config.get("Config") or {}
    labels = labels or {}
    variables = dict(entry.split("=", 1) for entry in env or [] if "=" in entry)
    picked: dict[str, str] = {}
    for source, names_key, regex_key in ((labels, "labels", "labels-regex"),
                                         (variables, "env", "env-regex")):
        for name in filter(None, options.get(names_key, "").split(",")):
            if name in source:
                picked[name] = source[name]
        if options.get(regex_key):
            pattern = re.compile(options[regex_key])
            picked.update({k: v for k, v in source.items() if pattern.search(k)})
    return picked


def log_policy(log_config: dict[str, Any]) -> LogPolicy:
    """The policy of a recorded (already validated) LogConfig."""
    return log_policy_of(log_config.get("Type") or DEFAULT_DRIVER, log_config.get("Config") or {})


def log_policy_of(driver: str, options: dict[str, str]) -> LogPolicy:
    """The values, checked as each dockerd driver's New does; ValueError with its words."""
    if driver == "json-file":
        return _json_file_policy(options)
    if driver == "local":
        return _local_policy(options)
    return LogPolicy(driver="none", max_size=None, max_file=1)


def _failed(reason: str) -> ValueError:
    return ValueError(f"failed to initialize logging driver: {reason}")


def _json_file_policy(options: dict[str, str]) -> LogPolicy:
    max_size = None
    if "max-size" in options:
        try:
            max_size = parse_size(options["max-size"])
        except ValueError as exc:
            raise _failed(str(exc)) from None
        if max_size <= 0:
            raise _failed("max-size must be a positive number")
    max_file = 1
    if "max-file" in options:
        try:
            max_file = _atoi(options["max-file"])
        except ValueError as exc:
            raise _failed(str(exc)) from None
        if max_file < 1:
            raise _failed("max-file cannot be less than 1")
    if "compress" in options:
        try:
            compress = _parse_bool(options["compress"])
        except ValueError as exc:
            raise _failed(str(exc)) from None
        if compress and (max_file == 1 or max_size is None):
            raise _failed("compress cannot be true when max-file is less than 2 or "
                          "max-size is not set")
    return LogPolicy(driver="json-file", max_size=max_size, max_file=max_file)


def _local_policy(options: dict[str, str]) -> LogPolicy:
    max_size, max_file, compress = LOCAL_MAX_SIZE, LOCAL_MAX_FILE, True
    if "max-size" in options:
        text = options["max-size"]
        try:
            max_size = parse_size(text)
        except ValueError as exc:
            raise _failed(f"invalid value for max-size: {text}: {exc}") from None
    if "max-file" in options:
        text = options["max-file"]
        try:
            max_file = _atoi(text)
        except ValueError as exc:
            raise _failed(f"invalid value for max-file: {text}: {exc}") from None
    if "compress" in options:
        try:
            compress = _parse_bool(options["compress"])
        except ValueError as exc:
            raise _failed(f"error reading compress log option: {exc}") from None
    if max_file < 0:
        raise _failed("max file count cannot be less than 0")
    if compress and max_file <= 1:
        raise _failed("compression cannot be enabled when max file count is 1")
    # dockerd's local driver treats a count of 0 as 1: only the live file stays.
    return LogPolicy(driver="local", max_size=max_size, max_file=max(max_file, 1))


def log_path_shown(log_config: dict[str, Any], path: str) -> str:
    """Inspect's LogPath: dockerd shows json-file's file only (local's format is private)."""
    return path if (log_config.get("Type") or DEFAULT_DRIVER) == "json-file" else ""
