# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The formats of a PostgreSQL cluster: LSNs, CRC-32C, pg_control, per-major tables, the data-
directory vocabulary, changed-block maps, timelines.
"""
