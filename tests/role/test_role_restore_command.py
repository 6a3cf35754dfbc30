"""The role's pg_rewind_restore_command may carry archive credentials: even at -vvv,
where Ansible prints every task's arguments, it shows nowhere (the session's secret
check also greps ansible.log and the server logs for it)."""

from support.ansible import run_playbook
from support.env import TEST_PASSWORD
from support.scenarios import failover

from test_role import PLAYBOOK, _assert_rejoined, _changed, _vars  # pylint: disable=import-error


def test_restore_command_stays_secret_at_high_verbosity(bed, collection):
    fo = failover(bed, 15)
    command = ("test -f /nonexistent/%%f && wal-fetch --s3-secret-key=%s %%f %%p"
               % TEST_PASSWORD)
    result = run_playbook(str(PLAYBOOK), _vars(fo, pg_rewind_restore_command=command),
                          env={"ANSIBLE_VERBOSITY": "3"})
    assert _changed(result) > 0
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in result["stdout"], "-vvv shows arguments"
    for text in (result["stdout"], result["stderr"]):
        assert TEST_PASSWORD not in text
        assert "wal-fetch" not in text
    conf = (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    assert "wal-fetch" in conf, "the standby got its restore_command all the same"
    _assert_rejoined(fo)
