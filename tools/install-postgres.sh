#!/usr/bin/env bash
# Install the PostgreSQL server the storage tests start (tests/support/postgres.py): Debian's `postgresql` package.
#
#   bash tools/install-postgres.sh
#
# Idempotent: does nothing when initdb and pg_ctl are already there (on PATH, in /usr/lib/postgresql/*/bin, or in
# /usr/local/bin). Otherwise, as root, runs `apt-get update` and `apt-get install postgresql`. The tests start their
# own throwaway server in a temporary directory (as the user `nobody` when run as root) on a free loopback port;
# they never use the cluster the Debian package may create and start on port 5432.
# Exits non-zero with a sentence saying why when it cannot install it.
set -euo pipefail

say() { echo "install-postgres: $*" >&2; }

find_bin() {
  local dir candidate
  if candidate=$(command -v initdb 2>/dev/null); then
    dir=$(dirname "$(readlink -f "$candidate")")
    if [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn) /usr/local/bin /usr/local/pgsql/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

if bin=$(find_bin); then
  say "$("$bin/initdb" --version 2>/dev/null || echo PostgreSQL) is already installed in $bin."
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "initdb and pg_ctl are missing and this is not root, so PostgreSQL cannot be installed here."
  say "Ask an administrator to run: apt-get update && apt-get install -y postgresql"
  exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
  say "initdb and pg_ctl are missing and there is no apt-get (not a Debian/Ubuntu machine); install the"
  say "PostgreSQL server binaries (initdb, pg_ctl, postgres) so that initdb is on PATH, or skip the PostgreSQL tests."
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
say "installing Debian's postgresql package (apt-get update, then apt-get install postgresql) ..."
if ! apt-get update -qq; then
  say "apt-get update failed: the Debian package mirrors cannot be reached; PostgreSQL was not installed."
  exit 1
fi
if ! apt-get install -y -qq --no-install-recommends postgresql >/dev/null; then
  say "apt-get install postgresql failed (see above); PostgreSQL was not installed."
  exit 1
fi

if ! bin=$(find_bin); then
  say "the postgresql package installed, but initdb and pg_ctl are still not found."
  exit 1
fi
say "installed $("$bin/initdb" --version 2>/dev/null || echo PostgreSQL) in $bin."
