# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node being rewound: the durable data-directory writer, the journal that makes a run
resumable, the run lock, the node's own commands and server status.
"""
