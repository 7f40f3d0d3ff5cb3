#!/usr/bin/env bash
# A short tour of mijia against a simulated home: starts the fleet in
# fixtures/fleets/tour.toml on loopback (127.0.10.x), runs a few commands
# against it, and stops the fleet again. Nothing leaves 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --locked -p mijia -p fake-device --bins
bin=target/release
home=$(mktemp -d)
export MIJIA_HOME="$home"
fleet_out="$home/fleet.jsonl"

"$bin/fake-device" serve --fleet fixtures/fleets/tour.toml >"$fleet_out" &
fleet_pid=$!
trap 'kill "$fleet_pid" 2>/dev/null || true; rm -rf "$home"' EXIT

# The fleet prints one JSON line per device once every socket is bound.
for _ in $(seq 1 100); do
  [ "$(wc -l <"$fleet_out")" -ge 6 ] && break
  kill -0 "$fleet_pid" 2>/dev/null || { echo "fake-device failed to start" >&2; exit 1; }
  sleep 0.1
done

field() { # field NAME KEY: read a value from the fleet's ready lines
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d["name"]==sys.argv[2]: print(d[sys.argv[3]])' "$fleet_out" "$1" "$2"
}
ip_of() { field "$1" addr | cut -d: -f1; }

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
mijia() { "$bin/mijia" "$@"; }

echo "Simulated home is up:"
cat "$fleet_out"

light_ip=$(ip_of kitchen-light); light_token=$(field kitchen-light token)
bulb_ip=$(ip_of hall-bulb); bulb_token=$(field hall-bulb token)

step mijia --ip "$light_ip" --token "$light_token" info
step mijia --ip "$light_ip" --token "$light_token" get 2.1 2.2 2.3
step mijia --ip "$light_ip" --token "$light_token" set 2.2=40 2.3=3000
step mijia --ip "$light_ip" --token "$light_token" --json get 2.2
step mijia --ip "$light_ip" --token "$light_token" action 2.1
step mijia --ip "$bulb_ip" --token "$bulb_token" raw get_prop '["power","bright"]'
step mijia --ip "$bulb_ip" --token "$bulb_token" raw set_power '["on"]'
echo
echo "A wrong token is reported as such (exit code 4):"
step mijia --ip "$light_ip" --token 00000000000000000000000000000000 --timeout 0.3 info || echo "exit code $?"
echo
echo "Tour finished."
