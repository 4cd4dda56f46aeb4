"""Turning a create request into a container's Config and HostConfig, as dockerd does.

Pure logic over Docker's JSON shapes: the image config is merged into the request's
Config (daemon/commit.go's merge), defaults are filled in as `docker inspect` shows
them, and what this engine cannot honour is refused with a 400 rather than ignored.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import signal
import stat
from typing import Any

import attrs

from servin.containers.logconfig import normalize_log_config
from servin.containers.restartpolicy import normalize_policy
from servin.errors import InvalidArgument
from servin.oci import capabilities
from servin.oci.cgroups import CgroupFacts, host_cgroup_facts, parse_cpuset
from servin.oci.seccomp import parse_profile
from servin.oci.spec import MASKED_PATHS, READONLY_PATHS

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHM_SIZE = 64 * 1024 * 1024

CONFIG_DEFAULTS: dict[str, Any] = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
    "AttachStdout": False, "AttachStderr": False, "Tty": False, "OpenStdin": False,
    "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}

HOST_CONFIG_DEFAULTS: dict[str, Any] = {
    "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file", "Config": {}},
    "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {"Name": "no",
    "MaximumRetryCount": 0}, "AutoRemove": False, "VolumeDriver": "", "VolumesFrom": None,
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "", "Dns": [], "DnsOptions": [],
    "DnsSearch": [], "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
    "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
    "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None, "UTSMode": "",
    "UsernsMode": "", "ShmSize": DEFAULT_SHM_SIZE, "Runtime": "runc", "ConsoleSize": [0, 0],
    "Isolation": "", "CpuShares": 0, "Memory": 0, "NanoCpus": 0, "CgroupParent": "",
    "BlkioWeight": 0, "BlkioWeightDevice": [], "BlkioDeviceReadBps": None,
    "BlkioDeviceWriteBps": None, "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None,
    "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
    "CpusetCpus": "", "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None,
    "DeviceRequests": None, "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0,
    "MemorySwap": 0, "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
    "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
    "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
}



def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def merge_image_config(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """dockerd's merge(userConf, imageConf): the request wins, the image fills gaps."""
    merged = copy.deepcopy(user)
    if not merged.get("User"):
        merged["User"] = image.get("User") or ""
    if image.get("ExposedPorts"):
        merged["ExposedPorts"] = {**image["ExposedPorts"], **(merged.get("ExposedPorts") or {})}
    user_env = list(merged.get("Env") or [])
    user_keys = {_env_key(e) for e in user_env}
    merged["Env"] = user_env + [e for e in image.get("Env") or [] if _env_key(e) not in user_keys]
    if image.get("Labels"):
        merged["Labels"] = {**image["Labels"], **(merged.get("Labels") or {})}
    if not merged.get("Entrypoint"):
        if not merged.get("Cmd"):
            merged["Cmd"] = image.get("Cmd")
        # An explicitly empty Entrypoint ([] or [""]) resets the image's.
        if merged.get("Entrypoint") is None:
            merged["Entrypoint"] = image.get("Entrypoint")
    if image.get("Healthcheck"):
        # Field by field: what the request leaves unset (empty, 0) comes from the image.
        mine = merged.get("Healthcheck") or {}
        merged["Healthcheck"] = {**image["Healthcheck"],
                                 **{key: value for key, value in mine.items() if value}}
    if not merged.get("WorkingDir"):
        merged["WorkingDir"] = image.get("WorkingDir") or ""
    if image.get("Volumes"):
        merged["Volumes"] = {**image["Volumes"], **(merged.get("Volumes") or {})}
    if not merged.get("StopSignal") and image.get("StopSignal"):
        merged["StopSignal"] = image["StopSignal"]
    if merged.get("OnBuild") is None and image.get("OnBuild") is not None:
        merged["OnBuild"] = image["OnBuild"]
    return merged


def command_of(config: dict[str, Any]) -> tuple[str, list[str]]:
    """The container's Path and Args: Entrypoint then Cmd, as dockerd's getEntrypointAndArgs."""
    entrypoint = [a for a in (config.get("Entrypoint") or [])]
    if entrypoint == [""]:
        entrypoint = []
    argv = entrypoint + list(config.get("Cmd") or [])
    if not argv:
        raise InvalidArgument("No command specified")
    return argv[0], argv[1:]


