"""servin.net.sysfs: netmasks, and sysfs read only where it shows this namespace's link."""

from __future__ import annotations

import ipaddress
import socket

import pytest

from servin.net import sysfs


@pytest.mark.parametrize("mask, length", [("255.255.255.0", 24), ("0.0.0.0", 0),
                                          ("255.255.255.255", 32), ("255.240.0.0", 12),
                                          ("ffff:ffff:ffff:ffff::", 64), ("::", 0),
                                          ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 127)])
def test_prefix_length_of_a_netmask(mask, length):
    assert sysfs.prefix_length(ipaddress.ip_address(mask).packed) == length


def fake_sysfs(tmp_path, monkeypatch, index: int):
    """A sysfs whose 'lo' has ``index``: this namespace's loopback is 1."""
    link = tmp_path / "lo"
    link.mkdir()
    for attribute, value in (("ifindex", str(index)), ("ifalias", "servin:x\n"),
                             ("mtu", "65536"), ("flags", "0x9")):
        (link / attribute).write_text(value + "\n")
    monkeypatch.setattr(sysfs, "SYS_NET", tmp_path)


def test_a_link_shown_with_this_namespaces_index_is_read(tmp_path, monkeypatch):
    fake_sysfs(tmp_path, monkeypatch, socket.if_nametoindex("lo"))
    assert sysfs.link("lo") == sysfs.LinkView(name="lo", alias="servin:x", mtu=65536, up=True,
                                              bridge=False)


def test_sysfs_of_another_namespace_cannot_say(tmp_path, monkeypatch):
    fake_sysfs(tmp_path, monkeypatch, socket.if_nametoindex("lo") + 1000)
    assert sysfs.link("lo") is None
    assert sysfs.links_with_alias("servin:x") is None
