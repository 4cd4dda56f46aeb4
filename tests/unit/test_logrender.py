"""What `docker logs` sends of a block of conmon's log lines."""

from servin.http.framing import deframe
from servin.http.logrender import LogRenderer
from servin.oci.logfile import parse_timestamp_ns
from servin.timefmt import rfc3339_nano

BOTH = frozenset({b"stdout", b"stderr"})


def block(*lines: tuple[int, str, str, str]) -> bytes:
    return "\n".join(f"2024-05-06T07:08:{second:02d}.5+02:00 {stream} {tag} {text}"
                     for second, stream, tag, text in lines).encode()


MIXED = block((1, "stdout", "F", "out"), (2, "stderr", "P", "par"), (3, "stderr", "F", "tial"),
              (4, "stdout", "F", ""))


def test_one_frame_per_line_with_its_stream():
    rendered = LogRenderer(BOTH, framed=True)(MIXED)
    frames, rest = deframe(rendered.data)
    assert frames == [(1, b"out\n"), (2, b"par"), (2, b"tial\n"), (1, b"\n")] and rest == b""
    assert not rendered.ended


def test_chosen_streams_only_and_raw_for_a_tty():
    assert LogRenderer(frozenset({b"stderr"}), framed=False)(MIXED).data == b"partial\n"
    assert LogRenderer(frozenset({b"stdout"}), framed=False)(MIXED).data == b"out\n\n"


def test_lines_not_in_the_format_are_skipped():
    data = b"garbage\n" + block((1, "stdout", "F", "kept")) + b"\nbad-time stdout F x"
    # The time is read only when it matters: then a line whose time does not parse goes too.
    assert LogRenderer(BOTH, framed=False)(data).data == b"kept\nx\n"
    assert LogRenderer(BOTH, framed=False, since_ns=1)(data).data == b"kept\n"


def test_timestamps_since_and_until():
    first = parse_timestamp_ns("2024-05-06T07:08:01.5+02:00")
    stamped = LogRenderer(BOTH, framed=False, timestamps=True)(MIXED).data
    assert stamped.startswith(rfc3339_nano(first).encode() + b" out\n")
    window = LogRenderer(BOTH, framed=False, since_ns=first + 10**9, until_ns=first + 2 * 10**9)
    rendered = window(MIXED)
    assert rendered.data == b"partial\n" and rendered.ended


def test_details_before_each_line_and_after_its_timestamp():
    prefix = LogRenderer.details_prefix({"team": "a b", "app": "web"})
    assert prefix == b"app=web,team=a+b "
    assert LogRenderer.details_prefix({}) == b" "
    one = block((1, "stdout", "F", "out"))
    assert LogRenderer(BOTH, framed=False, details=prefix)(one).data == b"app=web,team=a+b out\n"
    stamped = LogRenderer(BOTH, framed=False, timestamps=True, details=b" ")(one).data
    assert stamped == rfc3339_nano(parse_timestamp_ns("2024-05-06T07:08:01.5+02:00")).encode() \
        + b"  out\n"