def _list_of_strings(value: Any, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):  # Docker accepts a string for Cmd/Entrypoint
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {field}: expected a list of strings")
    return value


MIN_HEALTHCHECK_DURATION_NS = 1_000_000  # dockerd's MinimumDuration, 1ms


def check_healthcheck(healthcheck: Any) -> None:
    """dockerd's checks of Config.Healthcheck at create."""
    if healthcheck is None:
        return
    if not isinstance(healthcheck, dict):
        raise InvalidArgument("invalid Healthcheck: expected an object")
    for field in ("Interval", "Timeout", "StartPeriod"):
        value = healthcheck.get(field) or 0
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidArgument(f"invalid Healthcheck.{field}: expected nanoseconds")
        if value and value < MIN_HEALTHCHECK_DURATION_NS:
            raise InvalidArgument(f"{field} in Healthcheck cannot be less than 1ms")
    retries = healthcheck.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    test = healthcheck.get("Test")
    if test is not None and (not isinstance(test, list)
                             or not all(isinstance(part, str) for part in test)):
        raise InvalidArgument("invalid Healthcheck.Test: expected a list of strings")


def normalize_config(body: dict[str, Any]) -> dict[str, Any]:
    """The request's Config part, typed and checked, with inspect's defaults."""
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    if not config.get("Image"):
        raise InvalidArgument("Config cannot be empty in order to create a container")
    for field in ("Cmd", "Entrypoint", "Env", "Shell"):
        if field in config:
            config[field] = _list_of_strings(config[field], field)
    for entry in config.get("Env") or []:
        if not _env_key(entry):
            raise InvalidArgument(f"invalid environment variable: {entry}")
    labels = config.get("Labels")
    if labels is not None and (not isinstance(labels, dict)
                               or not all(isinstance(v, str) for v in labels.values())):
        raise InvalidArgument("invalid Labels: expected an object of strings")
    for field in ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout",
                  "AttachStderr"):
        if not isinstance(config.get(field, False), bool):
            raise InvalidArgument(f"invalid {field}: expected a boolean")
    hostname = config.get("Hostname") or ""
    if len(hostname) > 255:
        raise InvalidArgument("invalid hostname: longer than 255 characters")
    if config.get("StopSignal"):
        parse_signal(config["StopSignal"])
    check_healthcheck(config.get("Healthcheck"))
    return {**CONFIG_DEFAULTS, **config}


def parse_signal(text: str | int) -> int:
    """A signal by number or by name, with or without the SIG prefix (Docker's ParseSignal)."""
    if isinstance(text, int) or str(text).isdigit():
        number = int(text)
        if number not in {s.value for s in signal.Signals}:
            raise InvalidArgument(f"Invalid signal: {text}")
        return number
    name = str(text).upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return signal.Signals[name].value
    except KeyError:
        raise InvalidArgument(f"Invalid signal: {text}") from None


def normalize_host_config(raw: dict[str, Any] | None, *, facts: CgroupFacts | None = None,
                          warnings: list[str] | None = None) -> dict[str, Any]:
    """The request's HostConfig, checked as dockerd checks it, with inspect's defaults.

    Limits the host cannot apply are dropped with a message added to ``warnings``
    (the create response's ``Warnings``), as dockerd does.
    """
    host_config = {**HOST_CONFIG_DEFAULTS, **{k: v for k, v in (raw or {}).items()
                                              if v is not None or k in HOST_CONFIG_DEFAULTS}}
    # Which networks exist is the networks manager's to say, at create.
    mode = host_config.get("NetworkMode") or "default"
    if not isinstance(mode, str) or mode == "container:":
        raise InvalidArgument(f"invalid network mode: {mode!r}")
    host_config["NetworkMode"] = mode
    if not host_config.get("ShmSize"):
        host_config["ShmSize"] = DEFAULT_SHM_SIZE
    elif not isinstance(host_config["ShmSize"], int) or host_config["ShmSize"] < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if not isinstance(host_config.get("AutoRemove"), bool):
        raise InvalidArgument("invalid AutoRemove: expected a boolean")
    host_config["RestartPolicy"] = normalize_policy(host_config.get("RestartPolicy"))
    host_config["LogConfig"] = normalize_log_config(host_config.get("LogConfig"))
    if host_config["AutoRemove"] and host_config["RestartPolicy"]["Name"] != "no":
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    facts = facts or host_cgroup_facts()
    warnings = [] if warnings is None else warnings
    check_resources(host_config, facts, warnings)
    check_namespace_modes(host_config, facts)
    check_security(host_config)
    check_devices(host_config)
    check_mounts_and_files(host_config)
    return host_config


