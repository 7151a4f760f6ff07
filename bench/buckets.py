#!/usr/bin/env python3
"""Splits the samples of a bench/profile-pass.sh profile into cost buckets.

    python3 bench/buckets.py /tmp/ixws-pass-ix-32 [more dirs...]

Reads <dir>/perf.data (perf script, DWARF call chains), <dir>/loadgen.jsonl
(server CPU per message over the load generator's window) and prints, per
thread role (the thread with the most samples is called "js" for Node, the
others "io"), each bucket's share of the process's samples and that share of
the measured CPU per message, in microseconds. A sample goes to the first
rule that matches its leaf frame or, walking up from the leaf, its chain.
"""
import collections
import json
import re
import subprocess
import sys

KERNEL = '[kernel.kallsyms]'

WAKE = re.compile(r'^(try_to_wake_up|__schedule|schedule|schedule_hrtimeout_range|finish_task_switch.*|'
                  r'ttwu_.*|__wake_up.*|pvm_.*|_raw_spin_unlock_irqrestore|select_task_rq.*|'
                  r'enqueue_task.*|dequeue_task.*|psi_.*|update_curr|update_load_avg)$')
MALLOC = re.compile(r'(^|::|_)(malloc|free|cfree.*|_int_malloc|_int_free.*|unlink_chunk|malloc_consolidate|'
                    r'sysmalloc|tcache.*|realloc|_int_realloc|calloc|operator new.*|operator delete.*|'
                    r'__libc_malloc|__libc_free|__GI___libc_malloc|__GI___libc_free|arena_get2|'
                    r'__GI___libc_realloc|alloc_perturb|checked_request2size)$')
COPY = re.compile(r'(memcpy|memmove|memset|memcmp)')


def syscall_of(chain):
    """The system call a kernel sample is in, from the user frame under it."""
    for sym, dso in chain:
        if dso == KERNEL:
            continue
        s = sym
        if re.search(r'(^|_)(read|readv|recv|recvfrom|recvmsg)$', s):
            return 'read'
        if re.search(r'(sendmsg|writev|send|sendto)$', s):
            return 'write/sendmsg'
        if re.search(r'(^|_)write$', s):
            return 'write (eventfd/other)'
        if 'epoll' in s:
            return 'epoll_wait'
        if 'futex' in s or 'lll_lock' in s or s.startswith('__pthread_cond') or s == 'syscall':
            return 'futex'
        if 'mprotect' in s or 'madvise' in s or 'munmap' in s or 'mmap' in s or 'brk' in s:
            return 'mm syscalls'
        return 'other syscall (' + s[:30] + ')'
    return None


def kernel_bucket(chain):
    ksyms = [s for s, d in chain if d == KERNEL]
    # Page faults first: a fault's chain ends in pvm_irq_enable too (KVM),
    # which the wake-up pattern would claim.
    if any('page_fault' in s for s in ksyms):
        return 'kernel: page faults'
    if any(WAKE.match(s) for s in ksyms):
        return 'kernel: wake-ups/switches'
    sc = syscall_of(chain)
    if sc is not None and any(s.startswith(('entry_SYSCALL', 'do_syscall')) for s in ksyms):
        return 'kernel: ' + sc
    if any('irq' in s or 'softirq' in s for s in ksyms):
        return 'kernel: irq/softirq'
    return 'kernel: other'


# (bucket, pattern on a frame's symbol), tried frame by frame from the leaf up.
IX_MARKERS = [
    ('send scope (cork microtask)', r'SendScope::'),
    ('N-API send: fast path (websocketServerSendTo)', r'WebsocketServerSendTo'),
    ('N-API send: status objects', r'sendStatusList|sendStatus\b|Factories::get'),
    ('N-API send: data argument', r'readSendData|isSendData'),
    ('N-API send: argument/option reading', r'Keys::presence|binaryArg|updateEntry|refObjectArg|Keys::get|'
                                            r'isInteger|readServerOptions|updateServer|asConnRef'),
    ('engine: send (frame, queue, write)', r'^wsengine::(ServerImpl::send|Outbox|Connection::(send|flush|write|'
                                           r'queue)|buildServerFrame|Topics|corked|cork|uncork)'),
    ('N-API send: other (entry, Keys, refs, result rows)', r'WebsocketServerSend'),
    ('delivery: data slabs', r'Delivery::planSlabs'),
    ('delivery: runs (fields, values, one call per run)', r'Delivery::deliverRun|Delivery::resolveRunEvent|'
                                                          r'Delivery::ensureRunArray'),
    ('delivery: per event (arguments, call)', r'Delivery::deliverEvent|Delivery::callMethod|eventData|eventContext'),
    ('delivery: batch (drain, cork, keys)', r'Delivery::deliver|EventQueue::drain|EventQueue::|Delivery::'),
    ('engine: receive (read, parse, events)', r'^wsengine::'),
]
UWS_MARKERS = [
    ('uWS: send', r'uWS::WebSocket<.*>::send|uWS::.*::send|cork|uncork'),
    ('uWS: receive (parse, handler glue)', r'uWS::|uWS_|^us_|WebSocketWrapper|TemplatedApp'),
]


