from pathlib import Path

import pytest

from servin.errors import InvalidArgument
from servin.oci.users import ResolvedUser, resolve_user

PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
alice:x:1000:1000:Alice:/home/alice:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """root:x:0:root
bin:x:1:root,alice
wheel:x:10:root
alice:x:1000:
staff:x:50:alice
nogroup:x:65534:
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return tmp_path


def test_empty_user_is_root_with_its_supplementary_groups(rootfs):
    assert resolve_user(rootfs, "") == ResolvedUser(0, 0, [0, 0, 1, 10], name="root",
                                                 home="/root")


def test_name_resolves_uid_gid_and_member_groups(rootfs):
    user = resolve_user(rootfs, "alice")
    assert (user.uid, user.gid, user.additional_gids, user.home) == (1000, 1000, [1000, 1, 50],
                                                                       "/home/alice")


def test_numeric_uid_found_in_passwd(rootfs):
    assert resolve_user(rootfs, "1000").name == "alice"
    assert resolve_user(rootfs, "1000").gid == 1000


def test_numeric_uid_not_in_passwd_is_allowed_with_gid_0(rootfs):
    assert resolve_user(rootfs, "4242") == ResolvedUser(4242, 0, [0])


def test_unknown_name_uses_dockers_wording(rootfs):
    with pytest.raises(InvalidArgument) as err:
        resolve_user(rootfs, "bob")
    assert err.value.message == "unable to find user bob: no matching entries in passwd file"


def test_name_and_group_name(rootfs):
    user = resolve_user(rootfs, "alice:staff")
    assert (user.uid, user.gid, user.additional_gids) == (1000, 50, [50])


def test_uid_and_gid_numeric_without_entries(rootfs):
    assert resolve_user(rootfs, "4242:4343") == ResolvedUser(4242, 4343, [4343])


def test_unknown_group_name(rootfs):
    with pytest.raises(InvalidArgument) as err:
        resolve_user(rootfs, "alice:nosuch")
    assert err.value.message == "unable to find group nosuch: no matching entries in group file"


def test_group_add_by_name_and_number(rootfs):
    user = resolve_user(rootfs, "alice", group_add=["wheel", "777"])
    assert user.additional_gids == [1000, 1, 50, 10, 777]
    with pytest.raises(InvalidArgument, match="Unable to find group nosuch"):
        resolve_user(rootfs, "alice", group_add=["nosuch"])


def test_missing_files_root_still_works(tmp_path):
    assert resolve_user(tmp_path, "") == ResolvedUser(0, 0, [0])
    assert resolve_user(tmp_path, "1000:1000") == ResolvedUser(1000, 1000, [1000])
    with pytest.raises(InvalidArgument):
        resolve_user(tmp_path, "alice")


def test_absolute_symlink_resolves_inside_rootfs(tmp_path):
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc" / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "real").mkdir()
    (rootfs / "real" / "passwd").write_text("bob:x:7:7::/home/bob:/bin/sh\n")
    # Absolute targets and ../ escapes both stay inside the rootfs.
    (rootfs / "etc" / "passwd").symlink_to("../../../../../../real/passwd")
    assert resolve_user(rootfs, "bob").uid == 7
    (rootfs / "etc" / "passwd").unlink()
    (rootfs / "etc" / "passwd").symlink_to("/real/passwd")
    assert resolve_user(rootfs, "bob").uid == 7
    (rootfs / "etc" / "passwd").unlink()
    (rootfs / "etc" / "passwd").symlink_to(host / "etc" / "passwd")
    with pytest.raises(InvalidArgument):
        resolve_user(rootfs, "evil")


def test_passwd_that_is_a_directory_counts_as_missing(tmp_path):
    (tmp_path / "etc" / "passwd").mkdir(parents=True)
    assert resolve_user(tmp_path, "") == ResolvedUser(0, 0, [0])


def test_symlink_loop_is_an_error(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").symlink_to("passwd")
    with pytest.raises(OSError, match="too many levels"):
        resolve_user(tmp_path, "")
