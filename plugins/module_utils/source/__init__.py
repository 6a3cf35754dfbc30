# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The new primary, read through one small interface: a local data directory or a running
server (libpq), the one way to open a session to a server.
"""
