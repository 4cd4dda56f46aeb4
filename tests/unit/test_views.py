"""Container views shaped as dockerd's."""

from __future__ import annotations

from servin.containers.views import command_text


def test_the_listed_command_quotes_arguments_with_spaces_as_dockerd():
    assert command_text("sh", ["-c", "echo hi; sleep 300"]) == "sh -c 'echo hi; sleep 300'"
    assert command_text("true", []) == "true"
    assert command_text("/bin/ls", ["-l", "/tmp"]) == "/bin/ls -l /tmp"
