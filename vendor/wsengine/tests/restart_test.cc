// Server stop() followed at once by start(), then clear() and destruction:
// each listener handle must keep the server alive until its own close
// callback has run (a later listener's hold must not be dropped by an
// earlier listener's close). Freed memory is filled with a pattern (glibc
// M_PERTURB) so that a use after free reads garbage and crashes rather than
// passing by luck; the ASan run of the engine tests catches it outright.
#include <malloc.h>

#include <chrono>
#include <memory>
#include <thread>

#include "check.h"
#include "wsengine/wsengine.h"

using namespace wsengine;

namespace {

class NullSink : public EventSink {
 public:
  bool push(Event&&) override { return true; }
};

void testStopStartClear(int rounds) {
  for (int i = 0; i < rounds; ++i) {
    auto sink = std::make_shared<NullSink>();
    std::weak_ptr<NullSink> weak = sink;
    {
      Server server(sink, 1);
      sink.reset();
      ServerOptions so;
      so.port = 0;
      CHECK(server.start(so).success);
      server.stop();
      StartResult again = server.start(so);
      CHECK(again.success);
      CHECK(server.running());
      server.clear();
    }
    // The server (which owns the sink) goes once every handle has closed.
    for (int k = 0; k < 200 && !weak.expired(); ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(weak.expired());
  }
}

}  // namespace

int main() {
  mallopt(M_PERTURB, 65);
  testStopStartClear(100);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return check::finish();
}
