"""Reading runc's output: error messages and the state list."""

from __future__ import annotations

import pytest

from servin.oci.runc import parse_states, runc_error_text


def test_states_are_keyed_by_container_id():
    output = (b'[{"ociVersion":"1.0.2-dev","id":"aaa","pid":42,"status":"running",'
              b'"bundle":"/b/aaa","created":"2026-12-03T19:05:44.097113248Z","owner":"root"},'
              b'{"ociVersion":"1.0.2-dev","id":"bbb","pid":0,"status":"stopped",'
              b'"bundle":"/b/bbb","created":"2026-12-03T19:05:45Z","owner":"root"}]\n')
    states = parse_states(output)
    assert sorted(states) == ["aaa", "bbb"]
    assert (states["aaa"]["status"], states["aaa"]["pid"]) == ("running", 42)
    assert states["bbb"]["status"] == "stopped"


@pytest.mark.parametrize("output", [b"null\n", b"[]\n"])
def test_no_container_is_no_state(output):
    assert parse_states(output) == {}


def test_error_text_is_runcs_last_error():
    stderr = ('{"level":"warning","msg":"cgroup is gone"}\n'
              '{"level":"error","msg":"container \\"x\\" does not exist"}\n')
    assert runc_error_text(stderr) == 'container "x" does not exist'
    assert runc_error_text("plain failure\n") == "plain failure"
