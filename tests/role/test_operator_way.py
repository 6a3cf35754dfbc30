"""The job run the way operators run it: root runs ansible-playbook with the shipped
playbook, by its collection name, against an inventory file; become (su or sudo) to the
data directory's owner; the collection installed from its tarball; the passwords from an
Ansible Vault file, with quotes, backslashes and spaces in them. The new primary accepts
only password logins (scram) from the rewind and replication roles."""

import os
import subprocess

import pytest

from support.ansible import ansible_env
from support.compare import compare
from support.env import TEST_PASSWORD, VENV_PYTHON
from support.roles import HOSTILE_PASSWORD, password_only_rewind_role
from support.scenarios import failover

from ansible_collections.pgops.rewind.plugins.module_utils.runtime.progress import default_path

# Contains the suite's secret marker, so any leak of it is caught by the secret check.
VAULT_SECRET = "vault-key-for-the-test"


@pytest.mark.parametrize("become_method", ["su", "sudo"])
def test_root_runs_the_shipped_playbook_with_vaulted_passwords(bed, collection, become_method):
    fo = failover(bed, 16)
    old, new = fo.old_primary, fo.new_primary
    password_only_rewind_role(new)
    home = bed.home
    (home / "vault-pass").write_text(VAULT_SECRET + "\n")
    secrets = home / "secrets.yml"
    secrets.write_text("pg_rewind_source_password: %s\npg_rewind_replication_password: %s\n"
                       % ((_yaml_quoted(HOSTILE_PASSWORD),) * 2))
    subprocess.run([str(VENV_PYTHON.parent / "ansible-vault"), "encrypt", str(secrets),
                    "--vault-password-file", str(home / "vault-pass")], check=True,
                   env=ansible_env(), capture_output=True)
    assert TEST_PASSWORD not in secrets.read_text()
    (home / "inventory").write_text(
        "[old_primary]\ndb1 ansible_connection=local pg_address=127.0.0.1 pg_port=%d\n"
        "[new_primary]\ndb2 ansible_connection=local pg_address=127.0.0.1 pg_port=%d\n"
        % (old.port, new.port))
    cmd = [str(VENV_PYTHON.parent / "ansible-playbook"), "-i", str(home / "inventory"),
           "pgops.rewind.rejoin_old_primary",
           "--vault-password-file", str(home / "vault-pass"), "-e", "@%s" % secrets,
           "-e", "ansible_python_interpreter=%s" % VENV_PYTHON,
           "-e", "ansible_become_method=%s" % become_method,
           "-e", "pg_rewind_pgdata=%s" % old.datadir, "-e", "pg_rewind_bindir=%s" % old.bindir,
           "-e", "pg_rewind_source_user=rewind", "-e", "pg_rewind_local_host=127.0.0.1",
           "-e", "rejoin_fleet_summary_file=%s" % (home / "fleet.json"),
           "-e", "pg_rewind_wait_timeout=120"]
    # sudo resets the environment (the suite's TMPDIR with it): the module keeps its
    # progress file where it does on a real host, in /tmp; it is this test's to remove.
    progress_in_tmp = os.path.join("/tmp", os.path.basename(default_path(str(old.datadir))))
    try:
        proc = subprocess.run(cmd, env=ansible_env({"ANSIBLE_STDOUT_CALLBACK":
                                                    "ansible.builtin.default"}),
                              capture_output=True, text=True, cwd="/tmp", timeout=1200,
                              check=False)
    finally:
        if become_method == "sudo" and os.path.exists(progress_in_tmp):
            os.unlink(progress_in_tmp)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-6000:]
    assert TEST_PASSWORD not in output
    old.running = True
    assert old.in_recovery()
    assert new.scalar("SELECT usename FROM pg_stat_replication WHERE state = 'streaming'") \
        == "rewind"
    new.sql("CREATE TABLE after_vault AS SELECT 1 AS x")
    new.wait_for_replay(old)
    same = compare(new, old, catalogs=True)
    assert same.equal, str(same)


def _yaml_quoted(text: str) -> str:
    """A YAML double-quoted scalar."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