# ------------------------------------------------------------------ resources

MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory
CPU_PERIOD = 100_000  # µs; the CFS period Docker uses for NanoCpus
RESOURCE_INTS = ("Memory", "MemorySwap", "MemoryReservation", "KernelMemory", "NanoCpus",
                 "CpuShares", "CpuPeriod", "CpuQuota", "BlkioWeight", "OomScoreAdj",
                 "CpuRealtimePeriod", "CpuRealtimeRuntime", "IOMaximumIOps",
                 "IOMaximumBandwidth", "CpuCount", "CpuPercent")


def _integer(host_config: dict[str, Any], field: str) -> int:
    value = host_config.get(field)
    if value is None:
        host_config[field] = 0
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"invalid {field}: expected an integer")
    return value


def _bool(host_config: dict[str, Any], field: str) -> bool:
    value = host_config.get(field)
    if value is None:
        host_config[field] = False
        return False
    if not isinstance(value, bool):
        raise InvalidArgument(f"invalid {field}: expected a boolean")
    return value


def check_resources(hc: dict[str, Any], facts: CgroupFacts, warnings: list[str]) -> None:
    """dockerd's verifyPlatformContainerResources and adaptContainerSettings, in its order."""
    for field in RESOURCE_INTS:
        _integer(hc, field)
    _check_memory(hc, facts, warnings)
    _check_cpu(hc, facts, warnings)
    _check_cpuset(hc, facts, warnings)
    pids = hc.get("PidsLimit")
    if pids is not None:
        if isinstance(pids, bool) or not isinstance(pids, int):
            raise InvalidArgument("invalid PidsLimit: expected an integer")
        # 0 and -1 both mean unlimited.
        hc["PidsLimit"] = pids if pids > 0 and facts.pids else None
    if hc["BlkioWeight"] > 0 and not facts.blkio_weight:
        warnings.append("Your kernel does not support Block I/O weight or the cgroup is not "
                        "mounted. Weight discarded.")
        hc["BlkioWeight"] = 0
    if hc["BlkioWeight"] > 0 and not 10 <= hc["BlkioWeight"] <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    if hc["IOMaximumBandwidth"] or hc["IOMaximumIOps"]:
        raise InvalidArgument("Invalid QoS settings: linux does not support Maximum IO "
                              "Bandwidth or Maximum IO IOps")
    for field in ("BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                  "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "DeviceRequests"):
        if hc.get(field):
            raise InvalidArgument(f"{field} is not supported by this engine")
    if not -1000 <= hc["OomScoreAdj"] <= 1000:
        raise InvalidArgument(f"Invalid value {hc['OomScoreAdj']}, range for oom score adj "
                              "is [-1000, 1000]")


