"""A diverged old primary, rewound by the module, follows the new primary with equal data."""

from support.rewound import assert_follows_and_matches, rewind
from support.scenarios import failover


def test_basic_divergence(bed, collection, major):
    fo = failover(bed, major)
    result = rewind(fo)
    assert not result["failed"], result.get("msg")
    assert result["changed"] and result["rewind_required"]
    assert result["files"]["copied"] > 0 and result["blocks_copied"] > 0
    assert result["bytes_fetched"] > 0
    assert not (fo.old_primary.datadir / "pgops_rewind").exists()
    assert_follows_and_matches(fo)
