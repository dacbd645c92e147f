#include "map.h"

#include <bpf/bpf.h>
#include <fcntl.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <vector>

#include "args.h"
#include "btf_describe.h"
#include "bytes.h"
#include "errors.h"

namespace thunderpac {
namespace {

Napi::Value CopyBytes(Napi::Env env, const uint8_t* data, size_t size) {
  return Napi::Buffer<uint8_t>::Copy(env, data, size);
}

struct BtfDeleter {
  void operator()(btf* types) const { btf__free(types); }
};

}  // namespace

bool IsPerCpuMapType(uint32_t type) {
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

Napi::Function BpfMapWrap::Init(Napi::Env env) {
  return DefineClass(env, "BpfMap",
                     {
                         InstanceMethod<&BpfMapWrap::Info>("info"),
                         InstanceAccessor<&BpfMapWrap::Fd>("fd"),
                         InstanceMethod<&BpfMapWrap::Lookup>("lookup"),
                         InstanceMethod<&BpfMapWrap::LookupInto>("lookupInto"),
                         InstanceMethod<&BpfMapWrap::LookupAndDelete>("lookupAndDelete"),
                         InstanceMethod<&BpfMapWrap::Update>("update"),
                         InstanceMethod<&BpfMapWrap::Delete>("delete"),
                         InstanceMethod<&BpfMapWrap::NextKey>("nextKey"),
                         InstanceMethod<&BpfMapWrap::LookupBatch>("lookupBatch"),
                         InstanceMethod<&BpfMapWrap::UpdateBatch>("updateBatch"),
                         InstanceMethod<&BpfMapWrap::DeleteBatch>("deleteBatch"),
                         InstanceMethod<&BpfMapWrap::Freeze>("freeze"),
                         InstanceMethod<&BpfMapWrap::Pin>("pin"),
                         InstanceMethod<&BpfMapWrap::Btf>("btf"),
                         InstanceMethod<&BpfMapWrap::Close>("close"),
                     });
}

BpfMapWrap::BpfMapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfMapWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Value source = info[0];
  if (source.IsNumber()) {
    const int fd = ToInt32(source, "map fd");
    fd_.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!fd_.valid()) {
      const int errnum = errno;
      ThrowError(env, code::kMap, errnum, "cannot duplicate map fd " + std::to_string(fd) + ": " + ErrnoText(errnum));
    }
  } else if (source.IsObject() && source.As<Napi::Object>().Has("pinned")) {
    const std::string path = ToString(source.As<Napi::Object>().Get("pinned"), "pinned");
    fd_.reset(bpf_obj_get(path.c_str()));
    if (!fd_.valid()) {
      const int errnum = errno;
      JsError(env, errnum == ENOENT ? code::kNotFound : code::kMap, errnum,
              "cannot open pinned map " + path + ": " + ErrnoText(errnum))
          .Set("path", path)
          .Throw();
    }
  } else if (source.IsObject() && source.As<Napi::Object>().Has("create")) {
    Napi::Value spec = source.As<Napi::Object>().Get("create");
    if (!spec.IsObject()) ThrowInvalidArgument(env, "create must be an object");
    Napi::Object create = spec.As<Napi::Object>();
    const uint32_t type = ToUint32(create.Get("type"), "type");
    const uint32_t keySize = OptUint32(create, "keySize").value_or(0);
    const uint32_t valueSize = OptUint32(create, "valueSize").value_or(0);
    const uint32_t maxEntries = ToUint32(create.Get("maxEntries"), "maxEntries");
    const std::string name = OptString(create, "name").value_or("");
    LIBBPF_OPTS(bpf_map_create_opts, options);
    options.map_flags = OptUint32(create, "flags").value_or(0);
    if (auto inner = OptInt32(create, "innerMapFd")) options.inner_map_fd = static_cast<uint32_t>(*inner);
    const int fd = bpf_map_create(static_cast<bpf_map_type>(type), name.empty() ? nullptr : name.c_str(), keySize,
                                  valueSize, maxEntries, &options);
    if (fd < 0) {
      const int errnum = errno;
      ThrowError(env, code::kMap, errnum,
                 "cannot create map" + (name.empty() ? std::string() : " '" + name + "'") + " of type " +
                     std::to_string(type) + ": " + ErrnoText(errnum));
    }
    fd_.reset(fd);
  } else {
    ThrowInvalidArgument(env, "BpfMap needs a map fd, { pinned: path } or { create: spec }");
  }
  ReadInfo(env);
}

