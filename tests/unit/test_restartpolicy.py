import pytest

from servin.containers.restartpolicy import (MAX_DELAY, RestartTracker, normalize_policy,
                                             restarts_at_daemon_start)
from servin.errors import InvalidArgument

ALWAYS = {"Name": "always", "MaximumRetryCount": 0}
UNLESS = {"Name": "unless-stopped", "MaximumRetryCount": 0}
ON_FAILURE_2 = {"Name": "on-failure", "MaximumRetryCount": 2}


def delay(tracker, policy, exit_code=1, stopped=False, ran_for=0.0, count=0):
    return tracker.next_delay(policy, exit_code=exit_code, manually_stopped=stopped,
                              ran_for=ran_for, restart_count=count)


def test_backoff_doubles_up_to_a_minute_and_resets_after_a_steady_run():
    tracker = RestartTracker()
    delays = [delay(tracker, ALWAYS) for _ in range(12)]
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert delays[-1] == MAX_DELAY
    assert delay(tracker, ALWAYS, ran_for=10) == 0.1


def test_on_failure_counts_and_ignores_success():
    tracker = RestartTracker()
    assert delay(tracker, ON_FAILURE_2, exit_code=0) is None
    assert delay(tracker, ON_FAILURE_2, count=1) is not None
    assert delay(tracker, ON_FAILURE_2, count=2) is None
    unlimited = {"Name": "on-failure", "MaximumRetryCount": 0}
    assert delay(tracker, unlimited, count=1000) is not None


def test_no_never_restarts_and_unless_stopped_respects_a_manual_stop():
    assert delay(RestartTracker(), {"Name": "no", "MaximumRetryCount": 0}) is None
    assert delay(RestartTracker(), UNLESS, stopped=True) is None
    assert delay(RestartTracker(), UNLESS, exit_code=0) is not None


def test_daemon_start_brings_back_always_even_after_a_manual_stop():
    assert restarts_at_daemon_start(ALWAYS, exit_code=0, manually_stopped=True, restart_count=0)
    assert not restarts_at_daemon_start(UNLESS, exit_code=0, manually_stopped=True,
                                        restart_count=0)


@pytest.mark.parametrize("raw, message", [
    ({"Name": "sometimes"}, "invalid restart policy 'sometimes'"),
    ({"Name": "always", "MaximumRetryCount": 3}, "only be used with 'on-failure'"),
    ({"Name": "on-failure", "MaximumRetryCount": -1}, "cannot be negative")])
def test_bad_policies_are_400(raw, message):
    with pytest.raises(InvalidArgument, match=message):
        normalize_policy(raw)


def test_normalized_defaults():
    assert normalize_policy(None) == {"Name": "no", "MaximumRetryCount": 0}
    assert normalize_policy({"Name": ""}) == {"Name": "no", "MaximumRetryCount": 0}
