"""Turning a create request into a container's Config and HostConfig, as dockerd does.

Pure logic over Docker's JSON shapes: the image config is merged into the request's
Config (daemon/commit.go's merge), defaults are filled in as `docker inspect` shows
them, and what this engine cannot honour is refused with a 400 rather than ignored.
"""

from __future__ import annotations

import copy
from typing import Any

from servin.errors import InvalidArgument, NotFound

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
    "CapAdd": None, "CapDrop": None, "CgroupnsMode": "host", "Dns": [], "DnsOptions": [],
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

# Network modes this engine serves today; user-defined networks come with bridge networking.
NETWORK_MODES = ("default", "bridge", "none", "host")


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
    if image.get("Healthcheck") and not merged.get("Healthcheck"):
        merged["Healthcheck"] = image["Healthcheck"]
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
    return {**CONFIG_DEFAULTS, **config}


def normalize_host_config(raw: dict[str, Any] | None) -> dict[str, Any]:
    host_config = {**HOST_CONFIG_DEFAULTS, **{k: v for k, v in (raw or {}).items()
                                              if v is not None or k in HOST_CONFIG_DEFAULTS}}
    mode = host_config.get("NetworkMode") or "default"
    if mode not in NETWORK_MODES:
        if mode.startswith("container:"):
            raise InvalidArgument(f"network mode {mode}: sharing another container's network "
                                  "namespace is not supported by this engine yet")
        raise NotFound(f"network {mode} not found")
    host_config["NetworkMode"] = mode
    if not host_config.get("ShmSize"):
        host_config["ShmSize"] = DEFAULT_SHM_SIZE
    elif not isinstance(host_config["ShmSize"], int) or host_config["ShmSize"] < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    if not isinstance(host_config.get("AutoRemove"), bool):
        raise InvalidArgument("invalid AutoRemove: expected a boolean")
    policy = host_config.get("RestartPolicy") or {}
    if host_config["AutoRemove"] and policy.get("Name") not in (None, "", "no"):
        raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
    host_config["RestartPolicy"] = {"Name": policy.get("Name") or "no",
                                    "MaximumRetryCount": policy.get("MaximumRetryCount") or 0}
    return host_config
