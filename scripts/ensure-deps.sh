#!/usr/bin/env bash
# Installs the Debian packages the bridge and its tests need, if any is missing.
set -euo pipefail
packages=(libmosquitto-dev libcurl4-openssl-dev libyaml-dev mosquitto mosquitto-clients docker.io podman busybox-static openssl curl python3 docker-compose systemd socat)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}" >/dev/null
