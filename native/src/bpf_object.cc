#include "bpf_object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>

#include <cerrno>
#include <string_view>

#include "btf_describe.h"
#include "bytes.h"
#include "errors.h"
#include "libbpf_log.h"
#include "test_run.h"

namespace thunderpac {
namespace {

constexpr const char* kDefaultMemoryObjectName = "memory";

Napi::Value StringOrNull(Napi::Env env, const char* text) {
  return text == nullptr ? env.Null() : Napi::String::New(env, text);
}

Napi::Value FdOrNull(Napi::Env env, int fd) {
  return fd < 0 ? env.Null() : Napi::Number::New(env, fd);
}

bool IsPerCpuMap(bpf_map_type type) {
  switch (type) {
    case BPF_MAP_TYPE_PERCPU_ARRAY:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
      return true;
    default:
      return false;
  }
}

std::string JoinProgramNames(bpf_object* object) {
  std::string names;
  bpf_program* program;
  bpf_object__for_each_program(program, object) {
    if (!names.empty()) names += ", ";
    names += bpf_program__name(program);
  }
  return names.empty() ? "none" : names;
}

std::string JoinMapNames(bpf_object* object) {
  std::string names;
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    if (!names.empty()) names += ", ";
    names += bpf_map__name(map);
  }
  return names.empty() ? "none" : names;
}

std::string WithLibbpfDetail(std::string message, const CapturedLibbpfOutput& captured) {
  const std::string detail = captured.LastMessageLine();
  if (!detail.empty()) message += " (libbpf: " + detail + ")";
  return message;
}

}  // namespace

Napi::Function BpfObjectWrap::Init(Napi::Env env) {
  return DefineClass(env, "BpfObject",
                     {
                         InstanceAccessor<&BpfObjectWrap::GetName>("name"),
                         InstanceAccessor<&BpfObjectWrap::GetState>("state"),
                         InstanceMethod<&BpfObjectWrap::Load>("load"),
                         InstanceMethod<&BpfObjectWrap::Programs>("programs"),
                         InstanceMethod<&BpfObjectWrap::Maps>("maps"),
                         InstanceMethod<&BpfObjectWrap::TestRun>("testRun"),
                         InstanceMethod<&BpfObjectWrap::MapLookup>("mapLookup"),
                         InstanceMethod<&BpfObjectWrap::SetProgramOptions>("setProgramOptions"),
                         InstanceMethod<&BpfObjectWrap::MapBtf>("mapBtf"),
                         InstanceMethod<&BpfObjectWrap::ProgramBtf>("programBtf"),
                         InstanceMethod<&BpfObjectWrap::Close>("close"),
                     });
}

BpfObjectWrap::BpfObjectWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfObjectWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Value source = info[0];
  Napi::Value options = info[1];

  std::string objectName;
  // For bytes read from a file: the file's path, named in errors as if it had been opened by
  // path (the host reads and checks untrusted files itself, then hands libbpf the same bytes).
  std::string sourcePath;
  if (options.IsObject()) {
    Napi::Value name = options.As<Napi::Object>().Get("objectName");
    if (name.IsString()) {
      objectName = name.As<Napi::String>().Utf8Value();
    } else if (!name.IsUndefined()) {
      ThrowInvalidArgument(env, "objectName must be a string");
    }
    Napi::Value path = options.As<Napi::Object>().Get("sourcePath");
    if (path.IsString()) {
      sourcePath = path.As<Napi::String>().Utf8Value();
    } else if (!path.IsUndefined()) {
      ThrowInvalidArgument(env, "sourcePath must be a string");
    }
  } else if (!options.IsUndefined() && !options.IsNull()) {
    ThrowInvalidArgument(env, "BpfObject options must be an object");
  }

  LIBBPF_OPTS(bpf_object_open_opts, openOptions);
  LibbpfCapture capture;
  bpf_object* object = nullptr;
  if (source.IsString()) {
    source_ = source.As<Napi::String>().Utf8Value();
    if (!objectName.empty()) openOptions.object_name = objectName.c_str();
    object = bpf_object__open_file(source_.c_str(), &openOptions);
  } else if (IsBytes(source)) {
    const ByteView bytes = GetBytes(source, "source");
    elfBytes_.assign(bytes.data, bytes.data + bytes.size);
    if (objectName.empty()) objectName = kDefaultMemoryObjectName;
    openOptions.object_name = objectName.c_str();
    source_ = sourcePath.empty() ? "<memory:" + objectName + ">" : sourcePath;
    // libbpf rejects a null buffer even for size 0; an empty object is simply not an ELF.
    static const uint8_t kEmpty = 0;
    object = bpf_object__open_mem(elfBytes_.empty() ? &kEmpty : elfBytes_.data(), elfBytes_.size(), &openOptions);
  } else {
    ThrowInvalidArgument(env, "BpfObject source must be a file path or the bytes of a BPF ELF object");
  }

  if (object == nullptr) {
    const int errnum = errno != 0 ? errno : EINVAL;
    elfBytes_.clear();
    state_ = State::kClosed;
    JsError error(env, code::kOpen, errnum,
                  WithLibbpfDetail("cannot open BPF object " + source_ + ": " + ErrnoText(errnum),
                                   capture.output()));
    error.Set("libbpfLog", capture.output().messages);
    if (source.IsString() || !sourcePath.empty()) error.Set("path", source_);
    error.Throw();
  }
  object_.reset(object);
  name_ = bpf_object__name(object);
}