void BpfMapWrap::ReadInfo(Napi::Env env) {
  bpf_map_info mapInfo{};
  uint32_t length = sizeof(mapInfo);
  if (bpf_obj_get_info_by_fd(fd_.get(), &mapInfo, &length) != 0) {
    const int errnum = errno;
    fd_.reset();
    ThrowError(env, errnum == EINVAL ? code::kInvalidArgument : code::kMap, errnum,
               "not a BPF map fd: " + ErrnoText(errnum));
  }
  name_ = mapInfo.name;
  id_ = mapInfo.id;
  type_ = mapInfo.type;
  keySize_ = mapInfo.key_size;
  valueSize_ = mapInfo.value_size;
  maxEntries_ = mapInfo.max_entries;
  flags_ = mapInfo.map_flags;
  btfId_ = mapInfo.btf_id;
  btfKeyTypeId_ = mapInfo.btf_key_type_id;
  btfValueTypeId_ = mapInfo.btf_value_type_id;
  perCpu_ = IsPerCpuMapType(type_);
  userValueSize_ = valueSize_;
  if (perCpu_) {
    const int cpus = libbpf_num_possible_cpus();
    if (cpus < 0) ThrowError(env, code::kSystem, -cpus, "cannot count possible CPUs: " + ErrnoText(-cpus));
    userValueSize_ = static_cast<uint32_t>(cpus) * ((valueSize_ + 7) / 8 * 8);
  }
}

int BpfMapWrap::LiveFd(Napi::Env env, const char* operation) const {
  if (!fd_.valid()) {
    JsError(env, code::kClosed, EBADF, std::string("cannot ") + operation + ": map '" + name_ + "' is closed")
        .Set("map", name_)
        .Throw();
  }
  return fd_.get();
}

void BpfMapWrap::CheckKey(Napi::Env env, size_t size, const char* operation) const {
  if (size != keySize_) {
    JsError(env, code::kInvalidArgument, EINVAL,
            std::string(operation) + ": map '" + name_ + "' has " + std::to_string(keySize_) + "-byte keys, got " +
                std::to_string(size) + " bytes")
        .Set("map", name_)
        .Throw();
  }
}

void BpfMapWrap::CheckValue(Napi::Env env, size_t size, const char* operation) const {
  if (size != userValueSize_) {
    JsError(env, code::kInvalidArgument, EINVAL,
            std::string(operation) + ": map '" + name_ + "' takes " + std::to_string(userValueSize_) +
                "-byte values" + (perCpu_ ? " (one 8-byte-aligned slot per possible CPU)" : "") + ", got " +
                std::to_string(size) + " bytes")
        .Set("map", name_)
        .Throw();
  }
}

void BpfMapWrap::ThrowMapError(Napi::Env env, int errnum, const std::string& operation) const {
  JsError(env, code::kMap, errnum, operation + " on map '" + name_ + "' failed: " + ErrnoText(errnum))
      .Set("map", name_)
      .Set("operation", operation)
      .Throw();
}

Napi::Value BpfMapWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LiveFd(env, "describe a map");
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", name_);
  out.Set("id", Napi::Number::New(env, id_));
  out.Set("type", Napi::Number::New(env, type_));
  const char* typeName = libbpf_bpf_map_type_str(static_cast<bpf_map_type>(type_));
  out.Set("typeName", typeName == nullptr ? env.Null() : Napi::String::New(env, typeName));
  out.Set("keySize", Napi::Number::New(env, keySize_));
  out.Set("valueSize", Napi::Number::New(env, valueSize_));
  out.Set("maxEntries", Napi::Number::New(env, maxEntries_));
  out.Set("mapFlags", Napi::Number::New(env, flags_));
  out.Set("perCpu", Napi::Boolean::New(env, perCpu_));
  out.Set("userValueSize", Napi::Number::New(env, userValueSize_));
  out.Set("btfId", Napi::Number::New(env, btfId_));
  return out;
}

Napi::Value BpfMapWrap::Fd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), LiveFd(info.Env(), "get a map fd"));
}

// lookup(key, flags = 0) -> Buffer | null
Napi::Value BpfMapWrap::Lookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "look up a key");
  const ByteView key = GetBytes(info[0], "key");
  CheckKey(env, key.size, "lookup");
  const uint64_t flags = info[1].IsUndefined() ? 0 : ToUint32(info[1], "flags");
  thread_local std::vector<uint8_t> value;
  value.resize(std::max<uint32_t>(userValueSize_, 1));
  if (bpf_map_lookup_elem_flags(fd, key.data, value.data(), flags) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowMapError(env, errno, "lookup");
  }
  return CopyBytes(env, value.data(), userValueSize_);
}

