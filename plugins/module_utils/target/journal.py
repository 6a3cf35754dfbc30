# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The journal of a rewind in progress, inside the target (pgops_rewind/).

Before the first change to the target, everything a rewind needs to finish is made
durable here: what the target changed after the fork (the changed-block map and the
WAL segments replay must keep), where replay has to start, and the target's
original pg_control, which is then moved out of place so PostgreSQL refuses to
start a half-rewound cluster. Running the same rewind again finds the journal and
completes the work from it, even if the target's own WAL is gone by then.
"""

from __future__ import annotations

import hashlib
import json
import os

from ..runtime import faults
from ..pg.blockmap import ChangedBlocks
from ..pg.controlfile import CONTROL_PATH
from ..pg.datadir import STATE_DIR
from .durability import fsync_path

STATE_FILE = "state.json"
BLOCKS_FILE = "changed_blocks.bin"
ORIGINAL_CONTROL = "pg_control.target"
FORMAT = 1


class Journal:
    def __init__(self, pgdata: str, sync: bool = True):
        self.pgdata = pgdata
        self.dir = os.path.join(pgdata, STATE_DIR)
        self.sync = sync

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def begun(self) -> bool:
        """The target's pg_control was set aside: the rewind had started changing it."""
        return os.path.exists(os.path.join(self.dir, ORIGINAL_CONTROL))

    def original_control(self) -> bytes:
        with open(os.path.join(self.dir, ORIGINAL_CONTROL), "rb") as handle:
            return handle.read()

    def finished(self) -> bool:
        """The new pg_control is in place (the rewind's last, atomic step happened)."""
        want = self.load().get("final_control_sha256")
        try:
            with open(os.path.join(self.pgdata, CONTROL_PATH), "rb") as handle:
                return bool(want) and hashlib.sha256(handle.read()).hexdigest() == want
        except FileNotFoundError:
            return False

    def discard(self) -> None:
        """Drop a journal whose rewind never started changing the target."""
        self.complete()

    def _write(self, name: str, data: bytes) -> None:
        path = os.path.join(self.dir, name)
        temp = path + ".tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            if self.sync:
                os.fsync(handle.fileno())
        os.replace(temp, path)

    def _sync_dir(self, path: str) -> None:
        if self.sync:
            fsync_path(path, directory=True)

    def begin(self, state: dict, blocks: ChangedBlocks, dir_mode: int) -> None:
        """Make the journal durable, then take pg_control out of place: from here on
        PostgreSQL will not start the target until the rewind is complete."""
        os.makedirs(self.dir, dir_mode, exist_ok=True)
        faults.step("journal")
        self._write(BLOCKS_FILE, blocks.to_bytes())
        self._write(STATE_FILE, json.dumps(dict(state, format=FORMAT), indent=1,
                                           sort_keys=True).encode())
        self._sync_dir(self.dir)
        self._sync_dir(self.pgdata)
        control = os.path.join(self.pgdata, CONTROL_PATH)
        faults.step("set pg_control aside")
        if os.path.exists(control):
            os.replace(control, os.path.join(self.dir, ORIGINAL_CONTROL))
            self._sync_dir(os.path.dirname(control))
            self._sync_dir(self.dir)

    def update(self, **changes) -> None:
        faults.step("journal update")
        state = self.load()
        state.update(changes)
        self._write(STATE_FILE, json.dumps(state, indent=1, sort_keys=True).encode())

    def load(self) -> dict:
        with open(os.path.join(self.dir, STATE_FILE)) as handle:
            return json.load(handle)

    def load_blocks(self) -> ChangedBlocks:
        with open(os.path.join(self.dir, BLOCKS_FILE), "rb") as handle:
            return ChangedBlocks.from_bytes(handle.read())

    def complete(self) -> None:
        """The rewind is done (the new pg_control is in place): drop the journal."""
        faults.step("journal complete")
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)
        self._sync_dir(self.pgdata)
