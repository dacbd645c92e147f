#include "bytes.h"

#include <string>

#include "errors.h"

namespace thunderpac {

bool IsBytes(Napi::Value value) {
  return value.IsTypedArray() || value.IsDataView() || value.IsArrayBuffer() || value.IsBuffer();
}

ByteView GetBytes(Napi::Value value, const char* what) {
  if (value.IsTypedArray()) {
    auto array = value.As<Napi::TypedArray>();
    auto* base = static_cast<const uint8_t*>(array.ArrayBuffer().Data());
    return {base + array.ByteOffset(), array.ByteLength()};
  }
  if (value.IsDataView()) {
    auto view = value.As<Napi::DataView>();
    auto* base = static_cast<const uint8_t*>(view.ArrayBuffer().Data());
    return {base + view.ByteOffset(), view.ByteLength()};
  }
  if (value.IsArrayBuffer()) {
    auto buffer = value.As<Napi::ArrayBuffer>();
    return {static_cast<const uint8_t*>(buffer.Data()), buffer.ByteLength()};
  }
  ThrowInvalidArgument(value.Env(), std::string(what) + " must be a Buffer, TypedArray, DataView or ArrayBuffer");
}

}  // namespace thunderpac
