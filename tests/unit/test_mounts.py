"""Binds, Mounts, VolumesFrom and Config.Volumes parsed and checked as dockerd does."""

from __future__ import annotations

import pytest

from servin.containers.mounts import (MountPoint, parse_bind, parse_mount, parse_volumes_from,
                                      requested_mounts, tmpfs_data, valid_mode)
from servin.errors import InvalidArgument


def test_bind_of_a_host_path():
    point = parse_bind("/srv/www:/var/www:ro,rslave").point
    assert (point.type, point.source, point.destination) == ("bind", "/srv/www", "/var/www")
    assert not point.rw and point.propagation == "rslave" and point.mode == "ro,rslave"
    assert point.create_source
    assert parse_bind("/a/../b/:/c/").point.source == "/b"
    assert parse_bind("/a:/c").point.propagation == "rprivate"


def test_bind_of_a_named_volume():
    requested = parse_bind("data:/var/lib/db:nocopy")
    point = requested.point
    assert (point.type, point.name, point.destination) == ("volume", "data", "/var/lib/db")
    assert point.rw and not point.copy_data and not point.anonymous
    assert requested.volume is not None
    assert parse_bind("data:/db").point.mode == "z"  # dockerd's default for local volumes


@pytest.mark.parametrize("raw, message", [
    ("", "invalid volume specification: ''"),
    ("/data:rw", "invalid volume specification: '/data:rw'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/h:/c:rx", "invalid mode: rx"),
    ("/h:/c:ro,rw", "invalid mode: ro,rw"),
    ("/h:c", "invalid volume specification: '/h:c': invalid mount config for type \"bind\": "
             "invalid mount path: 'c' mount path must be absolute"),
    ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("v:/c:shared", "field BindOptions must not be specified"),
    ("/h:/c:nocopy", "field VolumeOptions must not be specified"),
])
def test_bad_binds(raw, message):
    with pytest.raises(InvalidArgument) as error:
        parse_bind(raw)
    assert message in error.value.message


def test_modes():
    assert valid_mode("ro,Z,rshared,nocopy,cached")
    assert not valid_mode("shared,slave") and not valid_mode("rw,bogus")


def test_mounts_entries():
    bind = parse_mount({"Type": "bind", "Source": "/", "Target": "/host", "ReadOnly": True,
                        "BindOptions": {"Propagation": "rshared", "NonRecursive": True}}).point
    assert bind.non_recursive and bind.propagation == "rshared" and not bind.rw
    assert not bind.create_source and bind.mode == ""
    volume = parse_mount({"Type": "volume", "Target": "/v", "VolumeOptions": {
        "NoCopy": True, "Labels": {"a": "b"},
        "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}})
    assert volume.point.anonymous and not volume.point.copy_data
    assert volume.volume.labels == {"a": "b"}
    assert volume.volume.options == {"type": "tmpfs", "device": "tmpfs"}
    tmpfs = parse_mount({"Type": "tmpfs", "Target": "/t",
                         "TmpfsOptions": {"SizeBytes": 3 * 1024 * 1024, "Mode": 0o1777}})
    assert tmpfs.point.tmpfs_options == "mode=1777,size=3m"


@pytest.mark.parametrize("cfg, message", [
    ({"Type": "nfs", "Target": "/x"}, 'invalid mount config for type "nfs": mount type unknown'),
    ({"Type": "bind", "Target": "/x"}, "field Source must not be empty"),
    ({"Type": "volume", "Source": "v"}, "field Target must not be empty"),
    ({"Type": "bind", "Source": "/", "Target": "/x",
      "BindOptions": {"Propagation": "sideways"}}, "invalid propagation mode: sideways"),
    ({"Type": "bind", "Source": "/no/such/dir/here", "Target": "/x"},
     "bind source path does not exist: /no/such/dir/here"),
    ({"Type": "volume", "Target": "/x", "ReadOnly": True},
     "must not set ReadOnly mode when using anonymous volumes"),
    ({"Type": "tmpfs", "Target": "/x", "BindOptions": {}},
     "field BindOptions must not be specified"),
])
def test_bad_mounts(cfg, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_mount(cfg)


def test_tmpfs_sizes():
    assert tmpfs_data({"SizeBytes": 1000}, False) == "size=1000"
    assert tmpfs_data({"SizeBytes": 2048}, True) == "ro,size=2k"
    assert tmpfs_data(None, False) == ""


def test_volumes_from_specs():
    assert parse_volumes_from("web") == ("web", True)
    assert parse_volumes_from("web:ro") == ("web", False)
    for bad in ("web:shared", "web:nocopy", "web:xx"):
        with pytest.raises(InvalidArgument, match="invalid mode"):
            parse_volumes_from(bad)
    with pytest.raises(InvalidArgument, match="cannot be an empty string"):
        parse_volumes_from("")


def test_order_duplicates_and_anonymous_volumes():
    donor = [MountPoint("volume", "/shared", name="s", source="/v/s/_data", anonymous=True),
             MountPoint("volume", "/data", name="d")]
    host_config = {"VolumesFrom": ["donor:ro"], "Binds": ["/h:/data"],
                   "Mounts": [{"Type": "tmpfs", "Target": "/tmp/x"}]}
    config = {"Volumes": {"/data": {}, "/cache/": {}, "/shared": {}}}
    requested = requested_mounts(config, host_config, lambda ref: donor)
    by_destination = {r.point.destination: r.point for r in requested}
    assert set(by_destination) == {"/shared", "/data", "/tmp/x", "/cache"}
    assert by_destination["/data"].type == "bind"  # the bind wins over volumes-from
    shared = by_destination["/shared"]
    assert not shared.rw and not shared.anonymous and not shared.copy_data
    cache = by_destination["/cache"]
    assert cache.type == "volume" and cache.anonymous and cache.name == ""
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /data"):
        requested_mounts({}, {"Binds": ["/h:/data", "v:/data/"]}, lambda ref: [])
    with pytest.raises(InvalidArgument, match="Duplicate mount point: /t"):
        requested_mounts({}, {"Binds": ["/h:/t"], "Tmpfs": {"/t": ""}}, lambda ref: [])
    with pytest.raises(InvalidArgument, match="mount path must be absolute"):
        requested_mounts({"Volumes": {"rel": {}}}, {}, lambda ref: [])


def test_wire_shape():
    volume = MountPoint("volume", "/d", source="/var/lib/servin/volumes/v/_data", name="v",
                        driver="local", mode="z")
    assert volume.wire() == {"Type": "volume", "Name": "v",
                             "Source": "/var/lib/servin/volumes/v/_data", "Destination": "/d",
                             "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""}
    assert MountPoint("tmpfs", "/t").wire() == {"Type": "tmpfs", "Source": "", "Destination":
                                                "/t", "Mode": "", "RW": True, "Propagation": ""}
