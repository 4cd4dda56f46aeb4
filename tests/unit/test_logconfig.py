import pytest

from servin.containers.logconfig import (LOCAL_MAX_FILE, LOCAL_MAX_SIZE, LogPolicy,
                                         log_attributes, log_path_shown, log_policy,
                                         normalize_log_config, parse_size)
from servin.errors import InvalidArgument


def refused(raw) -> str:
    with pytest.raises(InvalidArgument) as info:
        normalize_log_config(raw)
    return info.value.message


def test_sizes_as_go_units_reads_them():
    assert parse_size("10") == 10
    assert parse_size("1k") == 1000
    assert parse_size("10m") == 10_000_000
    assert parse_size("1.5MB") == 1_500_000
    assert parse_size("2 GiB") == 2_000_000_000  # FromHumanSize: decimal whatever the i
    assert parse_size("1k", base=1024) == 1024
    with pytest.raises(ValueError, match=r"^invalid size: 'abc'$"):
        parse_size("abc")
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("-1")
    with pytest.raises(ValueError, match="invalid size"):
        parse_size("10m\n")
    with pytest.raises(ValueError, match=r'^strconv.ParseFloat: parsing "1.2.3": invalid syntax$'):
        parse_size("1.2.3")


def test_default_is_json_file_without_rotation():
    assert normalize_log_config(None) == {"Type": "json-file", "Config": {}}
    assert normalize_log_config({"Type": "", "Config": None}) == {"Type": "json-file", "Config": {}}
    policy = log_policy(normalize_log_config({}))
    assert policy == LogPolicy(driver="json-file", max_size=None, max_file=1)
    assert policy.keeps_log and not policy.rotates


def test_json_file_rotation_options():
    config = normalize_log_config({"Type": "json-file",
                                   "Config": {"max-size": "10m", "max-file": "3",
                                              "compress": "false", "tag": "x"}})
    assert config == {"Type": "json-file", "Config": {"max-size": "10m", "max-file": "3",
                                                      "compress": "false", "tag": "x"}}
    assert log_policy(config) == LogPolicy(driver="json-file", max_size=10_000_000, max_file=3)
    assert log_policy(config).rotates
    # dockerd takes max-file without max-size: nothing rotates.
    assert not log_policy(normalize_log_config({"Config": {"max-file": "3"}})).rotates


def test_local_defaults():
    policy = log_policy(normalize_log_config({"Type": "local"}))
    assert policy == LogPolicy(driver="local", max_size=LOCAL_MAX_SIZE, max_file=LOCAL_MAX_FILE)
    assert LOCAL_MAX_SIZE == 20 * 1024 * 1024
    small = log_policy(normalize_log_config({"Type": "local",
                                             "Config": {"max-size": "1k", "max-file": "2"}}))
    assert (small.max_size, small.max_file) == (1000, 2)
    # A count of 0 keeps the live file only, when compression is off.
    assert log_policy(normalize_log_config(
        {"Type": "local", "Config": {"max-file": "0", "compress": "false"}})).max_file == 1


def test_none_keeps_nothing_and_takes_any_option():
    config = normalize_log_config({"Type": "none", "Config": {"whatever": "x"}})
    policy = log_policy(config)
    assert not policy.keeps_log and not policy.rotates


def test_unknown_driver_and_options():
    assert refused({"Type": "foo"}) == "logger: no log driver named 'foo' is registered"
    assert refused({"Type": "syslog"}) == "logger: no log driver named 'syslog' is registered"
    assert (refused({"Type": "json-file", "Config": {"bar": "1"}})
            == "unknown log opt 'bar' for json-file log driver")
    assert refused({"Type": "local", "Config": {"tag": "1"}}) == "unknown log opt 'tag' for log driver local"
    assert refused({"Config": {"mode": "fast"}}) == "logger: logging mode not supported: fast"
    assert (refused({"Config": {"max-buffer-size": "4m"}})
            == "logger: max-buffer-size option is only supported with 'mode=non-blocking'")
    assert (refused({"Config": {"mode": "non-blocking", "max-buffer-size": "x"}})
            == "error parsing option max-buffer-size: invalid size: 'x'")
    assert refused({"Config": {"cache-disabled": "maybe"}}) == "invalid value for option cache-disabled: maybe"
    normalize_log_config({"Config": {"mode": "non-blocking", "max-buffer-size": "4m",
                                     "cache-disabled": "true"}})


