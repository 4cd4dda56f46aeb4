"""The floor of the run rows: the docker CLI and runc alone, with no engine between them.

Every engine on runc (dockerd through containerd's shim, servind through conmon)
runs a container with ``runc create`` and ``runc start`` (``runc delete`` after
the exit can wait until the client has its answer), and every docker CLI process
starts up and talks to its engine. The floor does exactly that and nothing else:
one ``docker version`` against servind (the CLI's start-up and a round trip),
then runc on a bundle with the spec servind writes for the same image (its
seccomp profile, mounts, namespaces and cgroups), copied out of a running
container. No engine can take less: floor/dockerd is the least ratio any engine
could reach on the machine, and what lies between it and a target is all an
engine may spend of its own.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

from bench.engines import ServindEngine
from bench.images import SMALL_IMAGE
from bench.measure import docker
from servin.oci.cgroups import remove_cgroup

FLOOR_CGROUP = "servin-bench-floor"


class RuncFloor:
    """Takes part in a row's rounds beside the engines, under the name ``floor``."""

    name = "floor"

    def __init__(self, servind: ServindEngine, directory: Path) -> None:
        self.servind = servind
        self.directory = directory
        self.runc_root = directory / "runc"
        self.template = self._copy_servind_bundle()

    def env(self) -> dict[str, str]:
        """The CLI talks to servind: its round trip is part of the floor."""
        return self.servind.env()

    def _copy_servind_bundle(self) -> dict:
        """The spec of a servind container of SMALL_IMAGE without a network, pointing at
        copies of its rootfs and /etc files."""
        container_id = docker(self.servind, "run", "-d", "--network", "none", SMALL_IMAGE,
                              "sleep", "1000000").strip()
        try:
            spec = json.loads((self.servind.daemon.exec_root / "bundles" / container_id
                               / "config.json").read_text())
            rootfs = self.directory / "rootfs"
            shutil.copytree(spec["root"]["path"], rootfs, symlinks=True)
            spec["root"]["path"] = str(rootfs)
            roots = (str(self.servind.daemon.data_root), str(self.servind.daemon.exec_root))
            for mount in spec["mounts"]:
                if mount.get("type") == "bind" and mount["source"].startswith(roots):
                    copy = self.directory / "etc" / Path(mount["source"]).name
                    copy.parent.mkdir(exist_ok=True)
                    shutil.copyfile(mount["source"], copy)
                    mount["source"] = str(copy)
        finally:
            docker(self.servind, "rm", "-f", container_id)
        return spec

    def bundle(self, name: str, args: list[str]) -> Path:
        """A bundle running ``args``, in a cgroup of its own."""
        bundle = self.directory / "bundles" / name
        bundle.mkdir(parents=True, exist_ok=True)
        spec = copy.deepcopy(self.template)
        spec["process"]["args"] = args
        spec["linux"]["cgroupsPath"] = f"/{FLOOR_CGROUP}/{name}"
        (bundle / "config.json").write_text(json.dumps(spec))
        return bundle

    def _runc(self, action: str) -> str:
        return f"runc --root {self.runc_root} {action}"

    def run_commands(self) -> tuple[str, str]:
        """One `docker run --rm ... true`: create and start; and the command that deletes
        the container (hyperfine's --prepare: like servind, the floor deletes off the
        client's path)."""
        bundle = self.bundle("floor-run", ["true"])
        command = (f"docker version >/dev/null && "
                   f"{self._runc(f'create --bundle {bundle} floor-run')} </dev/null >/dev/null "
                   f"&& {self._runc('start floor-run')}")
        return command, f"{self._runc('delete --force floor-run')} 2>/dev/null; true"

    def detached_commands(self, count: int, parallel: int) -> tuple[str, str]:
        """``count`` detached containers, ``parallel`` at a time, and the command that
        deletes them (hyperfine's --prepare)."""
        for n in range(1, count + 1):
            self.bundle(f"floor-{n}", ["sleep", "1000000"])
        one = (f"docker version >/dev/null && {self._runc('create')} "
               f"--bundle {self.directory}/bundles/floor-{{}} floor-{{}} </dev/null >/dev/null "
               f"&& {self._runc('start floor-{}')}")
        command = f"seq {count} | xargs -P {parallel} -I {{}} sh -c '{one}'"
        prepare = (f"for n in $(seq {count}); do "
                   f"{self._runc('delete --force floor-$n')} 2>/dev/null; done; true")
        return command, prepare

    @staticmethod
    def remove(directory: Path) -> None:
        """Delete every container of a floor's runc root under ``directory``, their cgroups
        and the copies (also what a floor that failed half-way made)."""
        runc_root = directory / "runc"
        if runc_root.is_dir():
            for state in runc_root.iterdir():
                subprocess.run(["runc", "--root", str(runc_root), "delete", "--force",
                                state.name], capture_output=True, timeout=60)
        remove_cgroup("/" + FLOOR_CGROUP)
        shutil.rmtree(directory, ignore_errors=True)