bpf_object* BpfObjectWrap::Live(Napi::Env env, const char* operation) const {
  if (!object_) {
    JsError(env, code::kClosed, EBADF,
            std::string("cannot ") + operation + ": BPF object '" + name_ + "' is closed")
        .Set("objectName", name_)
        .Throw();
  }
  return object_.get();
}

void BpfObjectWrap::RequireLoaded(Napi::Env env, const char* operation) const {
  Live(env, operation);
  if (state_ == State::kLoaded) return;
  const std::string why =
      state_ == State::kLoadFailed ? "its load failed; open it again" : "it is not loaded yet; call load() first";
  ThrowError(env, code::kState, EINVAL, std::string("cannot ") + operation + " on BPF object '" + name_ + "': " + why);
}

bpf_program* BpfObjectWrap::FindProgram(Napi::Env env, const std::string& name) const {
  bpf_program* program = bpf_object__find_program_by_name(object_.get(), name.c_str());
  if (program == nullptr) {
    JsError(env, code::kNotFound, ENOENT,
            "no program '" + name + "' in BPF object '" + name_ + "' (programs: " + JoinProgramNames(object_.get()) +
                ")")
        .Set("program", name)
        .Throw();
  }
  return program;
}

bpf_map* BpfObjectWrap::FindMap(Napi::Env env, const std::string& name) const {
  bpf_map* map = bpf_object__find_map_by_name(object_.get(), name.c_str());
  if (map == nullptr) {
    JsError(env, code::kNotFound, ENOENT,
            "no map '" + name + "' in BPF object '" + name_ + "' (maps: " + JoinMapNames(object_.get()) + ")")
        .Set("map", name)
        .Throw();
  }
  return map;
}

Napi::Value BpfObjectWrap::GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

Napi::Value BpfObjectWrap::GetState(const Napi::CallbackInfo& info) {
  switch (state_) {
    case State::kOpened:
      return Napi::String::New(info.Env(), "opened");
    case State::kLoaded:
      return Napi::String::New(info.Env(), "loaded");
    case State::kLoadFailed:
      return Napi::String::New(info.Env(), "load-failed");
    case State::kClosed:
      break;
  }
  return Napi::String::New(info.Env(), "closed");
}

