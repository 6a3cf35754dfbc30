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
  - O(source_server) was called C(server) before version 0.2.0, which is still accepted. The
    source is given by it, by the options beside it (O(login_host), O(login_password), ...), or
    both; one of them is required.
  - Prefer M(community.postgresql.postgresql_slot) to manage slots in general (logical slots,
    C(immediately_reserve) as a choice, any role it can log in as). This module does one thing
    the rejoin needs and is part of the collection's action group, so the role and
    C(module_defaults) for C(group/pgops.rewind.all) reach it with the same connection as
    M(pgops.rewind.pg_rewind). It always reserves WAL at creation (a standby that uses the slot
    never misses WAL it needs), refuses a role without REPLICATION before changing anything (also
    in check mode), refuses a logical slot of the same name, and reports whether a standby uses
    the slot.
options:
  source_server:
    aliases: [server]
    version_added: 0.2.0
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
seealso:
  - module: community.postgresql.postgresql_slot
    description: Manages physical and logical replication slots in general.
  - module: pgops.rewind.pg_rewind
    description: Its O(pgops.rewind.pg_rewind#module:reserve_wal) creates the slot of a rewind itself.
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

- name: The same, with the connection given as community.postgresql's modules take it
  pgops.rewind.pg_physical_slot:
    login_host: db2.example.com
    login_user: replicator
    login_password: "{{ vault_replicator_password }}"
    login_db: postgres
    name: db1

- name: Drop the slot once the node streams (or when it leaves the cluster)
  pgops.rewind.pg_physical_slot:
    login_host: db2.example.com
    login_user: replicator
    login_password: "{{ vault_replicator_password }}"
    name: db1
    state: absent
"""

RETURN = r"""
slot_name:
  description: The slot.
  returned: success
  type: str
  sample: db1
active:
  description: Whether a standby is using it right now (always false with O(state=absent)).
  returned: success
  type: bool
  sample: false
error_code:
  description: Stable code of the error, on failure (see the troubleshooting guide).
  returned: failure
  type: str
  sample: source_no_replication
hint:
  description: What to do about the error, on failure.
  returned: failure
  type: str
source_connection:
  description:
    - Host, port, role and database of the connection to the source, as built from
      O(source_server) and the options beside it (null where libpq's defaults apply). Never
      the password.
  returned: success
  type: dict
  version_added: 0.2.0
  sample: {host: db2.example.com, port: 5432, user: rewind, dbname: postgres}
  contains:
    host: {description: "Host (or socket directory).", type: str, sample: db2.example.com}
    port: {description: "Port.", type: int, sample: 5432}
    user: {description: "Role.", type: str, sample: rewind}
    dbname: {description: "Database.", type: str, sample: postgres}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pgops.rewind.plugins.module_utils.module_support import (
    check_connection, connection_argument_spec, connection_shown, require_source, run_engine,
    source_conninfo)
from ansible_collections.pgops.rewind.plugins.module_utils.standby.slots import ensure_physical_slot


def main():
    argument_spec = connection_argument_spec()
    argument_spec["source_server"].update(aliases=["server"])
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    check_connection(module)
    require_source(module)
    conninfo = source_conninfo(params)
    result = run_engine(module, lambda: ensure_physical_slot(
        conninfo, params["name"], params["state"] == "present", module.check_mode,
        connect_timeout=params["connect_timeout"], statement_timeout=params["source_timeout"]))
    result["source_connection"] = connection_shown(conninfo)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
