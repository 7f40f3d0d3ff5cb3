#!/usr/bin/env bash
# Creates the Python virtual environment used by the MCP interop tests
# (`tests/interop/*.py`) and installs the official Python MCP client into it.
#
#   scripts/setup-interop.sh            # creates .venv-interop/ at the repo root
#   MIJIA_INTEROP_VENV=/path scripts/setup-interop.sh
#
# Idempotent: if the venv already has the pinned client, it does nothing.
# Packages come from PyPI only. Exits non-zero, with the reason on stderr,
# if Python or the install is not available; the tests then fail with it.
set -euo pipefail

MCP_VERSION="2.3.0"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MIJIA_INTEROP_VENV:-$root/.venv-interop}"
python="${PYTHON:-python3}"

have_client() {
    [ -x "$venv/bin/python" ] &&
        "$venv/bin/python" - "$MCP_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version("mcp") == sys.argv[1] else 1)
PY
}

if have_client; then
    exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
    echo "setup-interop: $python not found; install Python 3.10 or newer" >&2
    exit 1
fi

# Several test processes may call this at once: one installs, others wait.
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if have_client; then
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" || {
        echo "setup-interop: cannot create a venv at $venv (is python3-venv installed?)" >&2
        exit 1
    }
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "mcp==$MCP_VERSION" || {
    echo "setup-interop: pip could not install mcp==$MCP_VERSION from PyPI" >&2
    exit 1
}
have_client || {
    echo "setup-interop: mcp==$MCP_VERSION is not importable after install" >&2
    exit 1
}
