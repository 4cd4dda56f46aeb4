"""The daemon's logging set-up."""

from __future__ import annotations

import subprocess
import sys


def test_pyroute2s_debug_chatter_stays_out_of_a_debug_log():
    # A process of its own: configure_logging sets the process's logging for good.
    code = ("from servin.logsetup import configure_logging; configure_logging('debug'); "
            "from servin.net.links import _index, _iproute; "
            "ipr = _iproute(); print(_index(ipr, 'lo')); ipr.close(); "
            "import structlog; structlog.get_logger('servin.test').debug('ours')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "1"
    assert "event='ours'" in result.stderr
    assert "pyroute2" not in result.stderr and "enqueue" not in result.stderr
