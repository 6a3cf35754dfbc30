"""module_defaults for the action group pgops.rewind.all: the connection set once in a
play reaches every module of the collection (meta/runtime.yml), a task's own value
still wins, and the password in it stays out of every output."""

import json
import os
import re

import pytest

from support.ansible import run_module, run_playbook
from support.env import TEST_PASSWORD, pg_os_user
from support.scenarios import failover

SLOT = "pgops_group_defaults"
PLAYBOOK = """---
- name: Rejoin with the connection given once for the collection
  hosts: localhost
  connection: local
  gather_facts: false
  become: "{{ as_owner }}"
  become_user: "{{ owner }}"
  become_method: su
  module_defaults:
    group/pgops.rewind.all:
      source_server: "{{ source }}"
      connect_timeout: 7
      source_timeout: 11
  tasks:
    - name: Plan the rejoin
      pgops.rewind.pg_rewind_info:
        target_pgdata: "{{ pgdata }}"
      register: info
    - name: Reserve a slot
      pgops.rewind.pg_physical_slot:
        name: %(slot)s
      register: slot
    - name: Rewind, with a source_timeout of the task's own
      pgops.rewind.pg_rewind:
        target_pgdata: "{{ pgdata }}"
        reserve_wal: false
        sync: false
        source_timeout: 13
      register: rewound
    - name: Drop the slot
      pgops.rewind.pg_physical_slot:
        name: %(slot)s
        state: absent
      register: dropped
    - name: Report
      ansible.builtin.copy:
        content: "{{ {'info': info, 'slot': slot, 'rewound': rewound, 'dropped': dropped} | to_json }}"
        dest: "{{ report }}"
        mode: "0644"
      become: false
""" % {"slot": SLOT}


@pytest.mark.parametrize("major", [11, 15, 18])
def test_group_defaults_reach_every_module(bed, collection, tmp_path, major):
    fo = failover(bed, major)
    new = fo.new_primary
    playbook, report = tmp_path / "defaults.yml", tmp_path / "report.json"
    playbook.write_text(PLAYBOOK)
    # Trust authentication ignores the password; it is there to be kept out of the output.
    source = new.conninfo() + " password=" + TEST_PASSWORD
    run = run_playbook(str(playbook), {"pgdata": str(fo.old_primary.datadir), "source": source,
                                       "report": str(report), "owner": pg_os_user(),
                                       "as_owner": os.geteuid() == 0},
                       env={"ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.minimal",
                            "ANSIBLE_VERBOSITY": "3"})    # -vvv: results show module_args
    assert run["rc"] == 0, run["stdout"][-4000:] + run["stderr"][-2000:]
    text = report.read_text()
    assert TEST_PASSWORD not in text + run["stdout"] + run["stderr"]
    results = json.loads(text)
    info, slot, rewound, dropped = (results[k] for k in ("info", "slot", "rewound", "dropped"))

    # Each module connected to the source named only in the group's defaults.
    assert info["rewind_required"] is True and info["plan"]["path"] == "rewind", info
    assert info["source"]["pg_major"] == major
    assert slot["changed"] is True and slot["slot_name"] == SLOT
    assert rewound["changed"] is True and rewound["rewind_required"] is True
    assert rewound["bytes_fetched"] > 0
    assert dropped["changed"] is True
    assert new.scalar("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s",
                      (SLOT,)) == 0

    # And took the group's timeouts, except where the task set its own.
    module_args = _module_args(run["stdout"])
    assert [args["source_timeout"] for args in module_args] == [11, 11, 13, 11], module_args
    for args in module_args:
        assert args["connect_timeout"] == 7, args
        assert args["source_server"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", args


def _module_args(stdout: str) -> list:
    """The arguments each pgops.rewind task's module ran with, in order, from the minimal
    callback's -vvv output (registered results leave them out)."""
    found = []
    for match in re.finditer(r"^localhost \| [A-Z]+ => (\{.*?^\})$", stdout, re.M | re.S):
        args = json.loads(match.group(1)).get("invocation", {}).get("module_args", {})
        if "source_server" in args:
            found.append(args)
    return found


def test_slot_module_keeps_its_old_option_name(bed, collection):
    """pg_physical_slot's connection string was `server` in 0.1.0; it still works."""
    node = bed.cluster("node", 15).init()
    node.start()
    created = run_module("pg_physical_slot", {"server": node.conninfo(), "name": SLOT})
    assert not created.get("failed"), created
    assert created["changed"] is True
    assert node.scalar("SELECT slot_type FROM pg_replication_slots WHERE slot_name = %s",
                       (SLOT,)) == "physical"
    again = run_module("pg_physical_slot", {"source_server": node.conninfo(), "name": SLOT,
                                            "state": "absent", "connect_timeout": -1})
    assert again["failed"] and again["error_code"] == "bad_parameters"
    assert "connect_timeout must not be negative" in again["msg"]