def user_bucket(chain, markers, role):
    leaf, ldso = chain[0]
    if MALLOC.search(leaf):
        return 'malloc/free'
    if COPY.search(leaf):
        return 'memcpy/memset'
    if markers is UWS_MARKERS and ldso.endswith('/node') and any('uWS' in s or 'uws_' in d for s, d in chain):
        return 'uWS: V8 (handler call, ArrayBuffer, send arguments)'
    for sym, dso in chain:
        if dso.startswith('/tmp/perf-') or sym.startswith(('JS:', 'LazyCompile', 'Function:')):
            break  # crossed into JavaScript: the markers below it do not say
        for name, pat in markers:
            if re.search(pat, sym):
                return name
    if ldso.startswith('/tmp/perf-') or leaf.startswith(('JS:', 'Builtins_', 'LazyCompile')):
        if 'CreateTypedArray' in leaf or 'TypedArrayPrototypeSubArray' in leaf:
            return 'JS: data slice (subarray)'
        return 'JS: trampoline + handler + facade (JIT, builtins)'
    if leaf.startswith(('uv_', 'uv__')) or 'libuv' in ldso:
        return 'libuv'
    if leaf.startswith(('napi_', 'v8::', 'node::', 'node_napi', 'Napi::')):
        return 'N-API/V8 (caller unknown)'
    return 'other user (' + ldso.split('/')[-1] + ')'


def parse(path):
    out = subprocess.run(['perf', 'script', '-i', path + '/perf.data', '-F', 'tid,ip,sym,dso'],
                         capture_output=True, text=True).stdout
    samples, cur = [], None
    for line in out.split('\n'):
        if not line.strip():
            if cur:
                samples.append(cur)
            cur = None
            continue
        if re.match(r'^\s*\d+\s*$', line):
            cur = (int(line.split()[0]), [])
            continue
        if cur is None:
            continue
        rest = line.strip().split(' ', 1)
        if len(rest) < 2:
            continue
        i = rest[1].rfind(' (')
        cur[1].append((rest[1][:i], rest[1][i + 2:-1]))
    if cur:
        samples.append(cur)
    return [s for s in samples if s[1]]


def main():
    for d in sys.argv[1:]:
        lg = [json.loads(l) for l in open(d + '/loadgen.jsonl') if l.startswith('{')]
        lg = [x for x in lg if 'server_us_per_msg' in x][-1]
        us = lg['server_us_per_msg']
        samples = parse(d)
        uws = any('uws_' in dso for _, ch in samples for _, dso in ch[:3])
        markers = UWS_MARKERS if uws else IX_MARKERS
        by_tid = collections.Counter(t for t, _ in samples)
        js_tid = by_tid.most_common(1)[0][0] if uws else None
        if not uws:
            # The JavaScript thread is the one that runs JIT code.
            js = collections.Counter(t for t, ch in samples if any(dso.startswith('/tmp/perf-') for _, dso in ch))
            js_tid = js.most_common(1)[0][0] if js else by_tid.most_common(1)[0][0]
        table = collections.Counter()
        for tid, ch in samples:
            role = 'js' if tid == js_tid else 'io'
            b = kernel_bucket(ch) if ch[0][1] == KERNEL else user_bucket(ch, markers, role)
            table[(role, b)] += 1
        n = len(samples)
        print(f'== {d}: {n} samples, {lg["msgs_per_s"]:.0f} msg/s, server {us:.2f} us/msg, '
              f'server_cpu {lg["server_cpu"]:.2f}, other_cpu {lg.get("other_cpu", 0):.2f}, '
              f'machine_busy {lg.get("machine_busy", 0):.2f}')
        for role in ('js', 'io'):
            rows = [(b, c) for (r, b), c in table.items() if r == role]
            tot = sum(c for _, c in rows)
            if not tot:
                continue
            print(f'  {role} thread(s): {100 * tot / n:.1f} % = {us * tot / n:.2f} us/msg')
            for b, c in sorted(rows, key=lambda x: -x[1]):
                print(f'    {b:55s} {100 * c / n:5.1f} % {us * c / n:6.2f} us')


main()
