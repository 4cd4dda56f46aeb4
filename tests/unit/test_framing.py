from servin.http.framing import deframe, frame


def test_frame_header_is_stream_then_big_endian_size():
    assert frame("stdout", b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert frame("stderr", b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    assert frame("system", b"x")[0] == 3


def test_deframe_round_trips_and_keeps_partial_rest():
    data = frame("stdout", b"a" * 300) + frame("stderr", b"err")
    frames, rest = deframe(data + frame("stdout", b"partial")[:5])
    assert frames == [(1, b"a" * 300), (2, b"err")]
    assert rest == frame("stdout", b"partial")[:5]
