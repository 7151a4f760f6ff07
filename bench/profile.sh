#!/bin/sh
# Samples one benchmark server under load with perf (cpu-clock: this VM has
# no hardware counters) and prints the hottest symbols and threads.
#   bench/profile.sh ix echo "" "--mode echo --conns 100 --size 1024 --inflight 8 --duration 6"
#   bench/profile.sh ix flood-client          (the native flood server drives it)
# $1 impl (ix|ws|uws)  $2 role  $3 server args  $4 loadgen args (without --url)
# The load generator is built first (node bench/run.js --build-only).
set -eu
impl=$1 role=$2 sargs=${3:-} lgargs=${4:-}
root=$(cd "$(dirname "$0")/.." && pwd)
node "$root/bench/run.js" --build-only > /dev/null
lg="node $root/bench/loadgen/loadgen.js"
out=${PROFILE_OUT:-/tmp/ixws-profile-$impl-$role}
mkdir -p "$out"
if [ "$role" = flood-client ]; then
  $lg --mode flood-server --port 0 --size 1024 --timeout 30 > "$out/flood.jsonl" &
  lgpid=$!
  sleep 0.3
  port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out/flood.jsonl" | head -1)
  node --perf-basic-prof "$root/bench/servers/$impl-server.js" flood-client --url "ws://127.0.0.1:$port/" \
    --warmup 1 --duration 5 > "$out/client.jsonl" &
  spid=$!
  sleep 1
  perf record -F ${PERF_FREQ:-999} --call-graph ${PERF_CALLGRAPH:-fp} -o "$out/perf.data" -p "$spid" -- sleep 4 2> /dev/null
  wait "$spid" || true
  wait "$lgpid" || true
  cat "$out/client.jsonl"
else
  # shellcheck disable=SC2086
  node --perf-basic-prof "$root/bench/servers/$impl-server.js" "$role" $sargs > "$out/server.jsonl" &
  spid=$!
  sleep 1
  port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out/server.jsonl" | head -1)
  # shellcheck disable=SC2086
  $lg --url "ws://127.0.0.1:$port/" --server-pid "$spid" $lgargs > "$out/loadgen.jsonl" &
  lgpid=$!
  sleep 1.5
  perf record -F ${PERF_FREQ:-999} --call-graph ${PERF_CALLGRAPH:-fp} -o "$out/perf.data" -p "$spid" -- sleep 4 2> /dev/null
  wait "$lgpid" || true
  kill "$spid"
  cat "$out/loadgen.jsonl"
fi
perf report -i "$out/perf.data" --no-children -s pid -g none -q 2> /dev/null | head -8 > "$out/threads.txt"
perf report -i "$out/perf.data" --no-children --sort sym -q -g none 2> /dev/null | head -45 > "$out/symbols.txt"
perf report -i "$out/perf.data" --no-children --sort dso -q -g none 2> /dev/null | head -12 > "$out/dso.txt"
echo "== threads"; cat "$out/threads.txt"
echo "== dso"; cat "$out/dso.txt"
echo "== symbols"; cat "$out/symbols.txt"
