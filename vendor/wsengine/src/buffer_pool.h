// Recycled large buffers (message payloads, send remainders): a fresh
// megabyte costs page faults and zero-filling every time, a recycled one
// costs nothing. Process-wide, thread-safe, bounded; idle buffers are freed
// after a few seconds without use.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "wsengine/wsengine.h"

namespace wsengine {

// Buffers smaller than this are left to malloc (cheap, no page faults).
constexpr size_t kPooledMin = 32 * 1024;

// takeBuffer and recycleBuffer (wsengine.h) take and give back buffers.

// A recycled buffer of capacity >= `capacity` (and at most four times it),
// stale bytes and all, as takeBuffer gives; but an empty string, no memory
// set aside, when none fits: for a caller that must not reserve `capacity`
// up front (a peer's announced length is not yet memory it has sent).
std::string takePooled(size_t capacity);

// Small payloads (kSpareCapacity, wsengine.h): the spare strings the sink gave
// back (EventSink::pushAllTakeSpares), kept per thread (the IO thread that
// parses, or the embedder's in inline mode) so that taking one needs no lock.
// At most kSpareStash of them; Connection refills it after each socket read.
constexpr size_t kSpareStash = 64;
std::vector<std::string>& spareStash();
// A string of size 0 with capacity >= want from this thread's stash (the
// latest given back that fits: its memory is the warmest), else a fresh
// empty one (the caller reserves). Always size 0: a spare's old bytes are
// never part of what it will hold.
std::string takeSpare(size_t want);

// bufferPoolStats (wsengine.h) reports on it.

}  // namespace wsengine
