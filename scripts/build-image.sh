#!/usr/bin/env bash
# `make image`: builds the container image idlewatcher-bridge:latest (and :VERSION) on a machine
# with no image registry. No base image: a minimal root filesystem holding the release binary
# (stripped), exactly the shared libraries it loads (ldd, with the dynamic loader), CA
# certificates, a passwd entry for the non-root user it runs as, and the example configuration,
# given to `docker import`. deploy/docker/Dockerfile builds the same image where a registry is
# reachable. The import is skipped when the root filesystem has not changed.
#
# Environment: RELEASE_BIN (.build/release/idlewatcher-bridge), IMAGE (idlewatcher-bridge),
# VERSION (from Sources/idlewatcher-bridge/IdlewatcherBridge.swift).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${RELEASE_BIN:-.build/release/idlewatcher-bridge}
image=${IMAGE:-idlewatcher-bridge}
version=${VERSION:-$(sed -n 's/^let bridgeVersion = "\(.*\)"$/\1/p' Sources/idlewatcher-bridge/IdlewatcherBridge.swift)}
uid=10001 # the `idlewatcher` user inside the image (no clash with a host's users)

[ -x "$bin" ] || { echo "no release binary at $bin: run 'make release' first" >&2; exit 1; }
[ -n "$version" ] || { echo "cannot read the version from Sources/idlewatcher-bridge/IdlewatcherBridge.swift" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{etc/ssl,etc/ld.so.conf.d,etc/idlewatcher-bridge,tmp,usr/local/bin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/lib/swift/linux,usr/lib/ssl,usr/share}
chmod 1777 "$root/tmp"
# Debian's merged /usr, so that the loader's built-in paths (/lib64/ld-linux-x86-64.so.2) hold.
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

# The binary, without its debug information (18 MB → 5 MB).
install -m 0755 "$bin" "$root/usr/local/bin/idlewatcher-bridge"
strip --strip-unneeded "$root/usr/local/bin/idlewatcher-bridge"

# Exactly the libraries the loader resolves for it. The Swift runtime goes to /usr/lib/swift/linux
# (the binary's RUNPATH names the toolchain's folder, which the image does not have), found
# through ld.so.cache; the system libraries keep their Debian paths.
SWIFT_LIBDIR=/usr/lib/swift/linux scripts/copy-with-libraries.sh "$root" --libraries-only "$bin"
[ -e "$root/usr/lib64/ld-linux-x86-64.so.2" ] || { echo "ldd did not report the dynamic loader" >&2; exit 1; }
printf 'include /etc/ld.so.conf.d/*.conf\n' > "$root/etc/ld.so.conf"
printf '/usr/lib/swift/linux\n' > "$root/etc/ld.so.conf.d/swift.conf"
ldconfig -r "$root"

# CA certificates: the bundle (libcurl: Proxmox over HTTPS) and the hashed folder (libmosquitto's
# capath for mqtts:// without mqtt.ca_file), with the files its links point to.
cp -a /etc/ssl/certs "$root/etc/ssl/"
cp -a /usr/share/ca-certificates "$root/usr/share/"
ln -s /etc/ssl/certs "$root/usr/lib/ssl/certs"
ln -s /etc/ssl/certs/ca-certificates.crt "$root/usr/lib/ssl/cert.pem"

# Users, name resolution (Docker bind-mounts /etc/hosts and /etc/resolv.conf over these).
cat > "$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/usr/sbin/nologin
idlewatcher:x:$uid:$uid:idlewatcher-bridge:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat > "$root/etc/group" <<EOF
root:x:0:
idlewatcher:x:$uid:
nogroup:x:65534:
EOF
cat > "$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group:  files
hosts:  files dns
EOF
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
: > "$root/etc/resolv.conf"

# The example configuration, for `docker run` with no configuration of its own; mount yours here.
install -m 0644 config/idlewatcher-bridge.yaml "$root/etc/idlewatcher-bridge/config.yaml"

# A reproducible archive: same files, same bytes, so an unchanged image is not imported again.
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
digest=$(sha256sum "$work/rootfs.tar" | cut -c1-64)
label=io.idlewatcher.rootfs-sha256
if [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$image:$version" 2>/dev/null)" = "$digest" ] &&
   [ "$(docker image inspect -f '{{.Id}}' "$image:$version" 2>/dev/null)" = "$(docker image inspect -f '{{.Id}}' "$image:latest" 2>/dev/null)" ]; then
  echo "$image:$version is up to date"
  exit 0
fi

previous=$(docker image inspect -f '{{.Id}}' "$image:latest" 2>/dev/null || true)
config=/etc/idlewatcher-bridge/config.yaml
id=$(docker import \
  --change 'ENTRYPOINT ["/usr/local/bin/idlewatcher-bridge"]' \
  --change "CMD [\"--config\", \"$config\"]" \
  --change "USER $uid:$uid" \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'ENV GNUTLS_NO_IMPLICIT_INIT=1' \
  --change 'WORKDIR /' \
  --change "HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD [\"/usr/local/bin/idlewatcher-bridge\", \"health\", \"--config\", \"$config\"]" \
  --change "LABEL org.opencontainers.image.title=idlewatcher-bridge org.opencontainers.image.version=$version org.opencontainers.image.description=\"Container lifecycles (Docker, Proxmox VE LXC) on MQTT\" $label=$digest" \
  --message "idlewatcher-bridge $version (make image)" \
  "$work/rootfs.tar" "$image:$version")
docker tag "$id" "$image:latest"

# The image must start: every library the loader needs is there (--version loads them all).
if ! out=$(docker run --rm --network none "$image:latest" --version 2>&1); then
  echo "the new image does not start: $out" >&2
  exit 1
fi
# The image this one replaces, if nothing else uses it now (only ever an earlier `make image`).
if [ -n "$previous" ] && [ "$previous" != "$id" ] &&
   [ -z "$(docker image inspect -f '{{join .RepoTags ","}}' "$previous" 2>/dev/null)" ] &&
   [ -n "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$previous" 2>/dev/null)" ]; then
  docker rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(docker image inspect -f '{{.Size}}' "$image:latest")
echo "built $image:$version and $image:latest ($((size / 1000000)) MB, idlewatcher-bridge $out)"
