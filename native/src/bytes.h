// Read-only view of the bytes of a JS Buffer / TypedArray / DataView / ArrayBuffer argument.
// Valid while the JS value is reachable (i.e. for the duration of the native call).
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace thunderpac {

struct ByteView {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

bool IsBytes(Napi::Value value);

// Throws EBPF_INVALID_ARG naming `what` when the value holds no bytes.
ByteView GetBytes(Napi::Value value, const char* what);

}  // namespace thunderpac