def _check_memory(hc: dict[str, Any], facts: CgroupFacts, warnings: list[str]) -> None:
    memory, swap = hc["Memory"], hc["MemorySwap"]
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and not facts.memory:
        warnings.append("Your kernel does not support memory limit capabilities or the cgroup "
                        "is not mounted. Limitation discarded.")
        memory, swap = 0, -1
    if memory > 0 and swap != -1 and not facts.swap:
        warnings.append("Your kernel does not support swap limit capabilities or the cgroup is "
                        "not mounted. Memory limited without swap.")
        swap = -1
    if memory > 0 and 0 < swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if memory == 0 and swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    if swap < -1:
        raise InvalidArgument(f"invalid MemorySwap: {swap}")
    swappiness = hc.get("MemorySwappiness")
    if swappiness == -1:
        swappiness = None
    if swappiness is not None and not facts.swappiness:
        warnings.append("Your kernel does not support memory swappiness capabilities or the "
                        "cgroup is not mounted. Memory swappiness discarded.")
        swappiness = None
    if swappiness is not None and (not isinstance(swappiness, int) or not 0 <= swappiness <= 100):
        raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range "
                              "is 0-100")
    reservation = hc["MemoryReservation"]
    if reservation > 0 and not facts.memory_reservation:
        warnings.append("Your kernel does not support memory soft limit capabilities or the "
                        "cgroup is not mounted. Limitation discarded.")
        reservation = 0
    if reservation != 0 and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    if hc["KernelMemory"] > 0:
        # Deprecated by the kernel since 5.4 and ignored by runc 1.1, as on dockerd's hosts.
        warnings.append("Your kernel does not support kernel memory limit capabilities or the "
                        "cgroup is not mounted. Limitation discarded.")
        hc["KernelMemory"] = 0
    oom_kill_disable = _bool(hc, "OomKillDisable")
    if oom_kill_disable and not facts.oom_kill_disable:
        warnings.append("Your kernel does not support OomKillDisable. OomKillDisable discarded.")
        oom_kill_disable = False
    if oom_kill_disable and memory == 0:
        warnings.append("OOM killer is disabled for the container, but no memory limit is set, "
                        "this can result in the system running out of resources.")
    if memory > 0 and swap == 0:
        swap = 2 * memory  # Docker's default: as much swap as memory
    hc.update(Memory=memory, MemorySwap=swap, MemorySwappiness=swappiness,
              MemoryReservation=reservation, OomKillDisable=oom_kill_disable)


def _check_cpu(hc: dict[str, Any], facts: CgroupFacts, warnings: list[str]) -> None:
    nano, period, quota = hc["NanoCpus"], hc["CpuPeriod"], hc["CpuQuota"]
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano > 0 and not facts.cpu_cfs:
        raise InvalidArgument("NanoCPUs can not be set, as your kernel does not support CPU CFS "
                              "scheduler or the cgroup is not mounted")
    cpus = facts.num_cpus or os.cpu_count() or 1
    if nano < 0 or nano > cpus * 10**9:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {cpus}.00, as there are only "
                              f"{cpus} CPUs available")
    if hc["CpuShares"] < 0:
        raise InvalidArgument(f"invalid CpuShares: {hc['CpuShares']} (must not be negative)")
    if hc["CpuShares"] > 0 and not facts.cpu_shares:
        warnings.append("Your kernel does not support CPU shares or the cgroup is not mounted. "
                        "Shares discarded.")
        hc["CpuShares"] = 0
    if (period or quota) and not facts.cpu_cfs:
        warnings.append("Your kernel does not support CPU CFS scheduler. CPU period/quota "
                        "discarded.")
        hc["CpuPeriod"] = hc["CpuQuota"] = 0
        return
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if 0 < quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if quota < -1:
        raise InvalidArgument(f"invalid CpuQuota: {quota}")
    if hc["CpuRealtimePeriod"] or hc["CpuRealtimeRuntime"]:
        raise InvalidArgument("Your kernel does not support CPU real-time scheduler")
    if hc["CpuPercent"] > 0:
        warnings.append("linux does not support CPU percent. Percent discarded.")
        hc["CpuPercent"] = 0


def _check_cpuset(hc: dict[str, Any], facts: CgroupFacts, warnings: list[str]) -> None:
    for field in ("CpusetCpus", "CpusetMems"):
        if hc.get(field) is None:
            hc[field] = ""
        elif not isinstance(hc[field], str):
            raise InvalidArgument(f"invalid {field}: expected a string")
    if (hc["CpusetCpus"] or hc["CpusetMems"]) and not facts.cpuset:
        warnings.append("Your kernel does not support cpuset or the cgroup is not mounted. "
                        "Cpuset discarded.")
        hc["CpusetCpus"] = hc["CpusetMems"] = ""
    for field, label, what, available in (
            ("CpusetCpus", "cpus", "CPUs", facts.cpus),
            ("CpusetMems", "mems", "memory nodes", facts.mems)):
        requested = hc[field]
        if not requested:
            continue
        try:
            wanted = parse_cpuset(requested)
        except ValueError as e:
            raise InvalidArgument(f"Invalid value {requested} for cpuset {label}: {e}") from None
        if not wanted <= parse_cpuset(available):
            raise InvalidArgument(f"Requested {what} are not available - requested "
                                  f"{requested}, available: {available}")


