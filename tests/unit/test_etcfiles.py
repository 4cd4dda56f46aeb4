from servin.containers.etcfiles import container_resolv_conf, hosts_content, write_etc_files


def test_loopback_resolvers_are_dropped_and_defaults_added():
    text = container_resolv_conf("search example.org\nnameserver 127.0.0.53\noptions ndots:2\n")
    assert "127.0.0.53" not in text
    assert "search example.org" in text and "options ndots:2" in text
    assert "nameserver 8.8.8.8" in text


def test_reachable_resolvers_are_kept_without_defaults():
    text = container_resolv_conf("nameserver 192.0.2.53\nnameserver ::1\n")
    assert text == "nameserver 192.0.2.53\n"


def test_hosts_has_localhost_and_container_entries():
    text = hosts_content([("192.0.2.5", "abc123")])
    assert text.startswith("127.0.0.1\tlocalhost\n")
    assert text.endswith("192.0.2.5\tabc123\n")


def test_write_etc_files_private_and_host_modes(tmp_path):
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "hosts").write_text("10.9.9.9 myhost\n")
    (etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
    private = write_etc_files(tmp_path / "p", hostname="abc", host_network=False, host_etc=etc)
    assert private["/etc/hostname"].read_text() == "abc\n"
    assert "myhost" not in private["/etc/hosts"].read_text()
    assert "8.8.8.8" in private["/etc/resolv.conf"].read_text()
    host = write_etc_files(tmp_path / "h", hostname="box", host_network=True, host_etc=etc)
    assert host["/etc/hosts"].read_text() == "10.9.9.9 myhost\n"
    assert host["/etc/resolv.conf"].read_text() == "nameserver 127.0.0.1\n"


def test_extra_hosts_and_dns_settings(tmp_path):
    from servin.containers.etcfiles import DnsSettings, etc_file_options

    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "resolv.conf").write_text("search corp.example\nnameserver 192.0.2.1\n"
                                     "options ndots:2\n")
    options = etc_file_options({"ExtraHosts": ["db:10.0.0.2", "v6:::1"],
                                "Dns": ["192.0.2.53"], "DnsSearch": [], "DnsOptions": ["rotate"]})
    files = write_etc_files(tmp_path / "c", hostname="abc", host_network=False, host_etc=etc,
                            **options)
    assert files["/etc/hosts"].read_text().endswith("10.0.0.2\tdb\n::1\tv6\n")
    assert files["/etc/resolv.conf"].read_text() == ("search corp.example\n"
                                                     "nameserver 192.0.2.53\noptions rotate\n")
    files = write_etc_files(tmp_path / "d", hostname="abc", host_network=False, host_etc=etc,
                            dns=DnsSettings(search=(".",)))
    assert files["/etc/resolv.conf"].read_text() == "nameserver 192.0.2.1\noptions ndots:2\n"
