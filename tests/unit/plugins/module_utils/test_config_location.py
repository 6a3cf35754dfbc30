"""Where the target's configuration is (issue 19, item 5): the postgresql.conf settings
read, and the Debian cluster found for a data directory, on a fake /etc/postgresql."""

from ansible_collections.pgops.rewind.plugins.module_utils.target.config_location import (
    config_check, debian_cluster, locate_config, path_settings)


def test_path_settings_as_the_server_reads_them():
    text = ("# data_directory = '/commented'\n"
            "data_directory = '/var/lib/postgresql/15/main'\t# comment\n"
            "hba_file='/etc/it''s/pg_hba.conf'\n"
            "ident_file /bare/pg_ident.conf\n"
            "data_directory = '/srv/last\\\\one'  # the last one wins\n")
    assert path_settings(text) == {"data_directory": "/srv/last\\one",
                                   "hba_file": "/etc/it's/pg_hba.conf",
                                   "ident_file": "/bare/pg_ident.conf"}


def _cluster(etc, major, name, conf):
    directory = etc / str(major) / name
    directory.mkdir(parents=True)
    (directory / "postgresql.conf").write_text(conf)
    return directory


def test_the_debian_cluster_whose_data_directory_it_is(tmp_path):
    etc, data = tmp_path / "etc", tmp_path / "data"
    data.mkdir()
    _cluster(etc, 15, "other", "data_directory = '/elsewhere'\n")
    mine = _cluster(etc, 15, "main", "data_directory = '%s'\nhba_file = '/x/hba'\n" % data)
    _cluster(etc, 16, "main", "data_directory = '%s'\n" % data)       # another major
    assert debian_cluster(str(data), 15, str(etc)) == {
        "config_file": str(mine / "postgresql.conf"), "hba_file": "/x/hba",
        "ident_file": str(mine / "pg_ident.conf")}
    assert debian_cluster(str(data), 14, str(etc)) is None
    found = locate_config(str(data), 15, etc=str(etc))
    assert (found["found_by"], found["outside_data_directory"]) == ("debian_layout", True)
    assert config_check(str(data), 15, found)[0] is True


def test_the_order_given_server_data_directory(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "postgresql.conf").write_text("")
    server = {"config_file": "/etc/pg/postgresql.conf", "hba_file": "/etc/pg/hba",
              "ident_file": "/etc/pg/ident"}
    assert locate_config(str(data), 15, "/given.conf", server)["found_by"] == "given"
    assert locate_config(str(data), 15, None, server)["config_file"] == "/etc/pg/postgresql.conf"
    inside = locate_config(str(data), 15, None, {"running": False})
    assert (inside["found_by"], inside["outside_data_directory"]) == ("data_directory", False)


def test_nowhere_names_the_option(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    found = locate_config(str(data), 15, etc=str(tmp_path / "etc"))
    assert found["found_by"] is None and found["config_file"] is None
    ok, message = config_check(str(data), 15, found)
    assert not ok and "pg_rewind_config_file" in message and str(data) in message
    ok, message = config_check(str(data), 15, locate_config(str(data), 15, "/missing.conf"))
    assert not ok and "/missing.conf" in message
