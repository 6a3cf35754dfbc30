# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Timeouts, progress reporting, private scratch files, fault injection: what any run needs,
nothing about PostgreSQL.
"""
