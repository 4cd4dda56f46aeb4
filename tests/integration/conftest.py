"""Fixtures for tests that run real containers with runc and conmon from busybox bundles."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from servin.oci.cgroups import remove_cgroup
from servin.oci.runc import OCIRuntimeError
from servin.oci.runtime import Runtime
from tests.support.rootfs import write_busybox_bundle


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
        return write_busybox_bundle(bundle, container_id, args, user=user,
                                    cgroup_parent=self.cgroup_parent(cgroup), **overrides)

    async def create(self, runtime: Runtime, container_id: str, bundle: Path, **kwargs) -> int:
        self.created.append((runtime.exec_root, container_id))
        kwargs.setdefault("log_path", bundle / "container.log")
        kwargs.setdefault("terminal", False)
        kwargs.setdefault("stdin", False)
        return await runtime.create(container_id, bundle, **kwargs)

    async def cleanup(self) -> None:
        for exec_root, container_id in self.created:
            if not exec_root.exists():
                continue  # removed by its test: runc would make its state root again
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
