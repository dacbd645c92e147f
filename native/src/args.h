// Small argument readers shared by the addon's functions. Each throws EBPF_INVALID_ARG with
// the argument's name when the JS value has the wrong type or range.
#pragma once

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>

namespace thunderpac {

uint32_t ToUint32(Napi::Value value, const char* what);
int32_t ToInt32(Napi::Value value, const char* what);
std::string ToString(Napi::Value value, const char* what);

// Optional fields of an options object (undefined/null → nullopt).
std::optional<uint32_t> OptUint32(Napi::Object object, const char* key);
std::optional<int32_t> OptInt32(Napi::Object object, const char* key);
std::optional<std::string> OptString(Napi::Object object, const char* key);

// info[index] as an options object; undefined/null → an empty object.
Napi::Object OptionsArg(const Napi::CallbackInfo& info, size_t index, const char* what);

}  // namespace thunderpac
