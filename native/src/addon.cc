// thunderpac_native: the Node-API addon. Module entry point.
#include <bpf/libbpf.h>
#include <napi.h>

#include <string>

#include "bpf_object.h"
#include "errors.h"
#include "file_lock.h"
#include "libbpf_log.h"
#include "map.h"
#include "peer_cred.h"
#include "ringbuf.h"
#include "xdp.h"
#include "test_run.h"

namespace thunderpac {
namespace {

Napi::Value LibbpfVersion(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(),
                           std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
}

Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus < 0) ThrowError(info.Env(), code::kSystem, -cpus, "cannot count possible CPUs: " + ErrnoText(-cpus));
  return Napi::Number::New(info.Env(), cpus);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrintCallback();
  exports.Set("libbpfVersion", Napi::Function::New<LibbpfVersion>(env, "libbpfVersion"));
  exports.Set("numPossibleCpus", Napi::Function::New<NumPossibleCpus>(env, "numPossibleCpus"));
  exports.Set("testRunFd", Napi::Function::New<TestRunFd>(env, "testRunFd"));
  exports.Set("BpfObject", BpfObjectWrap::Init(env));
  exports.Set("BpfMap", BpfMapWrap::Init(env));
  exports.Set("BpfLink", BpfLinkWrap::Init(env));
  exports.Set("RingBuffer", RingBufferWrap::Init(env));
  exports.Set("xdpAttach", Napi::Function::New<XdpAttach>(env, "xdpAttach"));
  exports.Set("xdpDetach", Napi::Function::New<XdpDetach>(env, "xdpDetach"));
  exports.Set("xdpQuery", Napi::Function::New<XdpQuery>(env, "xdpQuery"));
  exports.Set("progInfo", Napi::Function::New<ProgInfo>(env, "progInfo"));
  exports.Set("progPin", Napi::Function::New<ProgPin>(env, "progPin"));
  exports.Set("enableStats", Napi::Function::New<EnableStats>(env, "enableStats"));
  exports.Set("flockFd", Napi::Function::New<FlockFd>(env, "flockFd"));
  exports.Set("funlockFd", Napi::Function::New<FunlockFd>(env, "funlockFd"));
  exports.Set("peerCredentials", Napi::Function::New<PeerCredentials>(env, "peerCredentials"));
  return exports;
}

}  // namespace
}  // namespace thunderpac

// NODE_API_MODULE pastes the init function's name into an identifier, so it must be unqualified.
static Napi::Object InitThunderpacNative(Napi::Env env, Napi::Object exports) { return thunderpac::Init(env, exports); }

NODE_API_MODULE(thunderpac_native, InitThunderpacNative)
