# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run context: what the steps of one run share, passed as one value.

The orchestrator's steps, the finish and the clone read the same few things -- the
options, the target data directory, the open source, the phase timer, the result
being built, the WAL reservation -- and used to take them as seven to nine
positional arguments. Only the steps take a `Run`; decisions take plain values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..runtime.progress import PhaseTimer
from ..source.interface import Source
from ..standby.walreserve import WalReservation
from ..target.directory import TargetDirectory


@dataclass
class Run:
    options: object                     # options.RewindOptions (the top level owns it)
    pgdata: str                         # the target data directory, absolute
    timer: PhaseTimer
    result: dict                        # the result summary, filled in as the run goes
    target: Optional[TargetDirectory] = None   # None while an interrupted clone completes
    source: Optional[Source] = None             # open from the facts step on
    reservation: Optional[WalReservation] = None

    @property
    def standby_slot(self) -> Optional[str]:
        """primary_slot_name for the standby configuration: the slot, when it is kept."""
        kept = self.reservation is not None and self.reservation.keep
        return self.reservation.name if kept else None
