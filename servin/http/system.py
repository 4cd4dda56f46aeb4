"""System API: ping, version and info."""

from __future__ import annotations

import asyncio
import ipaddress
import platform
import time
from typing import Any

from aiohttp import web

from servin import API_VERSION, MIN_API_VERSION, __version__, hostinfo
from servin.config import DaemonConfig, parse_host
from servin.containers.logconfig import LOG_FILE_DRIVERS
from servin.http.context import engine_of
from servin.http.responses import json_response
from servin.http.routing import Routes
from servin.oci.cgroups import host_cgroup_facts
from servin.timefmt import rfc3339_nano

routes = Routes()

# Servin builds with its classic builder; "1" tells clients so (dockerd with buildkit off).
PING_HEADERS = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache",
                "Builder-Version": "1"}
LOCAL_INSECURE_CIDR = "127.0.0.0/8"
INDEX_SERVER = "https://index.docker.io/v1/"
NETWORK_DRIVERS = ["bridge", "host", "null"]


@routes.get("/_ping")
async def ping(request: web.Request) -> web.Response:
    return web.Response(text="OK", headers=PING_HEADERS)


@routes.head("/_ping")
async def ping_head(request: web.Request) -> web.Response:
    # aiohttp leaves Content-Length out of bodiless HEAD answers unless told; dockerd sends 0.
    return web.Response(content_type="text/plain", charset="utf-8",
                        headers={**PING_HEADERS, "Content-Length": "0"})


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    revision = await hostinfo.source_revision()
    facts = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
             "GitCommit": revision.commit, "GoVersion": f"python{platform.python_version()}",
             "Os": "linux", "Arch": hostinfo.go_arch(), "KernelVersion": platform.release(),
             "BuildTime": revision.time}
    components: list[dict[str, Any]] = [
        {"Name": "Engine", "Version": __version__, "Details": {**facts, "Experimental": "false"}}]
    for name in ("runc", "conmon"):
        binary = await hostinfo.binary_version(name)
        if binary is not None:
            components.append({"Name": name, "Version": binary.version,
                               "Details": {"GitCommit": binary.commit}})
    return json_response({"Platform": {"Name": "Servin Engine"}, "Components": components,
                              "Version": __version__, **facts})


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    engine = engine_of(request)
    config = engine.config
    counts = engine.containers.state_counts()
    cgroups = host_cgroup_facts()
    sysctls = hostinfo.network_sysctls()
    release = hostinfo.os_release()
    runc = await hostinfo.binary_version("runc")
    init = await hostinfo.binary_version("catatonit")
    http_proxy, https_proxy, no_proxy = hostinfo.proxy_settings()
    body: dict[str, Any] = {
        "ID": hostinfo.engine_id(config.data_root),
        "Containers": sum(counts.values()),
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"],
        "Images": engine.images.count(),
        "Driver": "overlay2",
        "DriverStatus": [
            ["Backing Filesystem", hostinfo.backing_filesystem(config.data_root)],
            ["Supports d_type", _bool(hostinfo.supports_d_type(config.data_root))],
            ["Native Overlay Diff", _bool(hostinfo.native_overlay_diff())],
            ["userxattr", "false"],
        ],
        # As dockerd: the log drivers that keep a log ("none" is not listed).
        "Plugins": {"Volume": ["local"], "Network": NETWORK_DRIVERS, "Authorization": None,
                    "Log": sorted(LOG_FILE_DRIVERS)},
        "MemoryLimit": cgroups.memory,
        "SwapLimit": cgroups.swap,
        "KernelMemory": cgroups.kernel_memory,
        "KernelMemoryTCP": cgroups.kernel_memory_tcp,
        "CpuCfsPeriod": cgroups.cpu_cfs,
        "CpuCfsQuota": cgroups.cpu_cfs,
        "CPUShares": cgroups.cpu_shares,
        "CPUSet": cgroups.cpuset,
        "PidsLimit": cgroups.pids,
        "OomKillDisable": cgroups.oom_kill_disable,
        "IPv4Forwarding": sysctls.ipv4_forwarding,
        "BridgeNfIptables": sysctls.bridge_nf_iptables,
        "BridgeNfIp6tables": sysctls.bridge_nf_ip6tables,
        "Debug": config.debug,
        "NFd": hostinfo.open_fd_count(),
        "NGoroutines": len(asyncio.all_tasks()),
        "SystemTime": rfc3339_nano(time.time_ns()),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": hostinfo.cgroup_version(),
        "NEventsListener": engine.events.listener_count,
        "KernelVersion": platform.release(),
        "OperatingSystem": release.get("PRETTY_NAME", "Linux"),
        "OSVersion": release.get("VERSION_ID", ""),
        "OSType": "linux",
        "Architecture": platform.machine(),
        "IndexServerAddress": INDEX_SERVER,
        "RegistryConfig": _registry_config(config),
        "NCPU": hostinfo.cpu_count(),
        "MemTotal": hostinfo.mem_total(),
        "GenericResources": None,
        "DockerRootDir": str(config.data_root),
        "HttpProxy": http_proxy,
        "HttpsProxy": https_proxy,
        "NoProxy": no_proxy,
        "Name": hostinfo.hostname(),
        "Labels": config.labels,
        "ExperimentalBuild": False,
        "ServerVersion": __version__,
        "ClusterStore": "",
        "ClusterAdvertise": "",
        "Runtimes": {"runc": {"path": runc.path if runc else "runc"}},
        "DefaultRuntime": "runc",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": config.live_restore,
        "Isolation": "",
        "InitBinary": "catatonit" if init else "",
        "ContainerdCommit": {"ID": "", "Expected": ""},
        "RuncCommit": _commit(runc),
        "InitCommit": _commit(init),
        "SecurityOptions": _security_options(),
        "Warnings": hostinfo.feature_warnings(cgroups, sysctls) + _tcp_warnings(config),
    }
    if config.default_address_pools:
        body["DefaultAddressPools"] = [{"Base": pool["base"], "Size": pool["size"]}
                                       for pool in config.default_address_pools]
    return json_response(body)


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _commit(binary: hostinfo.BinaryVersion | None) -> dict[str, str]:
    # No build-time expectation exists for Servin's helpers: the found commit is the expected one.
    commit = (binary.commit or binary.version) if binary else ""
    return {"ID": commit, "Expected": commit}


def _security_options() -> list[str]:
    options = []
    if hostinfo.apparmor_enabled():
        options.append("name=apparmor")
    if hostinfo.seccomp_supported():
        options.append("name=seccomp,profile=default")
    if hostinfo.cgroup_version() == "2":
        options.append("name=cgroupns")
    return options


def _registry_config(config: DaemonConfig) -> dict[str, Any]:
    cidrs = [LOCAL_INSECURE_CIDR]
    index = {"docker.io": {"Name": "docker.io", "Mirrors": config.registry_mirrors,
                           "Secure": True, "Official": True}}
    for registry in config.insecure_registries:
        try:
            cidr = str(ipaddress.ip_network(registry, strict=False))
        except ValueError:
            index[registry] = {"Name": registry, "Mirrors": [], "Secure": False,
                               "Official": False}
            continue
        if cidr not in cidrs:
            cidrs.append(cidr)
    return {"AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": cidrs, "IndexConfigs": index,
            "Mirrors": config.registry_mirrors}


def _tcp_warnings(config: DaemonConfig) -> list[str]:
    return [f"WARNING: API is accessible on http://{host.address} without encryption.\n"
            f"         Access to the remote API is equivalent to root access on the host."
            for host in map(parse_host, config.hosts) if host.scheme == "tcp"]
