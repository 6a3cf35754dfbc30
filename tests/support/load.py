"""Load on a server while something else runs: a new primary that keeps writing."""

from __future__ import annotations

import threading
import time


def keep_little_wal(node) -> None:
    """The retention settings of a new primary that removes WAL as soon as it may:
    no wal_keep_size (wal_keep_segments before 13), a 32 MB max_wal_size."""
    keep = "wal_keep_size" if node.major >= 13 else "wal_keep_segments"
    node.sql(f"ALTER SYSTEM SET {keep} = 0")
    node.sql("ALTER SYSTEM SET max_wal_size = '32MB'")
    node.sql("ALTER SYSTEM SET min_wal_size = '32MB'")
    node.sql("SELECT pg_reload_conf()")


class BusyWriter:
    """A thread that updates `accounts`, switches to a new WAL segment and checkpoints on
    `node`, round after round, until stopped; bounded in time and rounds. Use as a
    context manager; an error in the thread fails the test when it stops."""

    def __init__(self, node, max_seconds: float = 600, max_rounds: int = 5000):
        self.node = node
        self.max_seconds = max_seconds
        self.max_rounds = max_rounds
        self.rounds = 0
        self.error = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="busy-writer", daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.max_seconds
        try:
            conn = self.node.connect()
            try:
                with conn.cursor() as cur:
                    while not self._stop.is_set() and self.rounds < self.max_rounds \
                            and time.monotonic() < deadline:
                        cur.execute("UPDATE accounts SET balance = balance + 1 "
                                    "WHERE id %% 10 = %s", (self.rounds % 10,))
                        cur.execute("SELECT pg_switch_wal()")
                        cur.execute("CHECKPOINT")
                        self.rounds += 1
            finally:
                conn.close()
        except Exception as exc:     # reported by stop()
            self.error = exc

    def __enter__(self):
        self._thread.start()
        return self

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the writer did not stop"
        if self.error is not None:
            raise AssertionError("the busy writer failed: %s" % self.error)
        return self.rounds

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=120)
        return False
