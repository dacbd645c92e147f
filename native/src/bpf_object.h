// BpfObject: one libbpf bpf_object (an ELF file of BPF programs and maps), opened from a
// path or from bytes, then loaded into the kernel. Thin on purpose: policy (which programs,
// limits, receipts) lives in TypeScript.
#pragma once

#include <bpf/libbpf.h>
#include <napi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace thunderpac {

class BpfObjectWrap : public Napi::ObjectWrap<BpfObjectWrap> {
 public:
  static Napi::Function Init(Napi::Env env);

  // new BpfObject(source: string | Uint8Array, options?: { objectName?: string })
  explicit BpfObjectWrap(const Napi::CallbackInfo& info);

 private:
  enum class State { kOpened, kLoaded, kLoadFailed, kClosed };

  struct ObjectCloser {
    void operator()(bpf_object* object) const { bpf_object__close(object); }
  };

  Napi::Value GetName(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Programs(const Napi::CallbackInfo& info);
  Napi::Value Maps(const Napi::CallbackInfo& info);
  Napi::Value TestRun(const Napi::CallbackInfo& info);
  Napi::Value MapLookup(const Napi::CallbackInfo& info);
  Napi::Value SetProgramOptions(const Napi::CallbackInfo& info);
  Napi::Value MapBtf(const Napi::CallbackInfo& info);
  Napi::Value ProgramBtf(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // Throws EBPF_CLOSED when the object was closed; returns the live object otherwise.
  bpf_object* Live(Napi::Env env, const char* operation) const;
  void RequireLoaded(Napi::Env env, const char* operation) const;
  bpf_program* FindProgram(Napi::Env env, const std::string& name) const;
  bpf_map* FindMap(Napi::Env env, const std::string& name) const;

  std::unique_ptr<bpf_object, ObjectCloser> object_;
  // libbpf parses the ELF during open; we keep the caller's bytes alive for the object's
  // lifetime anyway so no libbpf version can end up pointing into a freed JS buffer.
  std::vector<uint8_t> elfBytes_;
  std::string name_;
  std::string source_;
  State state_ = State::kOpened;
  // Verifier logs of successfully loaded programs, when load({ logLevel }) asked for them.
  std::map<std::string, std::string> verifierLogs_;
};

}  // namespace thunderpac
