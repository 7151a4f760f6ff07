// Recycled large buffers (message payloads, send remainders): a fresh
// megabyte costs page faults and zero-filling every time, a recycled one
// costs nothing. Process-wide, thread-safe, bounded; idle buffers are freed
// after a few seconds without use.
#pragma once

#include <cstddef>
#include <string>

#include "wsengine/wsengine.h"

namespace wsengine {

// Buffers smaller than this are left to malloc (cheap, no page faults).
constexpr size_t kPooledMin = 32 * 1024;

// A string with capacity >= `capacity`. Its size is whatever it was when
// recycled (stale bytes, up to its capacity), so that a caller filling it
// with a read does not pay for zero-filling: callers truncate to what they
// wrote. A fresh one (pool empty) has size 0.
std::string takeBuffer(size_t capacity);

// recycleBuffer (wsengine.h) gives a buffer back.

// bufferPoolStats (wsengine.h) reports on it.

}  // namespace wsengine
