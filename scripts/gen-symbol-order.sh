#!/usr/bin/env bash
# Regenerates scripts/symbol-order.txt, the order of the functions in the release binary's .text
# (lld --symbol-ordering-file; see the `release` target in the Makefile). Run it through `make symbol-order`, which passes RELEASE_FLAGS.
#
# 1. Relinks the release binary with a map file (only the link runs: same flags as `make release`).
# 2. Runs it under scripts/trace-functions.py (a one-shot breakpoint on every function) for
#    TRACE_SECONDS, against a mosquitto of its own on a free port and the Docker engine at
#    DOCKER_URL, with a `status` command half-way: start-up, the first statuses, a command, idle.
# 3. scripts/symbol-order.py keeps the functions it entered, in the order first entered, then the
#    rest of the package's functions, and writes scripts/symbol-order.txt.
# 4. Relinks without the map, with the new order.
# The trace is of the machine's own containers and events: the order differs a little from run to
# run, not what it is for (hot code together). Needs python3, mosquitto, mosquitto_pub.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RELEASE_FLAGS:?run it through make symbol-order}"
SWIFT=${SWIFT:-swift}
DOCKER_URL=${DOCKER_URL:-unix:///var/run/docker.sock}
TRACE_SECONDS=${TRACE_SECONDS:-10}
work=$(mktemp -d)
mq=""
cleanup() { [ -n "$mq" ] && kill "$mq" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

# shellcheck disable=SC2086 # RELEASE_FLAGS is a list of flags
$SWIFT build -c release $RELEASE_FLAGS -Xlinker -Map="$work/link.map" -Xlinker --no-demangle
# shellcheck disable=SC2086
bin="$($SWIFT build -c release $RELEASE_FLAGS --show-bin-path)/idlewatcher-bridge"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$port" >"$work/mosquitto.log" 2>&1 &
mq=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
cat >"$work/config.yaml" <<YAML
bridge:
  id: symbol-order
mqtt:
  url: mqtt://127.0.0.1:$port
docker:
  - url: $DOCKER_URL
YAML

python3 scripts/trace-functions.py --seconds "$TRACE_SECONDS" --at $((TRACE_SECONDS / 2)) \
  --then "mosquitto_pub -p $port -q 1 -t idlewatcher/docker/symbol-order-probe/command -m status" \
  --log "$work/bridge.log" -- "$bin" --config "$work/config.yaml" --log-level warning >"$work/trace.txt"
grep -q "symbol-order-probe" "$work/bridge.log" || { echo "the traced bridge did not answer the command:" >&2; cat "$work/bridge.log" >&2; exit 1; }
python3 scripts/symbol-order.py "$work/link.map" "$work/trace.txt" >scripts/symbol-order.txt.new
mv scripts/symbol-order.txt.new scripts/symbol-order.txt
# shellcheck disable=SC2086
$SWIFT build -c release $RELEASE_FLAGS
echo "scripts/symbol-order.txt: $(wc -l <scripts/symbol-order.txt) names"
