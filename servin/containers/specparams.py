"""A container's record turned into the parameters of its OCI runtime spec."""

from __future__ import annotations

from pathlib import Path

from servin.containers.createconfig import DEFAULT_PATH
from servin.containers.record import Container
from servin.containers.views import ContainerFiles
from servin.oci.cgroups import is_cgroup_v2
from servin.oci.spec import NamespaceMode, SpecParams, cgroups_path
from servin.oci.users import ResolvedUser

CGROUP_PARENT = "servin"


def spec_params(container: Container, rootfs: Path, user: ResolvedUser,
                files: ContainerFiles) -> SpecParams:
    config, host_config = container.config, container.host_config
    network = (NamespaceMode.host() if host_config["NetworkMode"] == "host"
               else NamespaceMode.private())
    return SpecParams(
        rootfs=rootfs,
        args=[container.path, *container.args],
        cgroups_path=cgroups_path(CGROUP_PARENT, container.id),
        env=environment(container),
        cwd=config.get("WorkingDir") or "/",
        user=user,
        terminal=container.tty,
        hostname=config.get("Hostname") or "",
        domainname=config.get("Domainname") or "",
        network=network,
        uts=NamespaceMode.host() if network.is_host else NamespaceMode.private(),
        cgroupns=is_cgroup_v2(),
        etc_files={"/etc/hostname": Path(files.hostname), "/etc/hosts": Path(files.hosts),
                   "/etc/resolv.conf": Path(files.resolv_conf)},
        shm_size=host_config["ShmSize"],
        annotations={"io.servin.container.name": container.name},
    )


def environment(container: Container) -> list[str]:
    """Docker adds PATH when the image has none, HOSTNAME always, and TERM with a TTY."""
    env = container.config.get("Env") or []
    keys = {entry.split("=", 1)[0] for entry in env}
    extra = []
    if "PATH" not in keys:
        extra.append(DEFAULT_PATH)
    if "HOSTNAME" not in keys:
        extra.append(f"HOSTNAME={container.config.get('Hostname') or ''}")
    if container.tty and "TERM" not in keys:
        extra.append("TERM=xterm")
    return [*extra, *env]
