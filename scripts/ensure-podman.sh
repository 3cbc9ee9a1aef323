#!/usr/bin/env bash
# Makes sure a Podman API service answers on /run/podman/podman.sock, idempotently (machines
# without systemd, CI):
#   - installs Debian's `podman` (and busybox-static for the test image) if missing;
#   - gives containers rlimits this kind of sandbox accepts: podman's defaults for root
#     (nofile 1048576, nproc 4194304) are above the hard limits here and runc refuses them
#     ("error setting rlimit type 7: operation not permitted"). A containers.conf drop-in with
#     `default_ulimits` applies to containers made by the CLI and through both APIs
#     (compat and libpod), so nothing has to pass --ulimit or HostConfig.Ulimits;
#   - imports the busybox test image as localhost/idlewatcher-test/busybox:latest if missing;
#   - starts `podman system service --time=0` with setsid if _ping does not answer OK, and waits
#     up to 60 s for it (log: /tmp/podman-service.log).
# docs/podman-notes.md has what the service answers.
set -euo pipefail

socket=/run/podman/podman.sock
image=localhost/idlewatcher-test/busybox:latest
dropin=/etc/containers/containers.conf.d/idlewatcher-ulimits.conf
log=/tmp/podman-service.log
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in podman busybox-static curl; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without package lists (or with stale ones) the install fails: update once and try again.
  if ! $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
command -v podman >/dev/null || { echo "podman is not installed and could not be installed" >&2; exit 1; }

# Rlimits every container gets unless it asks for others (read by the CLI and by the service
# when it starts: a service started before this file existed is restarted below).
want='# idlewatcher-bridge (scripts/ensure-podman.sh): rlimits this sandbox accepts
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]'
dropin_changed=false
if [ "$(cat "$dropin" 2>/dev/null)" != "$want" ]; then
  $sudo mkdir -p "$(dirname "$dropin")"
  printf '%s\n' "$want" | $sudo tee "$dropin" >/dev/null
  dropin_changed=true
  echo "wrote $dropin"
fi

if ! podman image exists "$image"; then
  d=$(mktemp -d)
  trap 'rm -rf "$d"' EXIT
  mkdir -p "$d/bin"
  cp /bin/busybox "$d/bin/"
  for c in sh sleep echo cat; do ln -s busybox "$d/bin/$c"; done
  out=$(tar -C "$d" -c . | podman import - "$image" 2>&1) || { echo "podman import failed: $out" >&2; exit 1; }
  echo "built $image (podman)"
fi

ping() { [ "$(curl -s --max-time 2 --unix-socket "$socket" http://localhost/_ping 2>/dev/null)" = "OK" ]; }
service_pids() { pgrep -f "^podman system service --time=0 unix://$socket\$" || true; }

if ping && $dropin_changed; then
  # Only a service this script started (same command line); it reads containers.conf at start-up.
  pids=$(service_pids)
  if [ -n "$pids" ]; then
    echo "restarting the podman service to read $dropin"
    for pid in $pids; do $sudo kill "$pid" 2>/dev/null || true; done
    for _ in $(seq 1 50); do [ -z "$(service_pids)" ] && break; sleep 0.1; done
  fi
fi
ping && exit 0

echo "starting podman system service on $socket (log: $log)"
$sudo mkdir -p "$(dirname "$socket")"
# A socket file left by a service that was killed makes nothing answer: remove it.
[ -n "$(service_pids)" ] || $sudo rm -f "$socket"
pid=$($sudo sh -c "setsid podman system service --time=0 unix://$socket >$log 2>&1 < /dev/null & echo \$!")
for _ in $(seq 1 120); do
  ping && exit 0
  if [ ! -d "/proc/$pid" ]; then
    echo "podman system service exited without answering on $socket; see $log" >&2
    tail -20 "$log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "the podman API service did not answer OK on $socket within 60 s; see $log" >&2
tail -20 "$log" >&2 || true
exit 1
