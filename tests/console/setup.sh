#!/usr/bin/env bash
# Installs tests/console/node_modules (playwright-core and axe-core, pinned by
# package-lock.json) for the console's browser tests. Playwright never downloads a browser
# here: the tests drive Debian's /usr/bin/chromium. Idempotent: does nothing when
# node_modules matches the lock file.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
stamp="$here/node_modules/.package-lock-installed"
if [ -f "$stamp" ] && cmp -s "$stamp" "$here/package-lock.json"; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm (Node.js 20 or later) is required for the console browser tests" >&2; exit 1; }
cd "$here"
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
cp "$here/package-lock.json" "$stamp"
