#!/usr/bin/env bash
# Heap bytes per idle connection as glibc counts them: the bench's idle
# server (the seed commands, no deflate) holds N connections from the load
# generator; malloc_stats(), called through gdb before and after, gives the
# "in use bytes" of every arena. Finer than the RSS of `npm run bench`, which
# grows in the arenas' 128 KiB steps (13 B per connection at 10,000).
#   bench/idle-malloc.sh [package root, default this checkout] [connections, default 10000]
# Needs gdb and the load generator (`npm run bench -- --build-only`); run alone.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PKG=${1:-$HERE}
N=${2:-10000}
TMP=$(mktemp -d)
LG=""
SRV=""
# (never `kill 0`: that is the whole process group)
trap 'for p in $LG $SRV; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"' EXIT
IXWS_PKG=$PKG/dist/lib/index.js PORT_FILE=$TMP/port node -e "
const ix = require(process.env.IXWS_PKG);
const s = ix.websocketServer({ host: '127.0.0.1', port: 0, backlog: 511, maxConnections: 20000, method() {}, disablePerMessageDeflate: true });
const st = ix.websocketServerStart({ ref: s.ref });
require('fs').writeFileSync(process.env.PORT_FILE, String(st.port));
setInterval(() => {}, 1000);
" 2>"$TMP/stats" &
SRV=$!
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
stats() { gdb -p "$SRV" -batch -ex 'call (void)malloc_stats()' >/dev/null 2>&1 || true; sleep 0.3; }
sleep 1
stats
IXWS_LOADGEN=$HERE/build-loadgen/loadgen.node node "$HERE/bench/loadgen/loadgen.js" --mode idle \
  --url "ws://127.0.0.1:$(cat "$TMP/port")/" --conns "$N" --duration 30 --timeout 60 \
  --connect-concurrency 200 >"$TMP/lg" 2>&1 &
LG=$!
for _ in $(seq 120); do grep -q '"ready"' "$TMP/lg" && break; sleep 0.5; done
grep -q "\"opened\":$N" "$TMP/lg" || { echo "not all $N connections opened: $(head -c 300 "$TMP/lg")" >&2; exit 1; }
sleep 1.5  # the open events are handled
stats
node -e "
const t = require('fs').readFileSync('$TMP/stats', 'utf8');
const inUse = [...t.matchAll(/Total \(incl\. mmap\):\s*system bytes\s*=\s*\d+\s*in use bytes\s*=\s*(\d+)/g)].map((m) => +m[1]);
if (inUse.length !== 2) { console.error('malloc_stats gave no totals (gdb attach refused?)'); process.exit(1); }
console.log('malloc in use per idle connection: ' + ((inUse[1] - inUse[0]) / $N).toFixed(1) + ' B (' + '$PKG' + ')');
"
