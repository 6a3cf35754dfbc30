"""On a shared host: a link planted at the predictable progress path redirects nothing,
and restore_command (which may carry archive credentials) stays out of every result."""

import json
import os
import stat

from support.ansible import run_module
from support.cluster import chown_tree
from support.env import TEST_PASSWORD, pg_os_ids
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover

from ansible_collections.pgops.rewind.plugins.module_utils.runtime.progress import default_path


def test_link_planted_at_the_progress_path(bed, collection):
    fo = failover(bed, 15)
    victim = bed.home / "victim"
    victim.write_text("precious")
    chown_tree(victim)                  # the data directory owner's: writable by the run
    planted = default_path(str(fo.old_primary.datadir))   # in this session's TMPDIR
    os.symlink(victim, planted)         # by another user (root)
    try:
        result = rewind(fo)
        assert not result["failed"], result.get("msg")
        assert victim.read_text() == "precious"
        assert os.readlink(planted) == str(victim)
        moved = result["progress_file"]
        assert moved != planted and os.path.basename(moved) == os.path.basename(planted)
        info = os.stat(moved)
        assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (pg_os_ids()[0], 0o600)
        assert json.loads(open(moved).read())["phase"] == "done"
        assert "[WARNING]: progress file: %s is a symbolic link" % planted in \
            " ".join((result["_stdout"] + result["_stderr"]).split())
    finally:
        os.unlink(planted)
    assert_follows_and_matches(fo)


def test_restore_command_is_kept_out_of_results(bed, collection):
    fo = failover(bed, 16)
    command = ("test -f /nonexistent/%%f && wal-fetch --s3-secret-key=%s %%f %%p"
               % TEST_PASSWORD)
    result = run_module("pg_rewind", {"target_pgdata": str(fo.old_primary.datadir),
                                      "source_server": fo.new_primary.conninfo(),
                                      "write_recovery_conf": True, "restore_command": command},
                        verbose=True)           # -vvv: the result shows the module's arguments
    assert not result["failed"], result.get("msg")
    assert result["invocation"]["module_args"]["target_pgdata"]
    for text in (json.dumps(result), result["_stdout"], result["_stderr"]):
        assert TEST_PASSWORD not in text
        assert "wal-fetch" not in text
