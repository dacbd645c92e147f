// BpfMap: one live kernel map, held by its own fd. Created from a loaded object's map (dup of
// its fd), from a pin in bpffs, or from scratch (bpf_map_create). Every operation is one bpf()
// syscall; key/value sizes are checked here so a bad buffer never reaches the kernel.
#pragma once

#include <linux/bpf.h>
#include <napi.h>

#include <cstdint>
#include <string>

#include "fd.h"

namespace thunderpac {

class BpfMapWrap : public Napi::ObjectWrap<BpfMapWrap> {
 public:
  static Napi::Function Init(Napi::Env env);

  // new BpfMap(fd: number)            dup()s a map fd (e.g. a loaded object's)
  // new BpfMap({ pinned: path })      opens a pinned map
  // new BpfMap({ create: { type, keySize, valueSize, maxEntries, flags?, name?, innerMapFd? } })
  explicit BpfMapWrap(const Napi::CallbackInfo& info);

  // The fd for another native call (e.g. ring buffer); throws EBPF_CLOSED when closed.
  int LiveFd(Napi::Env env, const char* operation) const;

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Fd(const Napi::CallbackInfo& info);
  Napi::Value Lookup(const Napi::CallbackInfo& info);
  Napi::Value LookupInto(const Napi::CallbackInfo& info);
  Napi::Value LookupAndDelete(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Delete(const Napi::CallbackInfo& info);
  Napi::Value NextKey(const Napi::CallbackInfo& info);
  Napi::Value LookupBatch(const Napi::CallbackInfo& info);
  Napi::Value UpdateBatch(const Napi::CallbackInfo& info);
  Napi::Value DeleteBatch(const Napi::CallbackInfo& info);
  Napi::Value Freeze(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Btf(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  void ReadInfo(Napi::Env env);
  void CheckKey(Napi::Env env, size_t size, const char* operation) const;
  void CheckValue(Napi::Env env, size_t size, const char* operation) const;
  [[noreturn]] void ThrowMapError(Napi::Env env, int errnum, const std::string& operation) const;

  UniqueFd fd_;
  std::string name_;
  uint32_t id_ = 0;
  uint32_t type_ = 0;
  uint32_t keySize_ = 0;
  uint32_t valueSize_ = 0;
  // What userspace reads/writes per key: per-CPU maps hold one 8-byte-aligned slot per CPU.
  uint32_t userValueSize_ = 0;
  uint32_t maxEntries_ = 0;
  uint32_t flags_ = 0;
  uint32_t btfId_ = 0;
  uint32_t btfKeyTypeId_ = 0;
  uint32_t btfValueTypeId_ = 0;
  bool perCpu_ = false;
};

bool IsPerCpuMapType(uint32_t type);

}  // namespace thunderpac
