// Include this instead of <napi.h> so every file sees the same settings.
#pragma once

// In a worker being terminated every Node-API call fails; without this,
// node-addon-api rethrows the resulting error as a C++ exception out of the
// callback wrapper and the process aborts.
#ifndef NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#define NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS
#endif

#include <napi.h>
