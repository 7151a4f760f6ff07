#!/usr/bin/env bash
# test/package/tarball.sh WORKDIR: what a user gets from the registry.
#  1. npm pack (the prepack script compiles lib/ and builds the prebuilds);
#     the tarball's size (budget: under 3 MB packed) and its prebuilds;
#  2. in an empty folder, with only node and npm on PATH (no compiler, no
#     cmake), npm install --ignore-scripts of the tarball;
#  3. require it (CommonJS) and import it (ESM): start a server, echo over it,
#     exit by itself; the binary loaded is the linux-x64 prebuild;
#  4. compile strict TypeScript consumers (module nodenext; commonjs with
#     node10 resolution) against the installed types;
#  5. the `ixws` bin npm linked: executable, and an echo-server and a connect
#     run from it talk to each other (on the prebuild).
# Leaves the installed consumer in WORKDIR/consumer (arm64-smoke.sh uses it).
# Prints one line per check and "tarball: N passed, N failed".
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WORK=$(mkdir -p "$1" && cd "$1" && pwd)
BUDGET=$((3 * 1024 * 1024))
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "  ok      $*"; }
bad() { fail=$((fail + 1)); echo "  FAILED  $*"; }
finish() { echo "tarball: $pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

# A consumer inside the repository would resolve what the package lacks (the
# optional ioredis, anything forgotten in "dependencies") from the
# repository's own node_modules, the way no user's install can.
case "$WORK/" in
  "$ROOT"/*)
    bad "WORKDIR $WORK is inside the repository: give a folder outside it (e.g. mktemp -d)"
    finish
    ;;
esac

rm -rf "$WORK/pack" "$WORK/consumer" "$WORK/bin"
mkdir -p "$WORK/pack" "$WORK/consumer" "$WORK/bin"

# 1. pack
echo "== npm pack (prepack builds the prebuilds)"
if (cd "$ROOT" && npm pack --foreground-scripts --pack-destination "$WORK/pack" >"$WORK/pack.log" 2>&1); then
  ok "npm pack"
else
  tail -n 30 "$WORK/pack.log"
  bad "npm pack (log: $WORK/pack.log)"
  finish
fi
grep -E '^prebuild: |^  prebuilds/' "$WORK/pack.log" || true
TGZ=$(ls "$WORK"/pack/*.tgz | head -n 1)
size=$(stat -c %s "$TGZ")
unpacked=$(tar -xzOf "$TGZ" | wc -c)
files=$(tar -tzf "$TGZ")
echo "tarball: $(basename "$TGZ") $size bytes packed ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB), $unpacked bytes unpacked, $(wc -l <<<"$files") files"
tar -tvzf "$TGZ" | awk '/prebuilds\/.*\.node$/ {print "  " $3 "  " $6}'
if [ "$size" -lt "$BUDGET" ]; then ok "packed size $size < $BUDGET bytes (3 MiB)"; else bad "packed size $size >= $BUDGET bytes (3 MiB)"; fi
for f in package/prebuilds/linux-x64/ix-websocket.glibc.node package/prebuilds/linux-arm64/ix-websocket.glibc.node \
  package/dist/lib/index.js package/dist/lib/index.d.ts package/dist/esm/index.mjs package/dist/esm/index.d.mts \
  package/dist/lib/redis.js package/dist/lib/redis.d.ts package/dist/esm/redis.mjs package/dist/esm/redis.d.mts \
  package/dist/binding.d.ts package/scripts/build-native.js package/CMakeLists.txt; do
  if grep -qx "$f" <<<"$files"; then ok "tarball has ${f#package/}"; else bad "tarball lacks ${f#package/}"; fi
done
if grep -Eq '\.map$|^package/binding\.d\.ts$' <<<"$files"; then
  bad "tarball carries source maps or the repository's binding.d.ts (their sources are not shipped): $(grep -E '\.map$|^package/binding\.d\.ts$' <<<"$files" | head -3 | tr '\n' ' ')"
else
  ok "tarball carries no source map and no stray binding.d.ts"
fi
if grep -Eq '^package/(build|build-[^/]*|test|vendor/wsengine/tests|node_modules)/' <<<"$files"; then
  bad "tarball carries build or test folders: $(grep -E '^package/(build|build-[^/]*|test|vendor/wsengine/tests|node_modules)/' <<<"$files" | head -3 | tr '\n' ' ')"
else
  ok "tarball carries no build, test or node_modules folder"
fi

# 2. install with scripts off and no toolchain
ln -s "$(command -v node)" "$WORK/bin/node"
ln -s "$(command -v npm)" "$WORK/bin/npm"
TIMEOUT=$(command -v timeout)
BASH_BIN=$(command -v bash)
# What a shell with the consumer's PATH finds (the probe must itself run: it
# prints "probe ran" last, so an unrunnable probe cannot pass for "nothing").
probe=$(PATH="$WORK/bin" "$BASH_BIN" -c 'for t in cc gcc g++ c++ clang clang++ cmake make ninja python3; do command -v $t; done; echo "probe ran"' 2>&1)
toolchain=$(grep -v '^probe ran$' <<<"$probe")
if grep -qx 'probe ran' <<<"$probe" && [ -z "$toolchain" ]; then
  ok "no compiler, cmake, make or python on the consumer's PATH"
else
  bad "toolchain visible on the consumer's PATH (or the probe failed): $probe"
fi
cp "$ROOT"/test/package/consumer/* "$WORK/consumer/"
tsver=$(node -p "require('$ROOT/package.json').devDependencies.typescript")
typesver=$(node -p "require('$ROOT/package.json').devDependencies['@types/node']")
echo '{ "name": "consumer", "private": true }' >"$WORK/consumer/package.json"
echo "== npm install --ignore-scripts $(basename "$TGZ") (PATH=$WORK/bin)"
if (cd "$WORK/consumer" && PATH="$WORK/bin" npm install --ignore-scripts --no-audit --no-fund \
    "$TGZ" "typescript@$tsver" "@types/node@$typesver" >"$WORK/install.log" 2>&1); then
  ok "npm install --ignore-scripts of the tarball"
else
  tail -n 20 "$WORK/install.log"
  bad "npm install --ignore-scripts (log: $WORK/install.log)"
  finish
fi
installed="$WORK/consumer/node_modules/ix-websocket"
if [ ! -e "$installed/build" ]; then ok "nothing was compiled at install (no build/)"; else bad "install produced $installed/build"; fi

# 3. run it: CommonJS and ESM, each must end by itself
smoke() { # smoke <file> <expected output regex>
  local out rc=0 started=$SECONDS
  out=$(cd "$WORK/consumer" && PATH="$WORK/bin" "$TIMEOUT" 60 node "$1" 2>&1) || rc=$?
  echo "$out" | sed 's/^/    /'
  if [ "$rc" -eq 0 ] && grep -Eq "$2" <<<"$out"; then
    ok "node $1: echo, then exit by itself ($((SECONDS - started)) s)"
  elif [ "$rc" -eq 124 ]; then
    bad "node $1 did not exit within 60 s"
  else
    bad "node $1 (exit $rc)"
  fi
}
smoke smoke.cjs '^smoke ok: cjs, .* prebuilds/linux-x64/ix-websocket\.glibc\.node$'
smoke smoke.mjs '^smoke ok: esm, '

# 4. strict TypeScript consumer, module nodenext
if out=$(cd "$WORK/consumer" && PATH="$WORK/bin" node node_modules/typescript/bin/tsc -p tsconfig.json 2>&1) &&
   [ -f "$WORK/consumer/node_modules/typescript/bin/tsc" ]; then
  ok "strict TypeScript consumer (module nodenext, ESM and CJS) compiles against the installed types"
else
  echo "$out" | head -n 20 | sed 's/^/    /'
  bad "TypeScript consumer does not compile"
fi

# ... and with TypeScript's classic resolution (node10), the subpath included
if out=$(cd "$WORK/consumer" && PATH="$WORK/bin" node node_modules/typescript/bin/tsc -p tsconfig.node10.json 2>&1); then
  ok "strict TypeScript consumer (module commonjs, moduleResolution node10) finds ix-websocket and ix-websocket/redis"
else
  echo "$out" | head -n 20 | sed 's/^/    /'
  bad "TypeScript consumer (node10) does not compile"
fi

# 5. the ixws bin (package.json "bin"), run as a program on the consumer's PATH
ixws="$WORK/consumer/node_modules/.bin/ixws"
if [ -x "$ixws" ] && [ "$(head -n 1 "$ixws")" = '#!/usr/bin/env node' ]; then
  ok "node_modules/.bin/ixws is executable, with a node shebang"
else
  bad "node_modules/.bin/ixws missing, not executable or without '#!/usr/bin/env node'"
fi
( cd "$WORK/consumer" && PATH="$WORK/bin" exec "$TIMEOUT" 60 "$ixws" echo-server --port 0 >"$WORK/ixws-server.log" 2>&1 ) &
ixws_server=$!
url=""
for _ in $(seq 1 100); do
  url=$(grep -Eo 'ws://127\.0\.0\.1:[0-9]+' "$WORK/ixws-server.log" | head -n 1) && [ -n "$url" ] && break
  sleep 0.1
done
echoed=$(cd "$WORK/consumer" && printf 'from the tarball\n' | PATH="$WORK/bin" "$TIMEOUT" 30 "$ixws" connect "$url" 2>"$WORK/ixws-connect.log") && rc=0 || rc=$?
if [ -n "$url" ] && [ "$rc" -eq 0 ] && [ "$echoed" = 'from the tarball' ]; then
  ok "ixws echo-server and printf … | ixws connect $url: the echo, exit 0"
else
  sed 's/^/    /' "$WORK/ixws-server.log" "$WORK/ixws-connect.log"
  bad "ixws echo-server + connect (url '$url', exit $rc, output '$echoed')"
fi
kill -INT "$ixws_server" 2>/dev/null
if wait "$ixws_server"; then ok "ixws echo-server exits 0 on SIGINT"; else bad "ixws echo-server exit status $? on SIGINT"; fi
finish
