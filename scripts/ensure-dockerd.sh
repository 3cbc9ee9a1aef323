#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock; starts dockerd by hand if needed
# (machines without systemd, CI). Waits up to 60 s for it.
set -euo pipefail
ping() { curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null 2>&1; }
ping && exit 0
if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo systemctl start docker || true
fi
if ! ping; then
  echo "starting dockerd (log: /tmp/dockerd.log)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo sh -c 'setsid dockerd >/tmp/dockerd.log 2>&1 < /dev/null &'
fi
for _ in $(seq 1 120); do ping && exit 0; sleep 0.5; done
echo "dockerd did not come up; see /tmp/dockerd.log" >&2
tail -20 /tmp/dockerd.log >&2 || true
exit 1