// load(options?: { logLevel?: number }): with a log level, the verifier log of every
// program is kept even on success (programs()[i].verifierLog). On failure throws
// EBPF_VERIFIER (a program was rejected: program, verifierLog) or EBPF_LOAD.
Napi::Value BpfObjectWrap::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* object = Live(env, "load");
  if (state_ == State::kLoaded) ThrowError(env, code::kState, EALREADY, "BPF object '" + name_ + "' is already loaded");
  if (state_ == State::kLoadFailed) {
    // libbpf marks an object loaded even when loading failed; a retry needs a fresh open.
    ThrowError(env, code::kState, EINVAL, "BPF object '" + name_ + "' failed to load before; open it again to retry");
  }

  uint32_t logLevel = 0;
  if (info[0].IsObject()) {
    Napi::Value level = info[0].As<Napi::Object>().Get("logLevel");
    if (level.IsNumber()) {
      logLevel = level.As<Napi::Number>().Uint32Value();
    } else if (!level.IsUndefined()) {
      ThrowInvalidArgument(env, "logLevel must be a number");
    }
  }
  if (logLevel != 0) {
    bpf_program* program;
    bpf_object__for_each_program(program, object) bpf_program__set_log_level(program, logLevel);
  }

  LibbpfCapture capture;
  const int result = bpf_object__load(object);
  const CapturedLibbpfOutput& captured = capture.output();
  if (result == 0) {
    state_ = State::kLoaded;
    for (const auto& [program, log] : captured.programLogs) verifierLogs_[program] = log;
    return info.This();
  }

  state_ = State::kLoadFailed;
  const int errnum = -result;
  std::string program = captured.failedProgram;
  if (program.empty() && !captured.programLogs.empty()) program = captured.programLogs.back().first;
  const std::string* verifierLog = program.empty() ? nullptr : captured.FindProgramLog(program);

  if (verifierLog != nullptr && !verifierLog->empty()) {
    JsError(env, code::kVerifier, errnum,
            "BPF verifier rejected program '" + program + "' of object '" + name_ + "': " + ErrnoText(errnum))
        .Set("objectName", name_)
        .Set("program", program)
        .Set("verifierLog", *verifierLog)
        .Set("libbpfLog", captured.messages)
        .Set("libbpfMessage", ErrnoText(errnum))
        .Throw();
  }
  std::string what = program.empty() ? "BPF object '" + name_ + "'" : "program '" + program + "' of BPF object '" + name_ + "'";
  JsError error(env, code::kLoad, errnum, WithLibbpfDetail("cannot load " + what + ": " + ErrnoText(errnum), captured));
  error.Set("objectName", name_).Set("libbpfLog", captured.messages).Set("libbpfMessage", ErrnoText(errnum));
  if (!program.empty()) error.Set("program", program);
  error.Throw();
}

Napi::Value BpfObjectWrap::Programs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* object = Live(env, "list programs");
  Napi::Array list = Napi::Array::New(env);
  uint32_t index = 0;
  bpf_program* program;
  bpf_object__for_each_program(program, object) {
    const bpf_prog_type type = bpf_program__type(program);
    const bpf_attach_type attachType = bpf_program__expected_attach_type(program);
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", bpf_program__name(program));
    entry.Set("sectionName", bpf_program__section_name(program));
    entry.Set("type", Napi::Number::New(env, type));
    entry.Set("typeName", StringOrNull(env, libbpf_bpf_prog_type_str(type)));
    entry.Set("attachType", Napi::Number::New(env, attachType));
    entry.Set("attachTypeName", StringOrNull(env, libbpf_bpf_attach_type_str(attachType)));
    entry.Set("fd", FdOrNull(env, state_ == State::kLoaded ? bpf_program__fd(program) : -1));
    entry.Set("insnCount", Napi::Number::New(env, static_cast<double>(bpf_program__insn_cnt(program))));
    entry.Set("autoload", Napi::Boolean::New(env, bpf_program__autoload(program)));
    auto log = verifierLogs_.find(bpf_program__name(program));
    if (log != verifierLogs_.end()) entry.Set("verifierLog", log->second);
    list.Set(index++, entry);
  }
  return list;
}