// lookupInto(key, out, flags = 0) -> true when found (value written to `out`), false if absent.
// The allocation-free form of lookup() for hot loops: the caller reuses one buffer.
Napi::Value BpfMapWrap::LookupInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "look up a key");
  const ByteView key = GetBytes(info[0], "key");
  CheckKey(env, key.size, "lookupInto");
  const ByteView out = GetBytes(info[1], "out");
  CheckValue(env, out.size, "lookupInto");
  const uint64_t flags = info[2].IsUndefined() ? 0 : ToUint32(info[2], "flags");
  // GetBytes hands out a read-only view; the output buffer is the caller's to overwrite.
  if (bpf_map_lookup_elem_flags(fd, key.data, const_cast<uint8_t*>(out.data), flags) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowMapError(env, errno, "lookup");
  }
  return Napi::Boolean::New(env, true);
}

// lookupAndDelete(key | null) -> Buffer | null. Queues/stacks take no key.
Napi::Value BpfMapWrap::LookupAndDelete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "look up and delete a key");
  const void* keyData = nullptr;
  if (!info[0].IsNull() && !info[0].IsUndefined()) {
    const ByteView key = GetBytes(info[0], "key");
    CheckKey(env, key.size, "lookupAndDelete");
    keyData = key.data;
  }
  std::vector<uint8_t> value(std::max<uint32_t>(userValueSize_, 1));
  if (bpf_map_lookup_and_delete_elem(fd, keyData, value.data()) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowMapError(env, errno, "lookupAndDelete");
  }
  return CopyBytes(env, value.data(), userValueSize_);
}

// update(key, value, flags = BPF_ANY). EEXIST (NOEXIST) / ENOENT (EXIST) come back as errno.
Napi::Value BpfMapWrap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "update a key");
  const ByteView key = GetBytes(info[0], "key");
  CheckKey(env, key.size, "update");
  const ByteView value = GetBytes(info[1], "value");
  CheckValue(env, value.size, "update");
  const uint64_t flags = info[2].IsUndefined() ? uint64_t{BPF_ANY} : ToUint32(info[2], "flags");
  if (bpf_map_update_elem(fd, key.data, value.data, flags) != 0) ThrowMapError(env, errno, "update");
  return env.Undefined();
}

// delete(key) -> true when deleted, false when there was no such key.
Napi::Value BpfMapWrap::Delete(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "delete a key");
  const ByteView key = GetBytes(info[0], "key");
  CheckKey(env, key.size, "delete");
  if (bpf_map_delete_elem(fd, key.data) != 0) {
    if (errno == ENOENT) return Napi::Boolean::New(env, false);
    ThrowMapError(env, errno, "delete");
  }
  return Napi::Boolean::New(env, true);
}

// nextKey(key | null) -> the key after `key` (the first key for null), or null at the end.
Napi::Value BpfMapWrap::NextKey(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "iterate keys");
  const void* current = nullptr;
  if (!info[0].IsNull() && !info[0].IsUndefined()) {
    const ByteView key = GetBytes(info[0], "key");
    CheckKey(env, key.size, "nextKey");
    current = key.data;
  }
  std::vector<uint8_t> next(std::max<uint32_t>(keySize_, 1));
  if (bpf_map_get_next_key(fd, current, next.data()) != 0) {
    if (errno == ENOENT) return env.Null();
    ThrowMapError(env, errno, "nextKey");
  }
  return CopyBytes(env, next.data(), keySize_);
}

// lookupBatch({ token?: Buffer, count, delete?: boolean })
//   -> { keys: Buffer, values: Buffer, count, token: Buffer, done }
// `token` is the kernel's opaque position (absent to start); keys/values are packed arrays.
Napi::Value BpfMapWrap::LookupBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "batch-look up");
  Napi::Object options = OptionsArg(info, 0, "lookupBatch options");
  const uint32_t wanted = OptUint32(options, "count").value_or(std::max<uint32_t>(maxEntries_, 1));
  const bool andDelete = options.Get("delete").ToBoolean().Value();
  // Hash maps use a 4-byte bucket cursor, array-like maps a key-sized one.
  const size_t tokenSize = std::max<size_t>(keySize_, 8);
  std::vector<uint8_t> inToken(tokenSize), outToken(tokenSize);
  bool haveIn = false;
  Napi::Value token = options.Get("token");
  if (!token.IsUndefined() && !token.IsNull()) {
    const ByteView bytes = GetBytes(token, "token");
    std::copy_n(bytes.data, std::min(bytes.size, tokenSize), inToken.begin());
    haveIn = true;
  }
  std::vector<uint8_t> keys(static_cast<size_t>(wanted) * keySize_ + 1);
  std::vector<uint8_t> values(static_cast<size_t>(wanted) * userValueSize_ + 1);
  uint32_t count = wanted;
  LIBBPF_OPTS(bpf_map_batch_opts, batch);
  const int result = andDelete ? bpf_map_lookup_and_delete_batch(fd, haveIn ? inToken.data() : nullptr,
                                                                 outToken.data(), keys.data(), values.data(),
                                                                 &count, &batch)
                               : bpf_map_lookup_batch(fd, haveIn ? inToken.data() : nullptr, outToken.data(),
                                                      keys.data(), values.data(), &count, &batch);
  const int errnum = errno;
  // ENOENT: the walk reached the end; `count` still says how many came back in this call.
  if (result != 0 && errnum != ENOENT) ThrowMapError(env, errnum, andDelete ? "lookupAndDeleteBatch" : "lookupBatch");
  Napi::Object out = Napi::Object::New(env);
  out.Set("keys", CopyBytes(env, keys.data(), static_cast<size_t>(count) * keySize_));
  out.Set("values", CopyBytes(env, values.data(), static_cast<size_t>(count) * userValueSize_));
  out.Set("count", Napi::Number::New(env, count));
  out.Set("token", CopyBytes(env, outToken.data(), tokenSize));
  out.Set("done", Napi::Boolean::New(env, result != 0));
  return out;
}

