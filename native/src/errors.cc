#include "errors.h"

#include <bpf/libbpf.h>

#include <cerrno>

namespace thunderpac {

JsError::JsError(Napi::Env env, const char* code, int errnum, const std::string& message)
    : env_(env), error_(Napi::Error::New(env, message)) {
  Napi::Object value = error_.Value();
  value.Set("code", Napi::String::New(env, code));
  value.Set("errno", Napi::Number::New(env, errnum));
}

JsError& JsError::Set(const char* key, Napi::Value value) {
  error_.Value().Set(key, value);
  return *this;
}

JsError& JsError::Set(const char* key, std::string_view value) {
  error_.Value().Set(key, Napi::String::New(env_, value.data(), value.size()));
  return *this;
}

void JsError::Throw() const { throw error_; }

void ThrowError(Napi::Env env, const char* code, int errnum, const std::string& message) {
  JsError(env, code, errnum, message).Throw();
}

void ThrowInvalidArgument(Napi::Env env, const std::string& message) {
  ThrowError(env, code::kInvalidArgument, EINVAL, message);
}

std::string ErrnoText(int errnum) {
  char buffer[256];
  // libbpf_strerror knows both libc errnos and libbpf's LIBBPF_ERRNO__* range.
  if (libbpf_strerror(errnum, buffer, sizeof(buffer)) == 0) return buffer;
  return "error " + std::to_string(errnum);
}

}  // namespace thunderpac