Napi::Value BpfObjectWrap::Maps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* object = Live(env, "list maps");
  Napi::Array list = Napi::Array::New(env);
  uint32_t index = 0;
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    const bpf_map_type type = bpf_map__type(map);
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", bpf_map__name(map));
    entry.Set("type", Napi::Number::New(env, type));
    entry.Set("typeName", StringOrNull(env, libbpf_bpf_map_type_str(type)));
    entry.Set("keySize", Napi::Number::New(env, bpf_map__key_size(map)));
    entry.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(map)));
    entry.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(map)));
    entry.Set("mapFlags", Napi::Number::New(env, static_cast<double>(bpf_map__map_flags(map))));
    entry.Set("perCpu", Napi::Boolean::New(env, IsPerCpuMap(type)));
    entry.Set("fd", FdOrNull(env, state_ == State::kLoaded ? bpf_map__fd(map) : -1));
    list.Set(index++, entry);
  }
  return list;
}

// testRun(program: string | fd, data, options?) -> see RunProgramTest.
Napi::Value BpfObjectWrap::TestRun(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env, "test-run");
  int progFd;
  std::string label;
  if (info[0].IsString()) {
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    bpf_program* program = FindProgram(env, name);
    RequireLoaded(env, "test-run");
    progFd = bpf_program__fd(program);
    label = "program '" + name + "'";
  } else if (info[0].IsNumber()) {
    progFd = info[0].As<Napi::Number>().Int32Value();
    label = "program fd " + std::to_string(progFd);
  } else {
    ThrowInvalidArgument(env, "testRun: program must be a name or a program fd");
  }
  const ByteView data = GetBytes(info[1], "data");
  const TestRunOptions options = ParseTestRunOptions(info[2]);
  return RunProgramTest(env, progFd, label, data, options);
}

// mapLookup(mapName, key) -> Buffer | null. For per-CPU maps the value holds one slot per
// possible CPU, each rounded up to 8 bytes (the kernel's layout).
Napi::Value BpfObjectWrap::MapLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env, "look up a map");
  if (!info[0].IsString()) ThrowInvalidArgument(env, "mapLookup: map name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_map* map = FindMap(env, name);
  RequireLoaded(env, "look up a map");
  const ByteView key = GetBytes(info[1], "key");
  if (key.size != bpf_map__key_size(map)) {
    ThrowInvalidArgument(env, "mapLookup: map '" + name + "' has " + std::to_string(bpf_map__key_size(map)) +
                                  "-byte keys, got " + std::to_string(key.size) + " bytes");
  }

  size_t valueSize = bpf_map__value_size(map);
  if (IsPerCpuMap(bpf_map__type(map))) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus < 0) ThrowError(env, code::kSystem, -cpus, "cannot count possible CPUs: " + ErrnoText(-cpus));
    valueSize = static_cast<size_t>(cpus) * ((valueSize + 7) / 8 * 8);
  }
  std::vector<uint8_t> value(valueSize);
  const int result = bpf_map__lookup_elem(map, key.data, key.size, value.data(), value.size(), 0);
  if (result == -ENOENT) return env.Null();
  if (result < 0) {
    JsError(env, code::kMap, -result, "lookup in map '" + name + "' failed: " + ErrnoText(-result))
        .Set("map", name)
        .Throw();
  }
  return Napi::Buffer<uint8_t>::Copy(env, value.data(), value.size());
}

// setProgramOptions(name, { type?, expectedAttachType?, flags?, autoload? }) before load():
// libbpf's bpf_program__set_* setters; they are refused (EBUSY) once the object is loaded.
Napi::Value BpfObjectWrap::SetProgramOptions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env, "set program options");
  if (!info[0].IsString()) ThrowInvalidArgument(env, "setProgramOptions: program name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  bpf_program* program = FindProgram(env, name);
  if (state_ != State::kOpened) {
    ThrowError(env, code::kState, EBUSY, "cannot change program '" + name + "' of BPF object '" + name_ + "' after load");
  }
  if (!info[1].IsObject()) ThrowInvalidArgument(env, "setProgramOptions: options must be an object");
  Napi::Object options = info[1].As<Napi::Object>();
  auto check = [&](int result, const char* what) {
    if (result < 0) ThrowError(env, code::kState, -result, std::string("cannot set ") + what + " of program '" + name + "': " + ErrnoText(-result));
  };
  Napi::Value type = options.Get("type");
  if (type.IsNumber()) check(bpf_program__set_type(program, static_cast<bpf_prog_type>(type.As<Napi::Number>().Uint32Value())), "type");
  Napi::Value attach = options.Get("expectedAttachType");
  if (attach.IsNumber()) {
    check(bpf_program__set_expected_attach_type(program, static_cast<bpf_attach_type>(attach.As<Napi::Number>().Uint32Value())),
          "expected attach type");
  }
  Napi::Value flags = options.Get("flags");
  if (flags.IsNumber()) check(bpf_program__set_flags(program, flags.As<Napi::Number>().Uint32Value()), "flags");
  Napi::Value autoload = options.Get("autoload");
  if (autoload.IsBoolean()) check(bpf_program__set_autoload(program, autoload.As<Napi::Boolean>().Value()), "autoload");
  return env.Undefined();
}

