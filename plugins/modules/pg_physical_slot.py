#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: pgops.rewind developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_physical_slot
short_description: Ensure a physical replication slot exists on the new primary
version_added: 0.1.0
description:
  - Creates (or drops) a physical replication slot, reserving WAL from the moment it is created,
    so a rewound standby that uses it never misses WAL it still needs.
  - Used by the role M(pgops.rewind.pg_rewind) to check, before it stops anything, that the source
    role may manage slots (check mode), to make sure the standby's slot exists, and to drop the slot
    that reserved WAL for the rewind once it is no longer needed.
  - A role without the REPLICATION attribute (nor superuser) is refused, also in check mode
    (error code C(source_no_replication)).
  - O(source_server) was called C(server) before version 0.2.0, which is still accepted.
options:
  source_server:
    required: true
    aliases: [server]
  name:
    description: Slot name (lower-case letters, digits, underscores).
    type: str
    required: true
  state:
    description: Whether the slot should exist.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - psycopg2 on the managed node
author:
  - pgops.rewind developers (@pgops)
extends_documentation_fragment:
  - pgops.rewind.connection
"""

EXAMPLES = r"""
- name: A slot for the rejoining node
  pgops.rewind.pg_physical_slot:
    source_server: "host=db2.example.com user=replicator dbname=postgres"
    name: db1
"""

RETURN = r"""
slot_name:
  description: The slot.
  returned: success
  type: str
active:
  description: Whether a standby is using it right now.
  returned: success
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    check_connection, connection_argument_spec, run_engine, source_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.slots import ensure_physical_slot


def main():
    argument_spec = connection_argument_spec()
    argument_spec["source_server"].update(required=True, aliases=["server"])
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    check_connection(module)
    result = run_engine(module, lambda: ensure_physical_slot(
        source_conninfo(params), params["name"], params["state"] == "present", module.check_mode,
        connect_timeout=params["connect_timeout"], statement_timeout=params["source_timeout"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
