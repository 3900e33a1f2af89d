#!/usr/bin/env bash
# Makes sure the PostgreSQL the tests use answers at 127.0.0.1:5432 (user postgres, database
# test, trust auth on loopback), as this project's machines provide it. On a machine without
# it: starts an installed server, or installs Debian's, and sets it up the same way.
set -euo pipefail

ready() { pg_isready -q -h 127.0.0.1 -p 5432 -U postgres 2>/dev/null; }

if command -v pg_isready >/dev/null && ready; then
  echo "PostgreSQL answers at 127.0.0.1:5432"
else
  if ! command -v pg_ctlcluster >/dev/null; then
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
  fi
  hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
  if ! grep -q "pushgate tests" "$hba"; then
    # Trust on loopback only, first so that it wins.
    sed -i '1i host all all 127.0.0.1/32 trust # pushgate tests' "$hba"
  fi
  service postgresql start || pg_ctlcluster "$(basename "$(dirname "$(dirname "$hba")")")" main start
  for _ in $(seq 1 30); do ready && break; sleep 1; done
  ready || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
fi
echo "database test ready"
