// Unpredictable bytes for masking keys and handshake nonces (RFC 6455 §10.3),
// drawn from OpenSSL's CSPRNG in blocks so that masking costs no syscall.
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsengine {

// Thread-safe (per-thread pool).
void randomBytes(uint8_t* out, size_t len);

}  // namespace wsengine
