# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the target's server configuration lives, found before anything is stopped.

A rewind reads the target's effective settings (`postgres -C`) and the role starts the
node again: both need its postgresql.conf. Debian's postgresql-common keeps it outside
the data directory, in /etc/postgresql/<major>/<cluster>/, whose postgresql.conf names
the data directory (data_directory; by convention /var/lib/postgresql/<major>/<cluster>).
In order: what the caller gave; what the running server says (SHOW config_file,
hba_file, ident_file); a postgresql.conf in the data directory; the Debian cluster whose
data_directory is this one. None found: the caller must say (config_file).
"""

from __future__ import annotations

import os
import re
from typing import Optional

DEBIAN_ETC = "/etc/postgresql"
DEBIAN_DATA = "/var/lib/postgresql"
PATH_SETTINGS = ("config_file", "hba_file", "ident_file")

_SETTING = re.compile(r"^\s*(data_directory|hba_file|ident_file)\s*=?\s*"
                      r"(?:'((?:[^'\\]|''|\\.)*)'|([^\s#']+))")
_ESCAPED = re.compile(r"''|\\(.)")


def path_settings(text: str) -> dict:
    """{data_directory, hba_file, ident_file: value} set in a postgresql.conf text (the
    last one wins, as the server reads it; includes are not followed)."""
    found = {}
    for line in text.splitlines():
        match = _SETTING.match(line)
        if match:
            quoted, bare = match.group(2), match.group(3)
            found[match.group(1)] = bare if quoted is None else _ESCAPED.sub(
                lambda m: m.group(1) or "'", quoted)
    return found


def _same_directory(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


def debian_cluster(pgdata: str, major: int, etc: str = DEBIAN_ETC) -> Optional[dict]:
    """{config_file, hba_file, ident_file} of the postgresql-common cluster whose data
    directory is `pgdata`, or None."""
    versions = os.path.join(etc, str(major))
    try:
        clusters = sorted(os.listdir(versions))
    except OSError:
        return None
    for cluster in clusters:
        conf = os.path.join(versions, cluster, "postgresql.conf")
        try:
            with open(conf, encoding="utf-8", errors="surrogateescape") as handle:
                settings = path_settings(handle.read())
        except OSError:
            continue
        data = settings.get("data_directory") or os.path.join(DEBIAN_DATA, str(major), cluster)
        if _same_directory(data, pgdata):
            here = os.path.dirname(conf)
            return {"config_file": conf,
                    "hba_file": settings.get("hba_file") or os.path.join(here, "pg_hba.conf"),
                    "ident_file": settings.get("ident_file") or os.path.join(here, "pg_ident.conf")}
    return None


def locate_config(pgdata: str, major: int, given: Optional[str] = None,
                  server: Optional[dict] = None, etc: str = DEBIAN_ETC) -> dict:
    """{config_file, hba_file, ident_file, found_by, outside_data_directory} of the
    target; found_by None (and the paths None) when nothing says where it is."""
    pgdata = os.path.abspath(pgdata)
    paths, found_by = None, None
    if given:
        paths, found_by = {"config_file": given, "hba_file": None, "ident_file": None}, "given"
    elif server and server.get("config_file"):
        paths, found_by = {name: server.get(name) for name in PATH_SETTINGS}, "server"
    elif os.path.isfile(os.path.join(pgdata, "postgresql.conf")):
        paths = {"config_file": os.path.join(pgdata, "postgresql.conf"),
                 "hba_file": os.path.join(pgdata, "pg_hba.conf"),
                 "ident_file": os.path.join(pgdata, "pg_ident.conf")}
        found_by = "data_directory"
    else:
        paths = debian_cluster(pgdata, major, etc)
        found_by = "debian_layout" if paths else None
    paths = paths or {name: None for name in PATH_SETTINGS}
    config = paths["config_file"]
    outside = bool(config) and not _same_directory(os.path.dirname(config), pgdata)
    return dict(paths, found_by=found_by, outside_data_directory=outside)


def config_check(pgdata: str, major: int, location: dict) -> tuple:
    """(ok, message) of the preflight check config_file (plain values)."""
    if location["found_by"] is None:
        return False, ("no postgresql.conf in %s and no %s/%d/<cluster>/postgresql.conf names "
                       "it as its data_directory: set pg_rewind_config_file (module: "
                       "config_file) to the node's postgresql.conf" % (pgdata, DEBIAN_ETC, major))
    if not os.path.isfile(location["config_file"]):
        return False, ("%s (pg_rewind_config_file, module: config_file) is not a file"
                       % location["config_file"])
    how = {"given": "as given", "server": "as its running server reports",
           "data_directory": "in the data directory",
           "debian_layout": "in the Debian layout (postgresql-common)"}[location["found_by"]]
    return True, "%s, %s" % (location["config_file"], how)
