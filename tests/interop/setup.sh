#!/usr/bin/env bash
# Creates tests/interop/.venv with the third-party clients the interop tests drive.
# Idempotent: does nothing when the venv already holds exactly requirements.txt.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements-installed"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && cmp -s "$stamp" "$here/requirements.txt"; then
  exit 0
fi
command -v python3 >/dev/null || { echo "python3 is required for the interop tests" >&2; exit 1; }
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet -r "$here/requirements.txt"
cp "$here/requirements.txt" "$stamp"
