"""Host facts: parsing of tool versions and times, and real probes of this host."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from servin import hostinfo
from servin.oci.cgroups import CgroupFacts


@pytest.mark.parametrize("output, expected", [
    ("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\n",
     ("1.1.5+ds1", "1.1.5+ds1-1+deb12u1")),
    ("conmon version 2.1.6\ncommit: unknown\n", ("2.1.6", "unknown")),
    ("tini version 0.1.7_catatonit\n", ("0.1.7_catatonit", "")),
    ("", ("", "")),
])
def test_parse_version_output(output, expected):
    assert hostinfo.parse_version_output(output) == expected




def test_engine_id_is_made_once(tmp_path):
    first = hostinfo.engine_id(tmp_path)
    assert len(first) == 36
    assert hostinfo.engine_id(tmp_path) == first
    assert (tmp_path / "engine-id").read_text() == first


def test_backing_filesystem_matches_findmnt(tmp_path):
    fstype = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(tmp_path)],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert hostinfo.backing_filesystem(tmp_path) == hostinfo.FS_NAMES.get(fstype, fstype)
    assert hostinfo.backing_filesystem(tmp_path / "not" / "yet") == \
        hostinfo.backing_filesystem(tmp_path)


def test_d_type_probe_cleans_up(tmp_path):
    assert hostinfo.supports_d_type(tmp_path) is True  # ext4, tmpfs, xfs with ftype=1
    assert list(tmp_path.iterdir()) == []


def test_memory_and_cpus():
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert abs(hostinfo.mem_total() - pages) < 1024 * 1024  # the same memory, two ways
    assert hostinfo.cpu_count() == os.cpu_count()


def test_os_release_names_the_system():
    release = hostinfo.os_release()
    assert release["PRETTY_NAME"] and release["ID"]




def test_feature_warnings_name_what_is_missing():
    cgroups = CgroupFacts(swap=False, pids=False)
    sysctls = hostinfo.NetworkSysctls(False, True, True)
    warnings = hostinfo.feature_warnings(cgroups, sysctls)
    assert "WARNING: No swap limit support" in warnings
    assert "WARNING: No pids limit support" in warnings
    assert "WARNING: IPv4 forwarding is disabled" in warnings
    assert not any("memory limit" in w or "bridge-nf" in w for w in warnings)


def test_proxy_credentials_are_masked(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@proxy.example:3128")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3129")
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert hostinfo.proxy_settings() == ("http://xxxxx:xxxxx@proxy.example:3128",
                                         "http://proxy.example:3129", "localhost")


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_runc_version_from_the_binary():
    found = asyncio.run(hostinfo.binary_version("runc"))
    output = subprocess.run(["runc", "--version"], capture_output=True, text=True).stdout
    assert found is not None
    assert found.path == shutil.which("runc")
    assert f"runc version {found.version}" in output
    assert f"commit: {found.commit}" in output


def test_missing_binary_has_no_version():
    assert asyncio.run(hostinfo.binary_version("servin-no-such-tool")) is None
