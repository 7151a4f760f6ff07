#!/bin/sh
# One server under one echo load: a cpu-clock profile with call graphs and
# thread ids, then (same load, same process) system calls, context switches
# and migrations per thread, and the machine's CPU over both windows. Run it
# under the shared heavy lock. Output in $PROFILE_OUT (default
# /tmp/ixws-pass-<impl>-<size>): loadgen.jsonl, perf.data, stat.txt,
# procstat.txt (first line of /proc/stat before and after), summary.txt.
#   bench/profile-pass.sh ix 32        bench/profile-pass.sh uws 1024
# $1 impl (ix|uws|ws)  $2 message size  [$3 in flight per connection, default 8]
# PROFILE_CONNS: connections (default 100); PROFILE_SERVER_ARGS: extra server arguments
set -eu
impl=$1 size=$2 inflight=${3:-8} conns=${PROFILE_CONNS:-100}
root=$(cd "$(dirname "$0")/.." && pwd)
node "$root/bench/run.js" --build-only > /dev/null
out=${PROFILE_OUT:-/tmp/ixws-pass-$impl-$size}
rm -rf "$out"
mkdir -p "$out"
node --perf-basic-prof "$root/bench/servers/$impl-server.js" echo ${PROFILE_SERVER_ARGS:-} > "$out/server.jsonl" &
spid=$!
sleep 1
port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$out/server.jsonl" | head -1)
# One loadgen run covers both windows; its figures (rate, server CPU per
# message, machine CPU) are over its whole measured window.
node "$root/bench/loadgen/loadgen.js" --url "ws://127.0.0.1:$port/" --server-pid "$spid" \
  --mode echo --conns "$conns" --size "$size" --inflight "$inflight" --warmup 1 --duration 10 > "$out/loadgen.jsonl" &
lgpid=$!
sleep 1.5
head -1 /proc/stat > "$out/procstat.txt"
date +%s.%N >> "$out/procstat.txt"
perf record -e cpu-clock -F ${PERF_FREQ:-999} --call-graph ${PERF_CALLGRAPH:-fp} -o "$out/perf.data" -p "$spid" -- sleep 4 2> /dev/null
head -1 /proc/stat >> "$out/procstat.txt"
date +%s.%N >> "$out/procstat.txt"
# Per thread: every system call by name, and scheduler events.
perf stat --per-thread -x, -o "$out/stat.txt" \
  -e 'task-clock,context-switches,cpu-migrations,raw_syscalls:sys_enter' \
  -e 'syscalls:sys_enter_read,syscalls:sys_enter_readv,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendto,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,syscalls:sys_enter_mprotect,syscalls:sys_enter_madvise,syscalls:sys_enter_brk,syscalls:sys_enter_munmap,syscalls:sys_enter_mmap' \
  -p "$spid" -- sleep 3
head -1 /proc/stat >> "$out/procstat.txt"
date +%s.%N >> "$out/procstat.txt"
wait "$lgpid" || true
kill "$spid" 2> /dev/null || true
wait "$spid" 2> /dev/null || true
cat "$out/loadgen.jsonl"
