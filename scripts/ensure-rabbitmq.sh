#!/usr/bin/env bash
# Makes sure a RabbitMQ node (Debian's rabbitmq-server 3.10, MQTT 3.1.1 through its rabbitmq_mqtt
# plugin) answers MQTT on 127.0.0.1:1884, idempotently (machines without systemd, CI): a second
# broker implementation for the tests, beside mosquitto on 1883.
#   - writes /etc/rabbitmq/rabbitmq.conf and /etc/rabbitmq/rabbitmq-env.conf (before installing,
#     so a node the package's init script might start uses them too): MQTT on 127.0.0.1:1884,
#     no AMQP listener, node rabbit@localhost, epmd and Erlang distribution on loopback only;
#     it refuses to overwrite files it did not write;
#   - installs Debian's `rabbitmq-server` (and mosquitto-clients, for the probe) if missing;
#   - enables the rabbitmq_mqtt plugin (`rabbitmq-plugins enable --offline`);
#   - starts the node with setsid if MQTT does not answer (restarting a rabbit@localhost node that
#     runs without MQTT on 1884, or whose configuration this script just changed), and waits up to
#     120 s for a QoS 1 publish as guest to succeed (log: /tmp/rabbitmq-server.log and
#     /var/log/rabbitmq/rabbit@localhost.log).
# User/password: guest/guest (loopback only); anonymous clients are logged in as guest.
# docs/brokers-rabbitmq-notes.md has what it does and does not do as an MQTT broker.
set -euo pipefail

port=1884
conf=/etc/rabbitmq/rabbitmq.conf
envconf=/etc/rabbitmq/rabbitmq-env.conf
plugins=/etc/rabbitmq/enabled_plugins
node=rabbit@localhost
log=/tmp/rabbitmq-server.log
marker='# idlewatcher-bridge (scripts/ensure-rabbitmq.sh)'
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

want_conf="$marker: a second MQTT broker for the tests.
# Rewritten by that script whenever it differs from what the script expects.
# No AMQP listener: only MQTT is used.
listeners.tcp = none
# guest/guest may log in from loopback only (RabbitMQ's default, spelled out).
loopback_users.guest = true
mqtt.listeners.tcp.default = 127.0.0.1:$port
# Clients that send no username are logged in as guest (like allow_anonymous in mosquitto).
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
mqtt.vhost = /
mqtt.exchange = amq.topic
# Retained messages: kept on disk (RabbitMQ's default store, spelled out).
mqtt.retained_message_store = rabbit_mqtt_retained_msg_store_dets
mqtt.retained_message_store_dets_sync_interval = 2000
# Log to /var/log/rabbitmq/rabbit@localhost.log only (not to stdout as well).
log.console = false"

want_env="$marker: one node, rabbit@localhost, with epmd and the
# Erlang distribution (port 25672, and 35672-35682 for the CLI tools) on loopback only.
NODENAME=$node
ERL_EPMD_ADDRESS=127.0.0.1
SERVER_ADDITIONAL_ERL_ARGS=\"-kernel inet_dist_use_interface {127,0,0,1}\"
CTL_ERL_ARGS=\"-kernel inet_dist_use_interface {127,0,0,1}\""

# Writes $2 to $1 if it differs (then sets config_changed); refuses to replace a file of someone
# else's.
config_changed=false
write_config() {
  local file=$1 content=$2
  [ "$(cat "$file" 2>/dev/null)" = "$content" ] && return 0
  if [ -s "$file" ] && ! head -1 "$file" | grep -qF "$marker"; then
    # The package's own rabbitmq-env.conf (comments only) may be replaced.
    if [ "$file" != "$envconf" ] || grep -qv '^\s*\(#.*\)\?$' "$file"; then
      echo "$file exists and was not written by this script; not overwriting it" >&2
      exit 1
    fi
  fi
  $sudo mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" | $sudo tee "$file" >/dev/null
  $sudo chmod 0644 "$file"
  echo "wrote $file"
  config_changed=true
}
write_config "$conf" "$want_conf"
write_config "$envconf" "$want_env"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=()
for p in rabbitmq-server mosquitto-clients; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without package lists (or with stale ones) the install fails: update once and try again.
  if ! $sudo apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
command -v rabbitmq-server >/dev/null || { echo "rabbitmq-server is not installed and could not be installed" >&2; exit 1; }

if ! grep -q 'rabbitmq_mqtt' "$plugins" 2>/dev/null; then
  $sudo rabbitmq-plugins enable --offline rabbitmq_mqtt >/dev/null
  $sudo chown rabbitmq:rabbitmq "$plugins"
  config_changed=true
  echo "enabled the rabbitmq_mqtt plugin ($plugins)"
fi

ready() {
  timeout 10 mosquitto_pub -h 127.0.0.1 -p "$port" -V mqttv311 -u guest -P guest -q 1 \
    -i "ensure-rabbitmq-$$" -t idlewatcher-probe/ensure-rabbitmq -m x >/dev/null 2>&1
}
say() { echo "RabbitMQ $(dpkg-query -W -f='${Version}' rabbitmq-server) ($node): MQTT 3.1.1 on 127.0.0.1:$port, user guest/guest (no AMQP listener)"; }
# The node's Erlang VM (its command line has no node name: rabbitmq-env.conf gives it; any RabbitMQ
# node on this machine reads that file, so this is the one).
node_pids() { pgrep -u rabbitmq -f -- 'beam.smp .* -s rabbit boot' || true; }

if ! $config_changed && ready; then say; exit 0; fi

# A node of this name that runs without MQTT on $port, or with a configuration this script has just
# changed (it reads both at boot): stop it, gracefully.
if [ -n "$(node_pids)" ]; then
  echo "stopping the running node $node (to read its configuration again)"
  $sudo rabbitmqctl -q stop >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do [ -z "$(node_pids)" ] && break; sleep 0.2; done
  if [ -n "$(node_pids)" ]; then
    echo "the running node $node did not stop; see /var/log/rabbitmq/$node.log" >&2
    exit 1
  fi
fi

echo "starting rabbitmq-server on 127.0.0.1:$port (log: $log, /var/log/rabbitmq/$node.log)"
# As root the wrapper /usr/sbin/rabbitmq-server runs the node as the rabbitmq user (su).
pid=$($sudo sh -c "setsid rabbitmq-server >$log 2>&1 < /dev/null & echo \$!")
deadline=$((SECONDS + 120))
while [ $SECONDS -lt $deadline ]; do
  if ready; then say; exit 0; fi
  if [ ! -d "/proc/$pid" ]; then
    echo "rabbitmq-server exited without answering MQTT on 127.0.0.1:$port; see $log and /var/log/rabbitmq/$node.log" >&2
    tail -20 "$log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "rabbitmq-server did not answer MQTT on 127.0.0.1:$port within 120 s; see $log and /var/log/rabbitmq/$node.log" >&2
tail -20 "$log" >&2 || true
exit 1