def test_json_file_values_as_dockerd_words_them():
    prefix = "failed to initialize logging driver: "
    assert refused({"Config": {"max-size": "abc"}}) == prefix + "invalid size: 'abc'"
    assert refused({"Config": {"max-size": "0"}}) == prefix + "max-size must be a positive number"
    assert (refused({"Config": {"max-size": "1k", "max-file": "x"}})
            == prefix + 'strconv.Atoi: parsing "x": invalid syntax')
    assert refused({"Config": {"max-size": "1k", "max-file": "0"}}) == prefix + "max-file cannot be less than 1"
    assert (refused({"Config": {"compress": "yes"}})
            == prefix + 'strconv.ParseBool: parsing "yes": invalid syntax')
    assert (refused({"Config": {"max-size": "1k", "compress": "true"}})
            == prefix + "compress cannot be true when max-file is less than 2 or max-size is not set")


def test_local_values_as_dockerd_words_them():
    prefix = "failed to initialize logging driver: "
    assert (refused({"Type": "local", "Config": {"max-size": "big"}})
            == prefix + "invalid value for max-size: big: invalid size: 'big'")
    assert (refused({"Type": "local", "Config": {"max-file": "many"}})
            == prefix + 'invalid value for max-file: many: strconv.Atoi: parsing "many": invalid syntax')
    assert (refused({"Type": "local", "Config": {"compress": "zip"}})
            == prefix + 'error reading compress log option: strconv.ParseBool: parsing "zip": invalid syntax')
    assert (refused({"Type": "local", "Config": {"max-file": "-1", "compress": "false"}})
            == prefix + "max file count cannot be less than 0")
    assert (refused({"Type": "local", "Config": {"max-file": "1"}})
            == prefix + "compression cannot be enabled when max file count is 1")


def test_malformed_log_config():
    assert refused("json-file") == "invalid LogConfig: expected an object"
    assert refused({"Type": 3}) == "invalid LogConfig.Type: expected a string"
    assert refused({"Config": {"max-size": 10}}) == "invalid LogConfig.Config: expected an object of strings"


def test_log_path_shown_for_json_file_only():
    assert log_path_shown({"Type": "json-file", "Config": {}}, "/l/c.log") == "/l/c.log"
    assert log_path_shown({"Type": "local", "Config": {}}, "/l/c.log") == ""
    assert log_path_shown({"Type": "none", "Config": {}}, "/l/c.log") == ""


def test_log_attributes_pick_labels_and_env_as_dockerd():
    config = {"Type": "json-file", "Config": {"labels": "app,missing", "env": "STAGE",
                                              "env-regex": "^REG"}}
    labels = {"app": "web", "team": "a"}
    env = ["STAGE=prod", "REGION=eu", "OTHER=x", "BROKEN"]
    assert log_attributes(config, labels, env) == {"app": "web", "STAGE": "prod",
                                                   "REGION": "eu"}
    assert log_attributes({"Type": "local", "Config": {}}, labels, env) == {}
    assert log_attributes({"Type": "json-file", "Config": {"labels-regex": "^t"}},
                          labels, None) == {"team": "a"}


def test_an_invalid_attribute_regex_is_refused_at_create():
    with pytest.raises(InvalidArgument, match="labels-regex"):
        normalize_log_config({"Type": "json-file", "Config": {"labels-regex": "("}})
