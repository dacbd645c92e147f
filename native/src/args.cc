#include "args.h"

#include <cmath>
#include <limits>

#include "errors.h"

namespace thunderpac {

uint32_t ToUint32(Napi::Value value, const char* what) {
  if (!value.IsNumber()) ThrowInvalidArgument(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number < 0 || number != std::floor(number) ||
      number > std::numeric_limits<uint32_t>::max()) {
    ThrowInvalidArgument(value.Env(), std::string(what) + " must be an integer in [0, 2^32)");
  }
  return static_cast<uint32_t>(number);
}

int32_t ToInt32(Napi::Value value, const char* what) {
  if (!value.IsNumber()) ThrowInvalidArgument(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number != std::floor(number) || number < std::numeric_limits<int32_t>::min() ||
      number > std::numeric_limits<int32_t>::max()) {
    ThrowInvalidArgument(value.Env(), std::string(what) + " must be a 32-bit integer");
  }
  return static_cast<int32_t>(number);
}

std::string ToString(Napi::Value value, const char* what) {
  if (!value.IsString()) ThrowInvalidArgument(value.Env(), std::string(what) + " must be a string");
  return value.As<Napi::String>().Utf8Value();
}

std::optional<uint32_t> OptUint32(Napi::Object object, const char* key) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  return ToUint32(value, key);
}

std::optional<int32_t> OptInt32(Napi::Object object, const char* key) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  return ToInt32(value, key);
}

std::optional<std::string> OptString(Napi::Object object, const char* key) {
  Napi::Value value = object.Get(key);
  if (value.IsUndefined() || value.IsNull()) return std::nullopt;
  return ToString(value, key);
}

Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index, const char* what) {
  Napi::Value value = info[index];
  if (value.IsUndefined() || value.IsNull()) return Napi::Object::New(info.Env());
  if (!value.IsObject()) ThrowInvalidArgument(info.Env(), std::string(what) + " must be an object");
  return value.As<Napi::Object>();
}

}  // namespace thunderpac
