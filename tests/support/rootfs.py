"""Minimal root filesystems built from Debian's busybox-static, for test images and bundles."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

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
