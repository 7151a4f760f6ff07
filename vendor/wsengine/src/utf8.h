// Incremental UTF-8 validation (RFC 3629), fail-fast: a sequence that can no
// longer become valid is reported at the byte where that becomes certain, even
// across fragment boundaries (Autobahn case 6.x behaviour).
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsengine {

class Utf8Validator {
 public:
  void reset() { state_ = 0; pending_ = 0; }
  // Returns false as soon as the input is invalid.
  bool feed(const uint8_t* data, size_t len);
  // True when the input so far ends on a code point boundary.
  bool complete() const { return state_ == 0; }
  // Number of trailing bytes fed so far that belong to an unfinished code
  // point (0..3); lets a caller deliver only whole code points.
  size_t pendingBytes() const { return pending_; }

 private:
  uint32_t state_ = 0;
  uint32_t pending_ = 0;  // 0..3
};

bool isValidUtf8(const uint8_t* data, size_t len);

}  // namespace wsengine
