"""The role's pg_rewind_max_rate reaches the module: a rate pg_basebackup would refuse
is refused before the node is changed; a capped run rejoins the node."""

from support.digest import datadir_digest, differences
from support.scenarios import failover

from test_role import _assert_rejoined, _changed, _play  # pylint: disable=import-error


def test_role_caps_the_rewind_and_rejoins(bed, collection):
    fo = failover(bed, 15)
    before = datadir_digest(fo.old_primary.datadir)
    refused = _play(fo, pg_rewind_max_rate="1G")
    assert refused["rc"] != 0
    assert "max_rate" in refused["stdout"] and "pg_basebackup" in refused["stdout"], \
        refused["stdout"][-4000:]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []

    assert _changed(_play(fo, pg_rewind_max_rate="16M")) > 0
    _assert_rejoined(fo)