// updateBatch(keys, values, count, flags = BPF_ANY) -> count updated
Napi::Value BpfMapWrap::UpdateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "batch-update");
  const ByteView keys = GetBytes(info[0], "keys");
  const ByteView values = GetBytes(info[1], "values");
  uint32_t count = ToUint32(info[2], "count");
  if (keys.size != static_cast<size_t>(count) * keySize_ || values.size != static_cast<size_t>(count) * userValueSize_) {
    ThrowInvalidArgument(env, "updateBatch: map '" + name_ + "' needs " + std::to_string(count) + " x " +
                                  std::to_string(keySize_) + "-byte keys and " + std::to_string(userValueSize_) +
                                  "-byte values");
  }
  LIBBPF_OPTS(bpf_map_batch_opts, batch);
  batch.elem_flags = info[3].IsUndefined() ? uint64_t{BPF_ANY} : ToUint32(info[3], "flags");
  if (bpf_map_update_batch(fd, keys.data, values.data, &count, &batch) != 0) {
    const int errnum = errno;
    JsError(env, code::kMap, errnum, "updateBatch on map '" + name_ + "' failed after " + std::to_string(count) +
                                         " elements: " + ErrnoText(errnum))
        .Set("map", name_)
        .Set("operation", "updateBatch")
        .Set("completed", Napi::Number::New(env, count))
        .Throw();
  }
  return Napi::Number::New(env, count);
}

// deleteBatch(keys, count) -> count deleted
Napi::Value BpfMapWrap::DeleteBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "batch-delete");
  const ByteView keys = GetBytes(info[0], "keys");
  uint32_t count = ToUint32(info[1], "count");
  if (keys.size != static_cast<size_t>(count) * keySize_) {
    ThrowInvalidArgument(env, "deleteBatch: map '" + name_ + "' needs " + std::to_string(count) + " x " +
                                  std::to_string(keySize_) + "-byte keys");
  }
  LIBBPF_OPTS(bpf_map_batch_opts, batch);
  if (bpf_map_delete_batch(fd, keys.data, &count, &batch) != 0) {
    const int errnum = errno;
    JsError(env, code::kMap, errnum, "deleteBatch on map '" + name_ + "' failed after " + std::to_string(count) +
                                         " elements: " + ErrnoText(errnum))
        .Set("map", name_)
        .Set("operation", "deleteBatch")
        .Set("completed", Napi::Number::New(env, count))
        .Throw();
  }
  return Napi::Number::New(env, count);
}

Napi::Value BpfMapWrap::Freeze(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (bpf_map_freeze(LiveFd(env, "freeze a map")) != 0) ThrowMapError(env, errno, "freeze");
  return env.Undefined();
}

Napi::Value BpfMapWrap::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "pin a map");
  const std::string path = ToString(info[0], "path");
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    const int errnum = errno;
    JsError(env, code::kMap, errnum, "cannot pin map '" + name_ + "' at " + path + ": " + ErrnoText(errnum))
        .Set("map", name_)
        .Set("path", path)
        .Throw();
  }
  return env.Undefined();
}

// btf() -> { key, value } type descriptions (btf_describe.h), or null without BTF.
Napi::Value BpfMapWrap::Btf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  LiveFd(env, "read a map's BTF");
  if (btfId_ == 0 || btfValueTypeId_ == 0) return env.Null();
  std::unique_ptr<btf, BtfDeleter> types(btf__load_from_kernel_by_id(btfId_));
  if (!types) {
    const int errnum = errno;
    ThrowError(env, code::kMap, errnum, "cannot load BTF of map '" + name_ + "': " + ErrnoText(errnum));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("key", btfKeyTypeId_ == 0 ? env.Null() : DescribeBtfType(env, types.get(), btfKeyTypeId_));
  out.Set("value", DescribeBtfType(env, types.get(), btfValueTypeId_));
  return out;
}

Napi::Value BpfMapWrap::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace thunderpac
