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

// takeBuffer and recycleBuffer (wsengine.h) take and give back buffers.

// bufferPoolStats (wsengine.h) reports on it.

}  // namespace wsengine
