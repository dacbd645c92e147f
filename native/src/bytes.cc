#include "bytes.h"

#include <string>

#include "errors.h"

namespace thunderpac {
namespace {

size_t ElementSize(napi_typedarray_type type) {
  switch (type) {
    case napi_int16_array:
    case napi_uint16_array:
      return 2;
    case napi_int32_array:
    case napi_uint32_array:
    case napi_float32_array:
      return 4;
    case napi_float64_array:
    case napi_bigint64_array:
    case napi_biguint64_array:
      return 8;
    default:
      return 1;
  }
}

}  // namespace

bool IsBytes(Napi::Value value) {
  return value.IsTypedArray() || value.IsDataView() || value.IsArrayBuffer() || value.IsBuffer();
}

// One raw napi_get_typedarray_info call on the common path (a Uint8Array or Buffer): it hands
// back the element pointer with the view's offset applied. This is the map hot path, where
// the node-addon-api wrappers' several calls per argument were measurable.
ByteView GetBytes(Napi::Value value, const char* what) {
  napi_env env = value.Env();
  bool is = false;
  if (napi_is_typedarray(env, value, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) == napi_ok) {
      return {static_cast<const uint8_t*>(data), length * ElementSize(type)};
    }
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
