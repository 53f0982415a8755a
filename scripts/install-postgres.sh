#!/usr/bin/env bash
# Installs Debian's PostgreSQL server when it is missing: the store tests start a throwaway
# cluster from its binaries (tests/pg_support.py). The package's own cluster is not used.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ -n "${PAPERWIRE_PG_BIN:-}" ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
else
  echo "warning: no PostgreSQL and no apt-get: PostgreSQL store tests will be skipped (they fail under CI=true)" >&2
fi
