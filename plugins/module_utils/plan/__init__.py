# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Facts in, plan out: facts, preconditions, interrupted runs, the survey, the file map, WAL
copy rules, the assessment (path choice, preflight).
"""
