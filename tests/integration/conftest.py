"""Fixtures for tests that run real containers with runc and conmon from busybox bundles."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from servin.oci.cgroups import remove_cgroup
from servin.oci.runc import OCIRuntimeError
from servin.oci.runtime import Runtime
from servin.oci.spec import SpecParams, build_spec, cgroups_path
from servin.oci.users import resolve_user
from tests.support.rootfs import make_busybox_rootfs


def processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(proc.name))
    return found


class RuntimeEnv:
    """Runtimes and bundles under one temp dir; everything is torn down afterwards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.token = uuid.uuid4().hex[:8]
        self.cgroup_parents: set[str] = set()
        self.created: list[tuple[Path, str]] = []  # (exec_root, container_id)

    def runtime(self, name: str = "exec") -> Runtime:
        return Runtime(self.root / name)

    def cgroup_parent(self, name: str = "a") -> str:
        parent = f"servin-test-{self.token}-{name}"
        self.cgroup_parents.add(parent)
        return parent

    def bundle(self, container_id: str, args: list[str], *, user: str = "", cgroup: str = "a",
               where: Path | None = None, **overrides) -> Path:
        bundle = (where or self.root / "bundles") / f"{container_id}-{uuid.uuid4().hex[:6]}"
        rootfs = make_busybox_rootfs(bundle / "rootfs")
        params = SpecParams(rootfs=rootfs, args=args, env=["PATH=/bin:/usr/bin"],
                            cgroups_path=cgroups_path(self.cgroup_parent(cgroup), container_id),
                            hostname=container_id[:12], user=resolve_user(rootfs, user), **overrides)
        (bundle / "config.json").write_text(json.dumps(build_spec(params)))
        return bundle

    async def create(self, runtime: Runtime, container_id: str, bundle: Path, **kwargs) -> int:
        self.created.append((runtime.exec_root, container_id))
        kwargs.setdefault("log_path", bundle / "container.log")
        kwargs.setdefault("terminal", False)
        kwargs.setdefault("stdin", False)
        return await runtime.create(container_id, bundle, **kwargs)

    async def cleanup(self) -> None:
        for exec_root, container_id in self.created:
            try:
                await Runtime(exec_root).delete(container_id, force=True)
            except OCIRuntimeError:
                pass
        for parent in self.cgroup_parents:
            remove_cgroup(parent)


@pytest.fixture
def env(tmp_path: Path):
    environment = RuntimeEnv(tmp_path)
    yield environment
    asyncio.run(environment.cleanup())
    assert processes_mentioning(str(tmp_path)) == [], "conmon or container processes left behind"
