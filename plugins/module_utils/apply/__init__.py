# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Carrying a plan out: executing it, finishing (backup label, pg_control, standby
configuration), the clone.
"""
