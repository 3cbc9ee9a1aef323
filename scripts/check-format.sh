#!/usr/bin/env bash
# The format check of `make test`: every Swift file is as `swift format` (with .swift-format)
# writes it. Lists the files that are not and exits 1; `make format` fixes them.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=()
while IFS= read -r -d '' f; do
  if ! swift format format --configuration .swift-format "$f" 2>/dev/null | cmp -s - "$f"; then bad+=("$f"); fi
done < <(find Sources Tests -name '*.swift' -print0; printf 'Package.swift\0')
if [ ${#bad[@]} -gt 0 ]; then
  echo "not formatted (run make format):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "format: every Swift file is formatted"
