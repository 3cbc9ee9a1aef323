#!/usr/bin/env bash
# Makes sure an MQTT broker listens on 127.0.0.1:1883 (for `make run`); starts mosquitto if not.
set -euo pipefail
listening() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
listening && exit 0
echo "starting mosquitto on 127.0.0.1:1883 (config/mosquitto/dev.conf, log: /tmp/mosquitto-dev.log)"
setsid mosquitto -c config/mosquitto/dev.conf >/tmp/mosquitto-dev.log 2>&1 < /dev/null &
for _ in $(seq 1 50); do listening && exit 0; sleep 0.1; done
echo "mosquitto did not start; see /tmp/mosquitto-dev.log" >&2
exit 1
