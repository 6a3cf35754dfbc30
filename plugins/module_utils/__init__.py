# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pgops.rewind engine: a pure-Python pg_rewind for PostgreSQL 11-18.

One module per concept (see docs/ and ../DESIGN): nothing here imports Ansible.
"""
