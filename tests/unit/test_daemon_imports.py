"""What servind imports to start: a library only some requests need waits for them."""

from __future__ import annotations

import subprocess
import sys

# dnspython: only the embedded DNS servers of user-defined networks use it; pyroute2:
# the first netlink request loads it, in a worker thread.
DEFERRED = ("dns.message", "dns.asyncquery", "pyroute2")


def test_the_daemon_starts_without_dnspython_or_pyroute2():
    # A process of its own: this one may have imported any of them already.
    code = ("import sys, servin.daemon, servin.engine, servin.http.app; "
            f"print(sorted(m for m in sys.modules if m in {DEFERRED!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
