// JS errors thrown by the addon. Every error carries a stable `code` (shared with
// src/backends/ebpf/errors.ts, which turns them into typed classes), a positive `errno`
// and a readable message; callers attach extra fields (program, verifierLog, ...) first.
#pragma once

#include <napi.h>

#include <string>
#include <string_view>

namespace thunderpac {

namespace code {
inline constexpr const char* kOpen = "EBPF_OPEN";
inline constexpr const char* kLoad = "EBPF_LOAD";
inline constexpr const char* kVerifier = "EBPF_VERIFIER";
inline constexpr const char* kClosed = "EBPF_CLOSED";
inline constexpr const char* kState = "EBPF_STATE";
inline constexpr const char* kNotFound = "EBPF_NOT_FOUND";
inline constexpr const char* kTestRun = "EBPF_TEST_RUN";
inline constexpr const char* kMap = "EBPF_MAP";
inline constexpr const char* kInvalidArgument = "EBPF_INVALID_ARG";
inline constexpr const char* kSystem = "EBPF_SYSTEM";
}  // namespace code

class JsError {
 public:
  JsError(Napi::Env env, const char* code, int errnum, const std::string& message);

  JsError& Set(const char* key, Napi::Value value);
  JsError& Set(const char* key, std::string_view value);

  // Throws as a C++ exception; node-addon-api rethrows it into JavaScript.
  [[noreturn]] void Throw() const;

 private:
  Napi::Env env_;
  Napi::Error error_;
};

[[noreturn]] void ThrowError(Napi::Env env, const char* code, int errnum, const std::string& message);

// Argument validation failures (wrong type or size) use errno EINVAL.
[[noreturn]] void ThrowInvalidArgument(Napi::Env env, const std::string& message);

// Text for a positive errno, including libbpf's own codes (>= 4000).
std::string ErrnoText(int errnum);

}  // namespace thunderpac
