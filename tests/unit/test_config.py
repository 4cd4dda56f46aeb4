"""servind's flags and daemon.json: parsing, merging and validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servin.config import DEFAULT_SOCKET, ConfigError, Host, load_config, parse_host


def write_config(tmp_path: Path, content: dict | str) -> Path:
    path = tmp_path / "daemon.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def load(tmp_path: Path, *argv: str) -> object:
    """load_config with a default config file that does not exist."""
    return load_config(list(argv), default_config_file=str(tmp_path / "absent.json"))


def test_defaults(tmp_path):
    config = load(tmp_path)
    assert config.hosts == [DEFAULT_SOCKET]
    assert config.data_root == Path("/var/lib/servin")
    assert config.exec_root == Path("/run/servin")
    assert config.pidfile == Path("/var/run/servin.pid")
    assert config.log_level == "info" and not config.debug
    assert config.registry_mirrors == [] and config.insecure_registries == []


def test_flags(tmp_path):
    config = load(tmp_path, "-H", "unix:///tmp/a.sock", "--host", "tcp://127.0.0.1:2376",
                  "--data-root", "/srv/data", "--exec-root", "/srv/exec", "-p", "/srv/pid",
                  "--registry-mirror", "http://127.0.0.1:5000", "--insecure-registry",
                  "127.0.0.1:5000", "-l", "debug", "--bip", "172.31.9.1/24",
                  "--label", "a=b", "--label", "c=d", "--live-restore=false")
    assert config.hosts == ["unix:///tmp/a.sock", "tcp://127.0.0.1:2376"]
    assert (config.data_root, config.exec_root, config.pidfile) == (
        Path("/srv/data"), Path("/srv/exec"), Path("/srv/pid"))
    assert config.registry_mirrors == ["http://127.0.0.1:5000/"]
    assert config.insecure_registries == ["127.0.0.1:5000"]
    assert config.debug
    assert config.bip == "172.31.9.1/24"
    assert config.labels == ["a=b", "c=d"]
    assert config.live_restore is False
    assert load(tmp_path, "--live-restore").live_restore is True


def test_file_values(tmp_path):
    path = write_config(tmp_path, {
        "hosts": ["unix:///tmp/f.sock"], "data-root": "/srv/d", "log-level": "warn",
        "registry-mirrors": ["https://mirror.example"], "live-restore": False,
        "default-address-pools": [{"base": "172.80.0.0/16", "size": 24}], "labels": ["x=y"]})
    config = load(tmp_path, "--config-file", str(path))
    assert config.config_file == path
    assert config.hosts == ["unix:///tmp/f.sock"]
    assert config.data_root == Path("/srv/d")
    assert config.log_level == "warn"
    assert config.registry_mirrors == ["https://mirror.example/"]
    assert config.live_restore is False
    assert config.default_address_pools == [{"base": "172.80.0.0/16", "size": 24}]
    assert config.labels == ["x=y"]


def test_flags_and_file_combine(tmp_path):
    path = write_config(tmp_path, {"log-level": "error"})
    config = load(tmp_path, "--config-file", str(path), "--data-root", "/srv/d")
    assert (config.log_level, config.data_root) == ("error", Path("/srv/d"))


def test_same_value_in_flag_and_file_is_accepted(tmp_path):
    path = write_config(tmp_path, {"hosts": ["unix:///tmp/a.sock"]})
    assert load(tmp_path, "--config-file", str(path), "-H", "unix:///tmp/a.sock").hosts == [
        "unix:///tmp/a.sock"]


def test_conflicts_use_dockerd_wording(tmp_path):
    path = write_config(tmp_path, {"hosts": ["unix:///b"], "live-restore": True,
                                   "bip": "172.31.2.1/24"})
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "--config-file", str(path), "-H", "unix:///a", "--live-restore=false",
             "--bip", "172.31.2.1/24")
    assert str(caught.value) == (
        f"unable to configure the Servin daemon with file {path}: the following directives are "
        f"specified both as a flag and in the configuration file: "
        f"hosts: (from flag: [unix:///a], from file: [unix:///b]), "
        f"live-restore: (from flag: false, from file: true)")


def test_unknown_keys(tmp_path):
    path = write_config(tmp_path, {"foo": 1, "bar": 2, "debug": True, "hosts": []})
    with pytest.raises(ConfigError, match="the following directives don't match any "
                                          "configuration option: bar, debug, foo$"):
        load(tmp_path, "--config-file", str(path))


def test_config_file_presence(tmp_path):
    assert load(tmp_path).hosts == [DEFAULT_SOCKET]  # a missing default file is fine
    with pytest.raises(ConfigError, match="no such file or directory"):
        load(tmp_path, "--config-file", str(tmp_path / "missing.json"))


@pytest.mark.parametrize("content, message", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ({"hosts": "unix:///a"}, "invalid value for hosts: expected a list of strings"),
    ({"live-restore": "sometimes"}, "invalid value for live-restore"),
    ({"default-address-pools": [{"base": "10.0.0.0/8"}]}, "invalid default address pool"),
    ({"default-address-pools": [{"base": "10.0.0.0/16", "size": 8}]}, "size must be"),
])
def test_bad_files(tmp_path, content, message):
    path = write_config(tmp_path, content)
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, "--config-file", str(path))


def test_empty_file_is_no_configuration(tmp_path):
    path = write_config(tmp_path, "")
    assert load(tmp_path, "--config-file", str(path)).hosts == [DEFAULT_SOCKET]


@pytest.mark.parametrize("argv, message", [
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["-l", "verbose"], "unable to parse logging level: verbose"),
    (["--bip", "172.31.0.1"], "invalid bip"),
    (["--bip", "172.31.0.0/24"], "invalid bip"),
    (["--bip", "fd00::1/64"], "invalid bip"),
    (["--registry-mirror", "ftp://m"], 'unsupported scheme "ftp"'),
    (["--registry-mirror", "http://m/path"], "path, query, or fragment"),
    (["--registry-mirror", "http://u:p@m"], "username/password not allowed"),
    (["--insecure-registry", "http://r:5000"], "should not contain '://'"),
    (["--label", "novalue"], "bad attribute format: novalue"),
    (["--label", "a=1", "--label", "a=2"], "conflict labels for a=1 and a=2"),
    (["-H", "127.0.0.1:2375"], "invalid bind address format"),
    (["-H", "unix://relative.sock"], "must be absolute"),
    (["-H", "fd://x"], "invalid bind address format"),
    (["-H", "tcp://127.0.0.1:99999"], "invalid bind address format"),
])
def test_bad_flags(tmp_path, argv, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, *argv)


@pytest.mark.parametrize("text, host", [
    ("unix://", Host("unix", "/var/run/servin.sock")),
    ("unix:///run/x.sock", Host("unix", "/run/x.sock")),
    ("tcp://127.0.0.1:2376", Host("tcp", "127.0.0.1:2376")),
    ("tcp://127.0.0.1", Host("tcp", "127.0.0.1:2375")),
    ("tcp://:2376", Host("tcp", "127.0.0.1:2376")),
    ("tcp://[::1]:2376", Host("tcp", "[::1]:2376")),
    ("fd://", Host("fd", "")),
    ("fd://3", Host("fd", "3")),
])
def test_parse_host(text, host):
    assert parse_host(text) == host


def test_tcp_endpoint():
    assert parse_host("tcp://[::1]:2376").tcp_endpoint == ("::1", 2376)
    assert parse_host("tcp://127.0.0.1").tcp_endpoint == ("127.0.0.1", 2375)
