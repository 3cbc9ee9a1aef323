#!/usr/bin/env bash
# `make install` and `make uninstall`. Lays out, or removes:
#   $(DESTDIR)$(BINDIR)/idlewatcher-bridge                        the release binary
#   $(DESTDIR)$(SYSCONFDIR)/idlewatcher-bridge/config.yaml         the example configuration,
#                                                                  never over an existing one
#   $(DESTDIR)$(SYSCONFDIR)/idlewatcher-bridge/credentials/        (0700) files for LoadCredential=
#   $(DESTDIR)$(UNITDIR)/idlewatcher-bridge.service                the systemd unit, its paths
#                                                                  rewritten for BINDIR, SYSCONFDIR
#   $(DESTDIR)$(SYSUSERSDIR)/idlewatcher-bridge.conf               the `idlewatcher` user (sysusers.d)
# Without DESTDIR (a real install) it also creates the user and reloads systemd if it runs.
# Uninstall keeps a configuration that was changed, and any credentials, and the user.
set -euo pipefail
cd "$(dirname "$0")/.."

action=${1:?usage: install.sh install|uninstall}
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr/local}
BINDIR=${BINDIR:-$PREFIX/bin}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-$PREFIX/lib/systemd/system}
SYSUSERSDIR=${SYSUSERSDIR:-$PREFIX/lib/sysusers.d}
RELEASE_BIN=${RELEASE_BIN:-.build/release/idlewatcher-bridge}

bin=$DESTDIR$BINDIR/idlewatcher-bridge
confdir=$DESTDIR$SYSCONFDIR/idlewatcher-bridge
config=$confdir/config.yaml
unit=$DESTDIR$UNITDIR/idlewatcher-bridge.service
sysusers=$DESTDIR$SYSUSERSDIR/idlewatcher-bridge.conf
example=config/idlewatcher-bridge.yaml

systemd_runs() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

case "$action" in
install)
  [ -x "$RELEASE_BIN" ] || { echo "no release binary at $RELEASE_BIN (make release)" >&2; exit 1; }
  install -D -m 0755 "$RELEASE_BIN" "$bin"
  install -d -m 0755 "$confdir"
  install -d -m 0700 "$confdir/credentials"
  if [ -e "$config" ]; then
    echo "kept $config (the new example is $example)"
  else
    install -m 0644 "$example" "$config"
  fi
  tmp=$(mktemp)
  trap 'rm -f "$tmp"' EXIT
  sed -e "s|/usr/local/bin/idlewatcher-bridge|$BINDIR/idlewatcher-bridge|g" \
      -e "s|/etc/idlewatcher-bridge/|$SYSCONFDIR/idlewatcher-bridge/|g" \
      deploy/systemd/idlewatcher-bridge.service > "$tmp"
  install -D -m 0644 "$tmp" "$unit"
  install -D -m 0644 deploy/systemd/idlewatcher-bridge.sysusers "$sysusers"
  echo "installed $bin, $unit, $sysusers, $confdir/"
  if [ -z "$DESTDIR" ]; then
    if command -v systemd-sysusers >/dev/null; then
      systemd-sysusers "$sysusers"
    else
      echo "no systemd-sysusers: create the user yourself (docs/install.md)" >&2
    fi
    if systemd_runs; then systemctl daemon-reload; fi
    echo "next: edit $config, put secrets in $confdir/credentials/, then"
    echo "      systemctl enable --now idlewatcher-bridge"
  fi
  ;;
uninstall)
  if systemd_runs && systemctl is-enabled --quiet idlewatcher-bridge 2>/dev/null; then
    systemctl disable --now idlewatcher-bridge
  fi
  rm -f "$bin" "$unit" "$sysusers"
  if [ -e "$config" ]; then
    if cmp -s "$example" "$config"; then
      rm -f "$config"
    else
      echo "kept $config: it differs from the example (remove it yourself if it is not needed)"
    fi
  fi
  if [ -d "$confdir/credentials" ] && ! rmdir "$confdir/credentials" 2>/dev/null; then
    echo "kept $confdir/credentials/: not empty"
  fi
  rmdir "$confdir" 2>/dev/null || true
  if systemd_runs; then systemctl daemon-reload; fi
  echo "removed $bin, $unit, $sysusers (the idlewatcher user stays: userdel idlewatcher)"
  ;;
*)
  echo "usage: install.sh install|uninstall" >&2
  exit 2
  ;;
esac
