from servin.timefmt import ZERO_TIME, parse_rfc3339_ns, rfc3339_nano


def test_rfc3339_nano_trims_trailing_zeros():
    assert rfc3339_nano(1_500_000_000_123_456_789) == "2017-07-14T02:40:00.123456789Z"
    assert rfc3339_nano(1_500_000_000_120_000_000) == "2017-07-14T02:40:00.12Z"
    assert rfc3339_nano(1_500_000_000_000_000_000) == "2017-07-14T02:40:00Z"


def test_zero_is_gos_zero_time():
    assert rfc3339_nano(0) == ZERO_TIME == "0001-01-01T00:00:00Z"
    assert parse_rfc3339_ns(ZERO_TIME) == 0


def test_parse_round_trips_and_reads_offsets():
    assert parse_rfc3339_ns(rfc3339_nano(1_500_000_000_123_456_789)) == 1_500_000_000_123_456_789
    assert parse_rfc3339_ns("2017-07-14T04:40:00.5+02:00") == 1_500_000_000_500_000_000
    assert parse_rfc3339_ns("not a time") == 0
