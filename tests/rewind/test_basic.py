"""A diverged old primary, rewound by the module, follows the new primary with equal data.

On every major: the dry run (check mode) changes nothing, the rewind copies what it
must, a second run finds nothing to do and changes nothing, and the node then
streams from the new primary holding exactly its data.
"""

import os

from support.digest import datadir_digest, differences
from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover


def test_rewind_dry_run_idempotence_and_data(bed, collection, major):
    fo = failover(bed, major)
    before = datadir_digest(fo.old_primary.datadir)

    dry = rewind(fo, check=True, diff=True)
    assert not dry["failed"], dry.get("msg")
    assert dry["changed"] and dry["rewind_required"] and dry["bytes_fetched"] == 0
    assert dry["files"]["copied"] > 0 and dry["blocks_copied"] > 0
    assert "bytes to fetch" in dry["_stdout"]        # the diff, as ansible shows it
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    result = rewind(fo)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["rewind_required"]
    assert result["files"] == dry["files"]
    assert result["bytes_fetched"] > 0 and result["wal_bytes_scanned"] > 0
    assert set(result["duration_s"]) >= {"facts", "wal_scan", "plan", "copy", "finish"}
    # parallel left at 0: two connections per CPU of this host, 4 to 8
    assert result["fetch_connections"] == max(4, min(8, 2 * os.cpu_count()))
    assert not (fo.old_primary.datadir / "pgops_rewind").exists()
    rewound = datadir_digest(fo.old_primary.datadir)

    again = rewind(fo)
    assert not again["failed"], again.get("msg")
    assert again["changed"] is False and again["rewind_required"] is False
    assert differences(rewound, datadir_digest(fo.old_primary.datadir)) == []

    assert_follows_and_matches(fo)
