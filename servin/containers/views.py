"""Docker's JSON shapes of a container: the list summary and the full inspect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs

from servin.containers.humanize import human_duration, seconds_since
from servin.containers.logconfig import log_path_shown
from servin.containers.record import Container, Health
from servin.timefmt import rfc3339_nano


@attrs.frozen
class ContainerFiles:
    """Where a container's files live on the host, as inspect reports them."""

    hostname: str
    hosts: str
    resolv_conf: str
    log: str
    shm: str  # the host tmpfs behind /dev/shm of a shareable-IPC container

    def etc_mounts(self) -> dict[str, Path]:
        """The files a running container sees at /etc, bind-mounted from these."""
        return {"/etc/hostname": Path(self.hostname), "/etc/hosts": Path(self.hosts),
                "/etc/resolv.conf": Path(self.resolv_conf)}


def status_text(container: Container) -> str:
    """The list's Status column: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created"."""
    state = container.state
    if state.status in ("running", "paused"):
        text = f"Up {human_duration(seconds_since(state.started_ns))}"
        if state.status == "paused":
            return text + " (Paused)"
        if state.health is not None:
            status = state.health.status
            return text + (" (health: starting)" if status == "starting" else f" ({status})")
        return text
    if state.status == "restarting":
        return f"Restarting ({state.exit_code}) {human_duration(seconds_since(state.finished_ns))} ago"
    if state.status == "removing":
        return "Removal In Progress"
    if state.status == "dead":
        return "Dead"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {human_duration(seconds_since(state.finished_ns))} ago"
    return "Created"


def port_list(ports: dict[str, Any]) -> list[dict[str, Any]]:
    """NetworkSettings.Ports as the list shows them: one entry per binding, or per
    exposed port without one."""
    out: list[dict[str, Any]] = []
    for key, bindings in sorted(ports.items()):
        number, _, proto = key.partition("/")
        if not bindings:
            out.append({"PrivatePort": int(number), "Type": proto or "tcp"})
        for binding in bindings or []:
            out.append({"IP": binding.get("HostIp") or "0.0.0.0", "PrivatePort": int(number),
                        "PublicPort": int(binding["HostPort"]), "Type": proto or "tcp"})
    return out


def command_text(path: str, args: list[str]) -> str:
    """The list's Command, as dockerd writes it: arguments with a space in single quotes."""
    return " ".join([path, *(f"'{arg}'" if " " in arg else arg for arg in args)])


def summary(container: Container, image_name: str,
            network_settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "Id": container.id,
        "Names": ["/" + container.name],
        "Image": image_name,
        "ImageID": container.image_id,
        "Command": command_text(container.path, container.args),
        "Created": container.created_ns // 1_000_000_000,
        "Ports": port_list(network_settings.get("Ports") or {}),
        "Labels": container.config.get("Labels") or {},
        "State": container.state.status,
        "Status": status_text(container),
        "HostConfig": {"NetworkMode": container.host_config["NetworkMode"]},
        "NetworkSettings": {"Networks": network_settings["Networks"]},
        "Mounts": [m.wire() for m in container.mounts],
    }


def health(state: Health) -> dict[str, Any]:
    return {"Status": state.status, "FailingStreak": state.failing_streak,
            "Log": [{"Start": rfc3339_nano(r.start_ns), "End": rfc3339_nano(r.end_ns),
                     "ExitCode": r.exit_code, "Output": r.output} for r in state.log]}


def inspect(container: Container, *, files: ContainerFiles, graph_driver: dict[str, str],
            network_settings: dict[str, Any], exec_ids: list[str]) -> dict[str, Any]:
    state = container.state
    return {
        "Id": container.id,
        "Created": rfc3339_nano(container.created_ns),
        "Path": container.path,
        "Args": container.args,
        "State": {
            "Status": state.status,
            "Running": state.status in ("running", "paused"),
            "Paused": state.status == "paused",
            "Restarting": state.status == "restarting",
            "OOMKilled": state.oom_killed,
            "Dead": state.dead,
            "Pid": state.pid,
            "ExitCode": state.exit_code,
            "Error": state.error,
            "StartedAt": rfc3339_nano(state.started_ns),
            "FinishedAt": rfc3339_nano(state.finished_ns),
            **({"Health": health(state.health)} if state.health is not None else {}),
        },
        "Image": container.image_id,
        "ResolvConfPath": files.resolv_conf,
        "HostnamePath": files.hostname,
        "HostsPath": files.hosts,
        "LogPath": log_path_shown(container.host_config["LogConfig"], files.log),
        "Name": "/" + container.name,
        "RestartCount": container.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": exec_ids or None,
        "HostConfig": container.host_config,
        "GraphDriver": {"Name": "overlay2", "Data": graph_driver},
        "Mounts": [m.wire() for m in container.mounts],
        "Config": container.config,
        "NetworkSettings": network_settings,
    }
