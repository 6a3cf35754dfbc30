"""Where the changed-block scan starts (plan/facts.py RewindFacts.scan_start): at the fork
only when replay from the last common checkpoint's redo repairs every page the common WAL
changed, else at the checkpoint with the reason; and the phase split of the timer."""

from types import SimpleNamespace

import pytest

from ansible_collections.pgops.rewind.plugins.module_utils.pg.timeline import Divergence
from ansible_collections.pgops.rewind.plugins.module_utils.plan.facts import (
    DIVERGED, SCAN_FROM_CHECKPOINT, SCAN_FROM_FORK, RewindFacts)
from ansible_collections.pgops.rewind.plugins.module_utils.runtime.progress import PhaseTimer
from ansible_collections.pgops.rewind.plugins.module_utils.wal.scan import LastCommonCheckpoint

SEG = 16 << 20
CHECKPOINT = 3 * SEG + 4096
FORK = 9 * SEG + 200


def _facts(fpw=True, changed_at=None, target_fpw=True, twin=False, from_history=True,
           fork=FORK):
    target = SimpleNamespace(full_page_writes=target_fpw, xlog_seg_size=SEG)
    facts = RewindFacts(target, None, 2, 3, [], [], 12 * SEG, True, DIVERGED,
                        Divergence(2, fork, 1),
                        LastCommonCheckpoint(CHECKPOINT, 2, CHECKPOINT - 100, fpw, changed_at))
    facts.twin_timeline, facts.fork_from_history = twin, from_history
    return facts


def test_from_the_fork_when_full_page_writes_held():
    start = _facts().scan_start()
    assert (start.lsn, start.at) == (FORK, SCAN_FROM_FORK)
    assert start.as_dict()["at"] == "divergence"


def test_a_fork_at_a_page_boundary_starts_at_the_first_record_after_its_header():
    start = _facts(fork=9 * SEG + 8192).scan_start()
    assert start.at == SCAN_FROM_FORK and start.lsn == 9 * SEG + 8192 + 24


@pytest.mark.parametrize("facts, why", [
    (_facts(fpw=None), "resumed"),
    (_facts(fpw=False), "last common checkpoint says full_page_writes = off"),
    (_facts(changed_at=5 * SEG), "may have changed at 0/5000000"),
    (_facts(target_fpw=False), "latest checkpoint says full_page_writes = off"),
    (_facts(twin=True), "comparing WAL"),
    (_facts(from_history=False), "comparing WAL"),
    (_facts(fork=CHECKPOINT - 50), "at the last common checkpoint"),
])
def test_from_the_checkpoint_otherwise(facts, why):
    start = facts.scan_start()
    assert (start.lsn, start.at) == (CHECKPOINT, SCAN_FROM_CHECKPOINT)
    assert why in start.reason


def test_a_step_of_a_phase_is_reported_apart():
    timer = PhaseTimer()
    timer.durations["facts"] = 5.0
    timer.split("facts", "checkpoint_walk", 3.25)
    assert timer.durations == {"facts": 1.75, "checkpoint_walk": 3.25}
    timer.split("facts", "checkpoint_walk", 9)          # never more than the phase took
    assert timer.durations == {"facts": 0.0, "checkpoint_walk": 5.0}
