"""A place for a test's clusters that always cleans up after itself."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from .cluster import Cluster
from .env import OUTPUT, REPO, TEST_PASSWORD
from .tmp import note_bed

_LIVE: set["Bed"] = set()


class Bed:
    """The clusters of one test, under one temporary directory."""

    def __init__(self, label: str):
        self.home = Path(tempfile.mkdtemp(prefix="pgbed-", dir="/tmp"))
        os.chmod(self.home, 0o755)
        note_bed(self.home)
        self.label = label
        self.clusters: list[Cluster] = []
        _LIVE.add(self)

    def cluster(self, name: str, major: int) -> Cluster:
        node = Cluster(name, major, self.home)
        self.clusters.append(node)
        return node

    def adopt(self, node: Cluster) -> Cluster:
        """Track a cluster created by another cluster (a standby)."""
        if node not in self.clusters:
            self.clusters.append(node)
        return node

    def primary_and_standby(self, major: int, **init_args) -> tuple[Cluster, Cluster]:
        primary = self.cluster("primary", major).init(**init_args)
        primary.start()
        standby = self.adopt(primary.create_standby("standby"))
        return primary, standby

    def close(self, keep_logs: bool = False) -> None:
        for node in self.clusters:
            node.kill()
        for node in self.clusters:      # server logs vanish with the bed: check them now
            if node.logfile.exists() and TEST_PASSWORD in node.logfile.read_text(errors="replace"):
                OUTPUT.mkdir(parents=True, exist_ok=True)
                with open(OUTPUT / "secret-leaks.txt", "a") as leaks:
                    leaks.write("%s: server log of %s\n" % (self.label, node.name))
        if keep_logs:
            dest = REPO / "tests" / "output" / self.label
            dest.mkdir(parents=True, exist_ok=True)
            for node in self.clusters:
                if node.logfile.exists():
                    shutil.copy(node.logfile, dest / f"{node.name}.log")
        shutil.rmtree(self.home, ignore_errors=True)
        _LIVE.discard(self)


@atexit.register
def _stop_everything() -> None:
    for bed in list(_LIVE):
        bed.close()
