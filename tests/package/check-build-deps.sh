#!/usr/bin/env bash
# The image's daemon build and the Debian package build need the same libraries.
#
# CI builds its image from the daemon's Debian package (scripts/build-image --from-deb), so the
# Dockerfile's own compile (DAEMON_FROM=source, what `docker build .` and scripts/build-image do)
# is not run there. What it needs beyond the package build is one list,
# scripts/install-deps --daemon-build (DAEMON_BUILD_PACKAGES); the package build, which CI does
# run, proves debian/control's Build-Depends. This check keeps the two the same, apart from the
# tools each names in its own way (build-essential, cmake, pkg-config against debhelper-compat,
# cmake, pkgconf, pandoc), so that a library added to one and not the other fails here.
#
# Usage: tests/package/check-build-deps.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# DAEMON_BUILD_PACKAGES=( ... ) of scripts/install-deps, comments dropped.
image=$(sed -n '/^DAEMON_BUILD_PACKAGES=(/,/^)/p' "$root/scripts/install-deps" |
  sed -e '1d' -e '$d' -e 's/#.*//' | tr -s ' \t' '\n' | sed '/^$/d' |
  grep -vxE 'build-essential|cmake|pkg-config' | sort -u)
# Build-Depends of debian/control (its continuation lines), versions and arch qualifiers dropped.
package=$(awk '/^Build-Depends:/ { on = 1; sub(/^Build-Depends:/, ""); print; next }
               on && /^[ \t]/ { print; next } { on = 0 }' "$root/debian/control" |
  tr ',' '\n' | sed -e 's/([^)]*)//g' -e 's/\[[^]]*\]//g' -e 's/[ \t]//g' | sed '/^$/d' |
  grep -vxE 'debhelper-compat|cmake|pkgconf|pandoc' | sort -u)

[[ -n $image ]] || { echo "check-build-deps: no DAEMON_BUILD_PACKAGES in scripts/install-deps" >&2; exit 1; }
[[ -n $package ]] || { echo "check-build-deps: no Build-Depends in debian/control" >&2; exit 1; }
if ! diff <(echo "$image") <(echo "$package") >/dev/null; then
  echo "check-build-deps: the image's daemon build (scripts/install-deps DAEMON_BUILD_PACKAGES, <)" \
    "and the package's (debian/control Build-Depends, >) need other libraries:" >&2
  diff <(echo "$image") <(echo "$package") | grep '^[<>]' >&2
  exit 1
fi
echo "check-build-deps: the same $(wc -l <<<"$image") libraries in both"
