from datetime import datetime, timezone

import pytest

from servin.containers.humanize import human_duration, parse_rfc3339


@pytest.mark.parametrize("seconds, text", [
    (0.2, "Less than a second"), (1, "1 second"), (42, "42 seconds"), (61, "About a minute"),
    (600, "10 minutes"), (3600, "About an hour"), (5 * 3600, "5 hours"),
    (3 * 86400, "3 days"), (20 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years")])
def test_human_duration_matches_go_units(seconds, text):
    assert human_duration(seconds) == text


def test_parse_rfc3339_nano():
    assert parse_rfc3339("2026-12-03T16:45:10.123456789Z") == datetime(
        2026, 12, 3, 16, 45, 10, 123456, tzinfo=timezone.utc)
    assert parse_rfc3339("0001-01-01T00:00:00Z").year == 1
