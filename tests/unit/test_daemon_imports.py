"""What servind imports to start: libraries only some requests need wait for them."""

from __future__ import annotations

import subprocess
import sys

# The HTTP client (pulls) with its TLS contexts, and dnspython (user networks' DNS).
DEFERRED = ("aiohttp.client", "aiohttp.connector", "dns.message", "dns.asyncquery")


def test_the_daemon_starts_without_the_libraries_of_pulls_and_dns():
    # A process of its own: this one may have imported any of them already.
    code = ("import sys, servin.daemon, servin.engine, servin.http.app; "
            f"print(sorted(m for m in sys.modules if m in {DEFERRED!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
