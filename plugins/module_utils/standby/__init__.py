# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node as a standby: its configuration, quoting, hot-standby settings, replication slots
and the WAL reserved on the source.
"""
