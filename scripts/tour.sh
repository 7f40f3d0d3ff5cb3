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

"$bin/fake-device" serve --fleet fixtures/fleets/tour.toml --cloud 127.0.0.1:0 >"$fleet_out" &
fleet_pid=$!
trap 'kill "$fleet_pid" 2>/dev/null || true; rm -rf "$home"' EXIT

# The fleet prints one JSON line per device once every socket is bound,
# then one for the simulated cloud.
for _ in $(seq 1 100); do
  [ "$(wc -l <"$fleet_out")" -ge 7 ] && break
  kill -0 "$fleet_pid" 2>/dev/null || { echo "fake-device failed to start" >&2; exit 1; }
  sleep 0.1
done

field() { # field NAME KEY: read a value from the fleet's ready lines
  python3 -c 'import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l)
    if d.get("name")==sys.argv[2]: print(d[sys.argv[3]])' "$fleet_out" "$1" "$2"
}
ip_of() { field "$1" addr | cut -d: -f1; }

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }
mijia() { "$bin/mijia" "$@"; }

echo "Simulated home is up:"
cat "$fleet_out"

add() { # add NAME ROOM: register a fleet device by name; its model is asked from it
  step mijia device add "$1" --ip "$(ip_of "$1")" --token "$(field "$1" token)" --room "$2"
}

echo
echo "Find them: a hello to every address of the block, merged by device id."
echo "The unprovisioned plug gives its token away in its hello reply:"
step mijia discover --sweep 127.0.10.0/24 --timeout 2
echo
echo "The same by broadcast (on loopback here; 255.255.255.255 by default at home):"
step mijia discover --broadcast 127.255.255.255 --timeout 1

echo
echo "Register the devices by name (mijia asks each one for its model):"
add kitchen-light Kitchen
add living-room-purifier "Living room"
add desk-plug Office
add bedroom-sensor Bedroom
add hall-bulb Hall
step mijia device list

echo
echo "Devices by name: status, several properties in one request, read-back:"
step mijia status kitchen-light
step mijia set kitchen-light light.brightness=40 light.on=on
step mijia get kitchen-light light.brightness light.color-temperature
step mijia action kitchen-light toggle
step mijia set living-room-purifier mode=sleep
step mijia --json get kitchen-light light.brightness

echo
echo "A legacy (pre-MIoT) lamp, by name too:"
step mijia status hall-bulb
step mijia set hall-bulb power=on brightness=60
step mijia raw hall-bulb get_prop '["power","bright"]'

echo
echo "Rooms and the whole home:"
step mijia status --room Kitchen
step mijia status --all

echo
echo "Scripts: wait for a condition (exit 0, or 7 on timeout), then scenes:"
step mijia wait kitchen-light light.brightness '>=' 40 --timeout 3
step mijia wait kitchen-light light.brightness '>' 90 --timeout 1 || echo "exit code $?"
mkdir -p "$MIJIA_HOME/config"
cat >"$MIJIA_HOME/config/scenes.toml" <<'TOML'
[[scene]]
name = "evening"
description = "Warm light in the kitchen, the purifier quiet, the desk plug off"

[[scene.step]]
set = { device = "kitchen-light", values = { "light.on" = true, "light.brightness" = 30 } }

[[scene.step]]
parallel = [
  { set = { device = "living-room-purifier", values = { "air-purifier.mode" = "sleep" } } },
  { set = { device = "desk-plug", values = { "switch.on" = false } } },
]

[[scene.step]]
wait = { device = "kitchen-light", property = "light.brightness", op = "==", value = 30, timeout = "5s" }
TOML
step mijia scene list
step mijia scene run evening --dry-run
step mijia scene run evening

echo
echo "AI assistants: nothing is shared until you say so; then \`mijia mcp\` serves it."
step mijia policy expose --room Kitchen
printf '\n\033[1m$ %s\033[0m\n' "mijia tools --format openai | head -20"
mijia tools --format openai | head -20

echo
echo "The Xiaomi cloud (simulated, on loopback): log in, list, import, and a second route."
cloud_line=$(grep '"cloud"' "$fleet_out")
cloud_field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$cloud_line" "$1"; }
export MIJIA_CLOUD_ACCOUNT_URL="$(cloud_field cloud)"
export MIJIA_CLOUD_API_URL="$(cloud_field api)"
export MIJIA_CLOUD_STS_URL="$(cloud_field sts)"
printf '\n\033[1m$ %s\033[0m\n' "echo '********' | mijia cloud login --user demo@example.com --password-stdin"
echo 'tour-password' | mijia cloud login --user demo@example.com --password-stdin
step mijia cloud status
step mijia cloud devices
step mijia cloud import
step mijia --via cloud get kitchen-light light.brightness light.on
step mijia --via cloud --json set kitchen-light light.brightness=55

echo
echo "What mijia knows about a model:"
printf '\n\033[1m$ %s\033[0m\n' "mijia spec yeelink.light.color1 | head -24"
mijia spec yeelink.light.color1 | head -24

echo
echo "Values are checked before anything is sent (exit code 2):"
step mijia set kitchen-light light.brightness=500 || echo "exit code $?"
echo
echo "A device can still be given by address; a wrong token is reported as such (exit code 4):"
light_ip=$(ip_of kitchen-light)
step mijia --ip "$light_ip" --token 00000000000000000000000000000000 --timeout 0.3 info || echo "exit code $?"
echo
echo "Tour finished."
