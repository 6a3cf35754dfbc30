"""The role against a new primary that accepts only TLS (hostssl, client certificates):
a CA that did not sign its certificate fails the play in the preflight with the node
untouched; the right one rejoins it, and the standby streams over TLS."""

from support.ansible import run_playbook
from support.digest import datadir_digest, differences
from support.scenarios import failover
from support.tls import tls_only, walsender_tls

from role.test_role import PLAYBOOK, _assert_rejoined, _changed, _vars


def test_role_rejoins_over_verified_tls(bed, collection):
    fo = failover(bed, 15)
    tls = tls_only(fo.new_primary, bed.home / "new-primary-tls")
    tls_vars = {"pg_rewind_source_user": tls.user,
                "pg_rewind_source_sslcert": str(tls.client.cert),
                "pg_rewind_source_sslkey": str(tls.client.key),
                "pg_rewind_timeout": 600, "pg_rewind_connect_timeout": 10}
    before = datadir_digest(fo.old_primary.datadir)

    refused = run_playbook(str(PLAYBOOK), _vars(
        fo, pg_rewind_source_sslrootcert=str(tls.impostor_ca.cert), **tls_vars))
    assert refused["rc"] != 0
    assert "source_tls_failed" in refused["stdout"], refused["stdout"][-4000:]
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    assert not fo.old_primary.is_alive()

    joined = run_playbook(str(PLAYBOOK), _vars(
        fo, pg_rewind_source_sslrootcert=str(tls.ca.cert), **tls_vars))
    assert _changed(joined) > 0
    _assert_rejoined(fo)
    conf = (fo.old_primary.datadir / "postgresql.auto.conf").read_text()
    assert "sslmode=verify-full" in conf and str(tls.ca.cert) in conf
    senders = walsender_tls(fo.new_primary)
    assert [(user, ssl) for user, ssl, _version in senders] == [(tls.user, True)], senders
