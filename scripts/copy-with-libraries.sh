#!/usr/bin/env bash
# Copies programs into a root file system together with exactly the shared libraries the dynamic
# loader resolves for them (ldd), for images made without a base image: `make image`
# (scripts/build-image.sh) and the deployment tests.
#
#   copy-with-libraries.sh ROOT FILE...                    FILE to ROOT/FILE, and its libraries
#   copy-with-libraries.sh ROOT --libraries-only FILE...   only the libraries of FILE
#
# A library keeps its name and the folder the loader found it in, with merged-/usr symlinks
# resolved (/lib/x86_64-linux-gnu → /usr/lib/x86_64-linux-gnu, and the loader /lib64/… →
# /usr/lib64/…), so ROOT needs the links lib → usr/lib and lib64 → usr/lib64. With SWIFT_LIBDIR
# set, the Swift runtime goes there instead of the toolchain's folder (ROOT then needs an
# ld.so.cache that names it).
set -euo pipefail
root=${1:?usage: copy-with-libraries.sh ROOT [--libraries-only] FILE...}
shift
copy_files=true
if [ "${1:-}" = "--libraries-only" ]; then copy_files=false; shift; fi

for file in "$@"; do
  if $copy_files; then
    mkdir -p "$root$(dirname "$file")"
    cp -L "$file" "$root$file"
  fi
  libraries=$(ldd "$file" | awk '/=>/ { print $3; next } $1 ~ /^\// { print $1 }')
  [ -n "$libraries" ] || { echo "ldd found no libraries for $file" >&2; exit 1; }
  for lib in $libraries; do
    case "$lib" in
      /opt/swift/*|*/lib/swift/linux/*) dir=${SWIFT_LIBDIR:-$(realpath "$(dirname "$lib")")} ;;
      *) dir=$(realpath "$(dirname "$lib")") ;;
    esac
    mkdir -p "$root$dir"
    [ -e "$root$dir/$(basename "$lib")" ] || cp -L "$lib" "$root$dir/$(basename "$lib")"
  done
done
