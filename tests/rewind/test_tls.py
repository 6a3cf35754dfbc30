"""TLS to the source (issue 12, item 8): a new primary that accepts only hostssl. The
module connects with sslmode=verify-full, a CA file and a client certificate; the
rewound standby streams over TLS; every certificate or setting that does not verify
is a clear refusal that leaves the target byte for byte as it was."""

import os

import pytest

from support.ansible import run_module
from support.digest import datadir_digest, differences
from support.rewound import assert_follows_and_matches
from support.scenarios import failover
from support.tls import conninfo, tls_only, walsender_tls


def _refused(fo, source_server, before):
    result = run_module("pg_rewind", {"target_pgdata": str(fo.old_primary.datadir),
                                      "source_server": source_server,
                                      "write_recovery_conf": True, "sync": False})
    assert result["failed"], result
    assert differences(before, datadir_digest(fo.old_primary.datadir)) == []
    return result


@pytest.mark.parametrize("major", [15])
def test_rewind_over_verified_tls_refusing_what_does_not_verify(bed, collection, major):
    fo = failover(bed, major)
    tls = tls_only(fo.new_primary, bed.home / "new-primary-tls")
    before = datadir_digest(fo.old_primary.datadir)

    wrong_ca = _refused(fo, conninfo(fo.new_primary, tls, ca=tls.impostor_ca), before)
    assert wrong_ca["error_code"] == "source_tls_failed", wrong_ca
    assert "certificate verify failed" in wrong_ca["msg"]

    wrong_host = _refused(fo, conninfo(fo.new_primary, tls, host="db.invalid",
                                       hostaddr="127.0.0.1"), before)
    assert wrong_host["error_code"] == "source_tls_failed", wrong_host
    assert "does not match host name" in wrong_host["msg"]

    plain = _refused(fo, conninfo(fo.new_primary, tls, sslmode="disable", sslrootcert=None,
                                  sslcert=None, sslkey=None), before)
    assert plain["error_code"] == "source_tls_required", plain

    weak = _refused(fo, conninfo(fo.new_primary, tls, ca=tls.impostor_ca, sslmode="prefer"),
                    before)
    assert weak["error_code"] == "source_tls_weak", weak

    os.chmod(tls.client.key, 0o644)
    try:
        open_key = _refused(fo, conninfo(fo.new_primary, tls), before)
    finally:
        os.chmod(tls.client.key, 0o600)
    assert open_key["error_code"] == "source_tls_files", open_key
    assert "group or world access" in open_key["msg"]

    info = run_module("pg_rewind_info", {"target_pgdata": str(fo.old_primary.datadir),
                                         "source_server": conninfo(fo.new_primary, tls,
                                                                   ca=tls.impostor_ca)})
    assert info["failed"] and info["error_code"] == "source_tls_failed", info

    result = run_module("pg_rewind", {"target_pgdata": str(fo.old_primary.datadir),
                                      "source_server": conninfo(fo.new_primary, tls),
                                      "write_recovery_conf": True, "sync": False})
    assert not result["failed"] and result["changed"], result
    assert result["source_tls"]["in_use"] is True
    assert result["source_tls"]["sslmode"] == "verify-full"
    assert_follows_and_matches(fo)
    senders = walsender_tls(fo.new_primary)
    assert [(user, ssl) for user, ssl, _version in senders] == [("rewinder", True)], senders
    assert senders[0][2].startswith("TLSv1.")
