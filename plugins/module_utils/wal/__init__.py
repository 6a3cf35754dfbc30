# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading WAL: the page and record reader, the record decoder, the changed-block scan, WAL
summaries, the discarded-work count.
"""