// mapBtf(name) -> { key, value } from the object's own BTF (works before load), or null.
// Uses bpf_map__btf_key_type_id / bpf_map__btf_value_type_id.
Napi::Value BpfObjectWrap::MapBtf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* object = Live(env, "read map BTF");
  if (!info[0].IsString()) ThrowInvalidArgument(env, "mapBtf: map name must be a string");
  bpf_map* map = FindMap(env, info[0].As<Napi::String>().Utf8Value());
  const btf* types = bpf_object__btf(object);
  const uint32_t valueId = bpf_map__btf_value_type_id(map);
  if (types == nullptr || valueId == 0) return env.Null();
  const uint32_t keyId = bpf_map__btf_key_type_id(map);
  Napi::Object out = Napi::Object::New(env);
  out.Set("key", keyId == 0 ? env.Null() : DescribeBtfType(env, types, keyId));
  out.Set("value", DescribeBtfType(env, types, valueId));
  return out;
}

// programBtf(name) -> { name, params: [{ name, type }], returns } from the BTF FUNC record of
// the program's entry function, or null when the object has no BTF for it.
Napi::Value BpfObjectWrap::ProgramBtf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_object* object = Live(env, "read program BTF");
  if (!info[0].IsString()) ThrowInvalidArgument(env, "programBtf: program name must be a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  FindProgram(env, name);
  const btf* types = bpf_object__btf(object);
  if (types == nullptr) return env.Null();
  const int funcId = btf__find_by_name_kind(types, name.c_str(), BTF_KIND_FUNC);
  if (funcId <= 0) return env.Null();
  const btf_type* func = btf__type_by_id(types, funcId);
  const btf_type* proto = func == nullptr ? nullptr : btf__type_by_id(types, func->type);
  if (proto == nullptr || !btf_is_func_proto(proto)) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", name);
  Napi::Array params = Napi::Array::New(env);
  const btf_param* param = btf_params(proto);
  for (uint16_t i = 0; i < btf_vlen(proto); i++, param++) {
    Napi::Object entry = Napi::Object::New(env);
    const char* paramName = btf__name_by_offset(types, param->name_off);
    entry.Set("name", paramName == nullptr ? "" : paramName);
    // Parameters are usually pointers (struct xdp_md *): name the pointee.
    const btf_type* paramType = btf__type_by_id(types, param->type);
    uint32_t shown = param->type;
    if (paramType != nullptr && btf_is_ptr(paramType)) shown = paramType->type;
    entry.Set("pointer", Napi::Boolean::New(env, paramType != nullptr && btf_is_ptr(paramType)));
    entry.Set("type", DescribeBtfType(env, types, shown));
    params.Set(i, entry);
  }
  out.Set("params", params);
  out.Set("returns", DescribeBtfType(env, types, proto->type));
  return out;
}

// Idempotent. Also runs from the GC finalizer (via object_'s destructor).
Napi::Value BpfObjectWrap::Close(const Napi::CallbackInfo& info) {
  object_.reset();
  elfBytes_.clear();
  elfBytes_.shrink_to_fit();
  verifierLogs_.clear();
  state_ = State::kClosed;
  return info.Env().Undefined();
}

}  // namespace thunderpac
