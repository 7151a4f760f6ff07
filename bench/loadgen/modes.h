// The load generator's modes. Each runs its own loop to completion and prints
// one JSON result line (idle also prints a "ready" line, flood-server a
// "listening" line). The return value is the process exit code.
#pragma once

#include "common.h"

namespace loadgen {

int runEcho(const Options& o);
int runBroadcast(const Options& o);
int runLatency(const Options& o);
int runIdle(const Options& o);
int runFloodServer(const Options& o);

}  // namespace loadgen