def nano_cpus_quota(nano_cpus: int) -> tuple[int, int]:
    """NanoCpus as a CFS (quota, period) pair, as dockerd's spec does."""
    return nano_cpus * CPU_PERIOD // 10**9, CPU_PERIOD


# ----------------------------------------------------------- namespace modes

def _mode(hc: dict[str, Any], field: str) -> str:
    value = hc.get(field) or ""
    if not isinstance(value, str):
        raise InvalidArgument(f"invalid {field}: expected a string")
    return value


def shared_container(mode: str) -> str | None:
    """The container named by a ``container:<name|id>`` mode, else None."""
    kind, _, ref = mode.partition(":")
    return ref if kind == "container" else None


def check_namespace_modes(hc: dict[str, Any], facts: CgroupFacts) -> None:
    ipc = _mode(hc, "IpcMode") or "private"
    if ipc not in ("private", "shareable", "host", "none") and not shared_container(ipc):
        raise InvalidArgument(f"invalid IPC mode: {ipc}")
    pid = _mode(hc, "PidMode")
    if pid not in ("", "host") and not shared_container(pid):
        raise InvalidArgument(f"invalid PID mode: {pid}")
    uts = _mode(hc, "UTSMode")
    if uts not in ("", "host"):
        raise InvalidArgument(f"invalid UTS mode: {uts}")
    cgroupns = _mode(hc, "CgroupnsMode") or ("private" if facts.version == 2 else "host")
    if cgroupns not in ("host", "private"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {cgroupns}")
    userns = _mode(hc, "UsernsMode")
    if userns not in ("", "host"):
        raise InvalidArgument(f"invalid USER mode: {userns}")
    parent = _mode(hc, "CgroupParent")
    if ".." in parent.split("/"):
        raise InvalidArgument(f"invalid cgroup parent: {parent}")
    hc.update(IpcMode=ipc, PidMode=pid, UTSMode=uts, CgroupnsMode=cgroupns,
              CgroupParent=parent)


# ------------------------------------------------------------------ security

@attrs.frozen
class SecurityOptions:
    """HostConfig.SecurityOpt, parsed as dockerd's parseSecurityOpt."""

    no_new_privileges: bool = False
    seccomp: str = ""        # "": Docker's default profile; "unconfined"; or a JSON profile
    apparmor: str = ""
    labels: tuple[str, ...] = ()


_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_security_opts(options: list[str] | None) -> SecurityOptions:
    no_new_privileges, seccomp, apparmor, labels = False, "", "", []
    for option in options or []:
        if not isinstance(option, str):
            raise InvalidArgument(f"invalid --security-opt 1: {option!r}")
        if option == "no-new-privileges":
            no_new_privileges = True
            continue
        if option == "disable":
            labels.append("disable")
            continue
        separator = "=" if "=" in option else ":" if ":" in option else None
        if separator is None:
            raise InvalidArgument(f'invalid --security-opt 1: "{option}"')
        key, value = option.split(separator, 1)
        if key == "label":
            labels.append(value)
        elif key == "apparmor":
            apparmor = value
        elif key == "seccomp":
            seccomp = value
        elif key == "no-new-privileges" and value in _TRUE + _FALSE:
            no_new_privileges = value in _TRUE
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{option}"')
    return SecurityOptions(no_new_privileges, seccomp, apparmor, tuple(labels))


def check_security(hc: dict[str, Any]) -> None:
    _bool(hc, "Privileged")
    _bool(hc, "ReadonlyRootfs")
    if hc.get("Init") is not None and not isinstance(hc["Init"], bool):
        raise InvalidArgument("invalid Init: expected a boolean")
    for field in ("CapAdd", "CapDrop"):
        names = hc.get(field)
        if names is not None and (not isinstance(names, list)
                                  or not all(isinstance(n, str) for n in names)):
            raise InvalidArgument(f"invalid {field}: expected a list of strings")
        capabilities.normalize(names or [])
    security = parse_security_opts(hc.get("SecurityOpt"))
    if security.seccomp not in ("", "unconfined", "builtin"):
        parse_profile(security.seccomp)
    for group in hc.get("GroupAdd") or []:
        if not isinstance(group, str) or not group:
            raise InvalidArgument(f"invalid GroupAdd entry: {group!r}")
    hc["Ulimits"] = check_ulimits(hc.get("Ulimits"))
    check_system_paths(hc)


def check_system_paths(hc: dict[str, Any]) -> None:
    """MaskedPaths and ReadonlyPaths: the defaults unless given (``[]`` is how the CLI's
    ``--security-opt systempaths=unconfined`` asks for none), none when privileged,
    as dockerd sets them at create."""
    for field, default in (("MaskedPaths", MASKED_PATHS), ("ReadonlyPaths", READONLY_PATHS)):
        paths = hc.get(field)
        if paths is None:
            hc[field] = None if hc["Privileged"] else list(default)
        elif not isinstance(paths, list) or not all(
                isinstance(path, str) and path.startswith("/") for path in paths):
            raise InvalidArgument(f"invalid {field}: expected a list of absolute paths")


# go-units' names of ulimits -> the kernel's resources.
ULIMIT_NAMES = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
                "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def check_ulimits(ulimits: Any) -> list[dict[str, Any]] | None:
    if ulimits is None:
        return None
    if not isinstance(ulimits, list):
        raise InvalidArgument("invalid Ulimits: expected a list")
    seen: dict[str, dict[str, Any]] = {}
    for entry in ulimits:
        if not isinstance(entry, dict):
            raise InvalidArgument("invalid Ulimits: expected a list of objects")
        name, soft, hard = entry.get("Name"), entry.get("Soft"), entry.get("Hard")
        if name not in ULIMIT_NAMES:
            raise InvalidArgument(f"invalid ulimit type: {name}")
        for value in (soft, hard):
            if isinstance(value, bool) or not isinstance(value, int) or value < -1:
                raise InvalidArgument(f"invalid ulimit value for {name}: {value}")
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard "
                                  f"limit: {soft} > {hard}")
        seen[name] = {"Name": name, "Soft": soft, "Hard": hard}
    return list(seen.values())


