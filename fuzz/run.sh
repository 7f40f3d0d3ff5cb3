#!/usr/bin/env bash
# Run one fuzz target on stable Rust for a fixed time (default 60 s).
#   fuzz/run.sh packet      # or: payload, dns
#   SECONDS_BUDGET=300 fuzz/run.sh payload
# Installs cargo-fuzz if missing. The committed seeds in fuzz/seeds/TARGET are
# copied into a scratch corpus so the run never rewrites them.
set -euo pipefail
target=${1:-packet}
budget=${SECONDS_BUDGET:-60}
here=$(cd "$(dirname "$0")" && pwd)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp "$here/seeds/$target/"* "$corpus/"
cd "$here"
# --sanitizer none keeps the build on the stable toolchain.
cargo fuzz run --sanitizer none -O "$target" "$corpus" -- -max_total_time="$budget"
