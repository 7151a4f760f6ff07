#!/usr/bin/env bash
# test/package/arm64-smoke.sh CONSUMER SYSROOT: runs the tarball's smoke test
# (test/package/consumer/smoke.cjs, installed by tarball.sh in CONSUMER) with
# Debian's arm64 Node.js under qemu-user, so the linux-arm64 prebuild is
# loaded, serves, echoes and lets the process exit.
# Debian's arm64 nodejs and the libraries it needs are fetched with
# apt-get download into SYSROOT (kept between runs) and unpacked with
# dpkg-deb -x; needs `dpkg --add-architecture arm64 && apt-get update` and
# qemu-user. Prints "arm64: N passed, N failed".
set -uo pipefail
CONSUMER=$(cd "$1" && pwd)
SYSROOT=$(mkdir -p "$2" && cd "$2" && pwd)
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "  ok      $*"; }
bad() { fail=$((fail + 1)); echo "  FAILED  $*"; }
finish() { echo "arm64: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

# nodejs:arm64 with its library dependencies (apt-cache depends nodejs:arm64
# libnode108:arm64) and the JavaScript packages Debian's node loads from /usr/share.
ARM64_DEBS=(nodejs libnode108 libbrotli1 libc-ares2 libc6 libicu72 libnghttp2-14 libssl3 libstdc++6
  libgcc-s1 libuv1 zlib1g)
ALL_DEBS=(node-acorn node-cjs-module-lexer node-undici node-busboy)

if [ ! -x "$SYSROOT/usr/bin/node" ]; then
  rm -rf "$SYSROOT.debs" "$SYSROOT"
  mkdir -p "$SYSROOT.debs" "$SYSROOT"
  if (cd "$SYSROOT.debs" && apt-get download "${ARM64_DEBS[@]/%/:arm64}" "${ALL_DEBS[@]}" >download.log 2>&1); then
    for deb in "$SYSROOT.debs"/*.deb; do dpkg-deb -x "$deb" "$SYSROOT"; done
  else
    tail -n 5 "$SYSROOT.debs/download.log"
  fi
fi
if [ -x "$SYSROOT/usr/bin/node" ]; then ok "Debian arm64 nodejs unpacked in $SYSROOT"; else bad "no arm64 nodejs in $SYSROOT"; finish; fi

QEMU=(qemu-aarch64 -L "$SYSROOT")
if version=$(timeout 120 "${QEMU[@]}" "$SYSROOT/usr/bin/node" -p 'process.version + " " + process.arch + " napi " + process.versions.napi' 2>&1) &&
   grep -q ' arm64 ' <<<"$version"; then
  ok "node runs under qemu-aarch64: $version"
else
  bad "node under qemu-aarch64: $version"
  finish
fi

smoke() { # smoke <file> <expected output regex>
  local out rc=0 started=$SECONDS
  out=$(cd "$CONSUMER" && timeout 180 "${QEMU[@]}" "$SYSROOT/usr/bin/node" "$1" 2>&1) || rc=$?
  echo "$out" | sed 's/^/    /'
  if [ "$rc" -eq 0 ] && grep -Eq "$2" <<<"$out"; then
    ok "linux-arm64 prebuild, $1: loads, serves, echoes and exits ($((SECONDS - started)) s under qemu)"
  else
    bad "linux-arm64 $1 (exit $rc)"
  fi
}
smoke smoke.cjs '^smoke ok: cjs, node v[0-9.]+ arm64, prebuilds/linux-arm64/ix-websocket\.glibc\.node$'
smoke smoke.mjs '^smoke ok: esm, node v[0-9.]+ arm64$'
finish