# ------------------------------------------------------------------- devices

_DEVICE_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_PERMISSIONS = re.compile(r"^[rwm]{1,3}$")


def check_devices(hc: dict[str, Any]) -> None:
    devices = []
    for device in hc.get("Devices") or []:
        if not isinstance(device, dict):
            raise InvalidArgument("invalid Devices: expected a list of objects")
        host_path = device.get("PathOnHost") or ""
        container_path = device.get("PathInContainer") or host_path
        permissions = device.get("CgroupPermissions") or "rwm"
        if not host_path.startswith("/"):
            raise InvalidArgument(f"bad format for path: {host_path}")
        if not container_path.startswith("/"):
            raise InvalidArgument(f"bad format for path: {container_path}")
        if not _PERMISSIONS.match(permissions) or len(set(permissions)) != len(permissions):
            raise InvalidArgument(f"bad mode specified: {permissions}")
        try:
            mode = os.stat(host_path).st_mode
        except OSError as e:
            raise InvalidArgument(f'error gathering device information while adding custom '
                                  f'device "{host_path}": {e.strerror.lower()}') from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISDIR(mode)):
            raise InvalidArgument(f'error gathering device information while adding custom '
                                  f'device "{host_path}": not a device node')
        devices.append({"PathOnHost": host_path, "PathInContainer": container_path,
                        "CgroupPermissions": permissions})
    hc["Devices"] = devices
    for rule in hc.get("DeviceCgroupRules") or []:
        if not isinstance(rule, str) or not _DEVICE_RULE.match(rule):
            raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'")


