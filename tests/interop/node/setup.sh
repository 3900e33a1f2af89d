#!/usr/bin/env bash
# Installs tests/interop/node/node_modules (firebase-admin, pinned by package-lock.json) for
# the Node interop tests. Idempotent: does nothing when node_modules matches the lock file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stamp="$here/node_modules/.package-lock-installed"
if [ -f "$stamp" ] && cmp -s "$stamp" "$here/package-lock.json"; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm (Node.js 20 or later) is required for the Node interop tests" >&2; exit 1; }
cd "$here"
npm ci --no-audit --no-fund --loglevel=error
cp "$here/package-lock.json" "$stamp"
