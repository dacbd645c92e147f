// XDP attachment primitives (thin: which program goes where, and whether replacing is allowed,
// is decided in src/backends/ebpf/xdp.ts):
//   xdpAttach({ ifname, netns?, progFd, flags, expectedProgId? })   netlink attach; with an
//       expected id the replace is atomic (XDP_FLAGS_REPLACE + that program's fd)
//   xdpDetach({ ifname, netns?, flags, expectedProgId? })
//   xdpQuery({ ifname, netns? }) -> { ifindex, progId, drvProgId, skbProgId, hwProgId, attachMode }
//   progInfo({ fd } | { id } | { pinned }) -> { id, name, type, typeName, tag }
//   progPin(progFd, path)
//   BpfLink: new BpfLink({ pinned }) | new BpfLink({ xdp: { ifname, netns?, progFd, flags } })
#pragma once

#include <napi.h>

#include <string>

#include "fd.h"

namespace thunderpac {

Napi::Value XdpAttach(const Napi::CallbackInfo& info);
Napi::Value XdpDetach(const Napi::CallbackInfo& info);
Napi::Value XdpQuery(const Napi::CallbackInfo& info);
Napi::Value ProgInfo(const Napi::CallbackInfo& info);
Napi::Value ProgPin(const Napi::CallbackInfo& info);
// enableStats() -> fd: program run counts/times are collected while this fd stays open.
Napi::Value EnableStats(const Napi::CallbackInfo& info);

class BpfLinkWrap : public Napi::ObjectWrap<BpfLinkWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit BpfLinkWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Pin(const Napi::CallbackInfo& info);
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Detach(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  int LiveFd(Napi::Env env, const char* operation) const;

  UniqueFd fd_;
  std::string label_;
};

}  // namespace thunderpac