def parse_device_rule(rule: str) -> tuple[str, int | None, int | None, str]:
    """``c 1:3 mr`` -> ("c", 1, 3, "mr"); ``*`` is any (None). The rule is valid already."""
    match = _DEVICE_RULE.match(rule)
    assert match is not None
    kind, major, minor, access = match.groups()
    return (kind, None if major == "*" else int(major), None if minor == "*" else int(minor),
            access)


# ----------------------------------------------------- mounts, sysctls, files

# Docker's --sysctl allow-list: sysctls of the IPC and network namespaces.
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
               "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")

TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async",
               "dirsync", "atime", "noatime", "diratime", "nodiratime", "relatime",
               "norelatime", "strictatime", "nostrictatime", "mand", "nomand",
               "private", "rprivate", "shared", "rshared", "slave", "rslave"}
TMPFS_DATA = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"}


def check_sysctls(sysctls: Any, *, host_network: bool, host_ipc: bool) -> dict[str, str]:
    if sysctls is None:
        return {}
    if not isinstance(sysctls, dict) or not all(isinstance(v, str) for v in sysctls.values()):
        raise InvalidArgument("invalid Sysctls: expected an object of strings")
    for name in sysctls:
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if host_ipc:
                raise InvalidArgument(f'sysctl "{name}" not allowed in host IPC namespace')
        elif name.startswith("net."):
            if host_network:
                raise InvalidArgument(f'sysctl "{name}" not allowed in host network namespace')
        else:
            raise InvalidArgument(f'sysctl "{name}" is not in a separate kernel namespace')
    return sysctls


def check_tmpfs(tmpfs: Any) -> dict[str, str]:
    if tmpfs is None:
        return {}
    if not isinstance(tmpfs, dict) or not all(isinstance(v, str) for v in tmpfs.values()):
        raise InvalidArgument("invalid Tmpfs: expected an object of strings")
    for destination, options in tmpfs.items():
        if not destination:
            raise InvalidArgument('invalid mount config for type "tmpfs": destination can\'t be '
                                  "empty")
        if not destination.startswith("/"):
            raise InvalidArgument(f"invalid mount path: '{destination}' mount path must be "
                                  "absolute")
        if destination.rstrip("/") == "":
            raise InvalidArgument('invalid mount config for type "tmpfs": destination can\'t be '
                                  "'/'")
        for option in filter(None, options.split(",")):
            key = option.split("=", 1)[0]
            if not (option in TMPFS_FLAGS or ("=" in option and key in TMPFS_DATA)):
                raise InvalidArgument(f"Invalid tmpfs option {option!r}")
    return tmpfs


def tmpfs_options(options: str) -> list[str]:
    """Docker's tmpfs defaults (noexec, nosuid, nodev) unless the options say otherwise."""
    given = [o for o in options.split(",") if o]
    defaults = [d for d in ("noexec", "nosuid", "nodev")
                if d[2:] not in given and d not in given]
    return defaults + given


def parse_extra_host(entry: str) -> tuple[str, str]:
    """``name:address`` -> (name, address); the address may be IPv6 (with colons)."""
    name, _, address = entry.partition(":")
    try:
        ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        raise InvalidArgument(f'invalid IP address in add-host: "{address}"') from None
    if not name:
        raise InvalidArgument(f"bad format for add-host: {entry!r}")
    return name, address.strip("[]")


def check_mounts_and_files(hc: dict[str, Any]) -> None:
    hc["Sysctls"] = check_sysctls(hc.get("Sysctls"), host_network=hc["NetworkMode"] == "host",
                                  host_ipc=hc["IpcMode"] == "host") or None
    hc["Tmpfs"] = check_tmpfs(hc.get("Tmpfs")) or None
    for entry in hc.get("ExtraHosts") or []:
        if not isinstance(entry, str):
            raise InvalidArgument("invalid ExtraHosts: expected a list of strings")
        parse_extra_host(entry)
    for field in ("Dns", "DnsSearch", "DnsOptions"):
        values = hc.get(field) or []
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(f"invalid {field}: expected a list of strings")
        hc[field] = values
    for server in hc["Dns"]:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"{server} is not an ip address") from None
