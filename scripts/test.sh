#!/usr/bin/env bash
# Run every test of the workspace, as CI does. Works on a fresh machine that
# has the Rust toolchain: everything else the tests need is installed here.
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests only ever talk to loopback; make sure it is up (it always is on a
# normal machine, but minimal containers sometimes start without it).
if command -v ip >/dev/null 2>&1; then ip link set lo up 2>/dev/null || true; fi

# Many simulated devices, each with its own socket.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# The MCP interop tests drive the server with the official Python client,
# installed into .venv-interop/ (idempotent; fails loudly if it cannot).
./scripts/setup-interop.sh

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
