# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors the engine raises on purpose.

Every one carries a stable `code` (for tests, the troubleshooting table and
automation), a message that says what is wrong, and a `hint` that tells the
operator what to do next. Anything else escaping the engine is a bug.
"""

from __future__ import annotations


class RewindError(Exception):
    """An error an operator can act on."""

    code = "rewind_error"
    hint = ""

    def __init__(self, message, hint=None, code=None, **details):
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        if code is not None:
            self.code = code
        self.details = details

    def __str__(self):
        if self.hint:
            return "%s %s" % (self.message, self.hint)
        return self.message

    def as_dict(self):
        return {"code": self.code, "message": self.message, "hint": self.hint}


class ControlFileError(RewindError):
    code = "control_file"
    hint = ("Check that the path is a PostgreSQL data directory of a supported major "
            "(11-18) and that global/pg_control is intact.")


class TimelineError(RewindError):
    code = "timeline"


class WalError(RewindError):
    """The WAL cannot be read where it must be: corrupt, from another cluster, or cut short."""

    code = "wal_corrupt"
    hint = ("The target's WAL is damaged or incomplete here; restore the named segment "
            "from a WAL archive, or rebuild the node from a base backup.")


class MissingWalError(WalError):
    """A WAL segment the rewind must read is not there."""

    code = "wal_missing"
    hint = ("Copy the segment into the target's pg_wal from your WAL archive, or give "
            "restore_command (or restore_target_wal: true) so the rewind can fetch it.")


class SourceError(RewindError):
    code = "source"


class RefusedError(RewindError):
    """A precondition does not hold; nothing was changed."""

    code = "refused"
