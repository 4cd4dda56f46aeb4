"""Minimal root filesystems built from Debian's busybox-static, for test images and bundles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from servin.oci.spec import SpecParams, build_spec, cgroups_path
from servin.oci.users import resolve_user

BUSYBOX = Path("/bin/busybox")

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"


def busybox_applets() -> list[str]:
    out = subprocess.run([str(BUSYBOX), "--list"], check=True, capture_output=True, text=True)
    return [name for name in out.stdout.split() if name and name != "busybox"]


def make_busybox_rootfs(root: Path) -> Path:
    """Populate ``root`` with busybox, its applet links, /etc/passwd and /etc/group."""
    for sub in ("bin", "etc", "root", "tmp", "proc", "sys", "dev", "usr/bin", "var"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in busybox_applets():
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def write_busybox_bundle(bundle: Path, container_id: str, args: list[str], *,
                         cgroup_parent: str, user: str = "", **overrides: Any) -> Path:
    """An OCI bundle at ``bundle``: a busybox rootfs and the spec servind would write for
    ``args`` (``overrides``: more SpecParams), the container's cgroup below ``cgroup_parent``."""
    rootfs = make_busybox_rootfs(bundle / "rootfs")
    params = SpecParams(rootfs=rootfs, args=args, env=["PATH=/bin:/usr/bin"],
                        cgroups_path=cgroups_path(cgroup_parent, container_id),
                        hostname=container_id[:12], user=resolve_user(rootfs, user), **overrides)
    (bundle / "config.json").write_text(json.dumps(build_spec(params)))
    return bundle
