#include "xdp.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <cerrno>
#include <cstdio>

#include "args.h"
#include "errors.h"
#include "netns.h"

namespace thunderpac {
namespace {

inline constexpr const char* kXdp = "EBPF_XDP";

struct Target {
  std::string ifname;
  std::string netns;
};

Target ReadTarget(Napi::Object options) {
  Target target;
  target.ifname = ToString(options.Get("ifname"), "ifname");
  target.netns = OptString(options, "netns").value_or("");
  return target;
}

std::string Where(const Target& target) {
  return "'" + target.ifname + "'" + (target.netns.empty() ? "" : " (netns " + target.netns + ")");
}

[[noreturn]] void ThrowXdp(Napi::Env env, int errnum, const std::string& message, const Target& target) {
  JsError error(env, kXdp, errnum, message + ": " + ErrnoText(errnum));
  error.Set("device", target.ifname);
  if (!target.netns.empty()) error.Set("netns", target.netns);
  error.Throw();
}

// An fd for a program id, closed when the scope ends; throws EBPF_NOT_FOUND if it is gone.
UniqueFd ProgramFdById(Napi::Env env, uint32_t id) {
  UniqueFd fd(bpf_prog_get_fd_by_id(id));
  if (!fd.valid()) {
    const int errnum = errno;
    ThrowError(env, errnum == ENOENT ? code::kNotFound : code::kSystem, errnum,
               "no BPF program with id " + std::to_string(id) + ": " + ErrnoText(errnum));
  }
  return fd;
}

std::string Hex(const uint8_t* bytes, size_t size) {
  std::string out;
  char buffer[3];
  for (size_t i = 0; i < size; i++) {
    std::snprintf(buffer, sizeof(buffer), "%02x", bytes[i]);
    out += buffer;
  }
  return out;
}

/**
 * With `expectedProgId`, the kernel attaches or detaches only if that program is still the one
 * on the interface (XDP_FLAGS_REPLACE + old_prog_fd): the atomic compare-and-swap both
 * operations share. The returned fd must outlive the syscall.
 */
UniqueFd ExpectOldProgram(Napi::Env env, Napi::Object options, uint32_t& flags, bpf_xdp_attach_opts& attach) {
  const std::optional<uint32_t> expected = OptUint32(options, "expectedProgId");
  if (!expected || *expected == 0) return UniqueFd();
  UniqueFd oldFd = ProgramFdById(env, *expected);
  attach.old_prog_fd = oldFd.get();
  flags |= XDP_FLAGS_REPLACE;
  return oldFd;
}

}  // namespace

Napi::Value XdpAttach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArg(info, 0, "xdpAttach options");
  const Target target = ReadTarget(options);
  const int progFd = ToInt32(options.Get("progFd"), "progFd");
  uint32_t flags = OptUint32(options, "flags").value_or(0);
  LIBBPF_OPTS(bpf_xdp_attach_opts, attach);
  const UniqueFd oldFd = ExpectOldProgram(env, options, flags, attach);
  NetnsScope scope(env, target.netns);
  const unsigned int ifindex = InterfaceIndex(env, target.ifname, target.netns);
  const int result = bpf_xdp_attach(static_cast<int>(ifindex), progFd, flags, &attach);
  if (result < 0) ThrowXdp(env, -result, "cannot attach XDP program to " + Where(target), target);
  return Napi::Number::New(env, ifindex);
}

Napi::Value XdpDetach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArg(info, 0, "xdpDetach options");
  const Target target = ReadTarget(options);
  uint32_t flags = OptUint32(options, "flags").value_or(0);
  LIBBPF_OPTS(bpf_xdp_attach_opts, attach);
  const UniqueFd oldFd = ExpectOldProgram(env, options, flags, attach);
  NetnsScope scope(env, target.netns);
  const unsigned int ifindex = InterfaceIndex(env, target.ifname, target.netns);
  const int result = bpf_xdp_detach(static_cast<int>(ifindex), flags, &attach);
  if (result < 0) ThrowXdp(env, -result, "cannot detach XDP program from " + Where(target), target);
  return env.Undefined();
}

Napi::Value XdpQuery(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArg(info, 0, "xdpQuery options");
  const Target target = ReadTarget(options);
  NetnsScope scope(env, target.netns);
  const unsigned int ifindex = InterfaceIndex(env, target.ifname, target.netns);
  LIBBPF_OPTS(bpf_xdp_query_opts, query);
  const int result = bpf_xdp_query(static_cast<int>(ifindex), 0, &query);
  if (result < 0) ThrowXdp(env, -result, "cannot query XDP on " + Where(target), target);
  Napi::Object out = Napi::Object::New(env);
  out.Set("ifindex", Napi::Number::New(env, ifindex));
  out.Set("progId", Napi::Number::New(env, query.prog_id));
  out.Set("drvProgId", Napi::Number::New(env, query.drv_prog_id));
  out.Set("skbProgId", Napi::Number::New(env, query.skb_prog_id));
  out.Set("hwProgId", Napi::Number::New(env, query.hw_prog_id));
  out.Set("attachMode", Napi::Number::New(env, query.attach_mode));
  return out;
}

Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArg(info, 0, "progInfo options");
  UniqueFd owned;
  int fd = -1;
  if (auto given = OptInt32(options, "fd")) {
    fd = *given;
  } else if (auto id = OptUint32(options, "id")) {
    owned = ProgramFdById(env, *id);
    fd = owned.get();
  } else if (auto path = OptString(options, "pinned")) {
    owned.reset(bpf_obj_get(path->c_str()));
    if (!owned.valid()) {
      const int errnum = errno;
      JsError(env, errnum == ENOENT ? code::kNotFound : code::kSystem, errnum,
              "cannot open pinned program " + *path + ": " + ErrnoText(errnum))
          .Set("path", *path)
          .Throw();
    }
    fd = owned.get();
  } else {
    ThrowInvalidArgument(env, "progInfo needs { fd }, { id } or { pinned }");
  }
  bpf_prog_info prog{};
  uint32_t length = sizeof(prog);
  if (bpf_obj_get_info_by_fd(fd, &prog, &length) != 0) {
    const int errnum = errno;
    ThrowError(env, code::kInvalidArgument, errnum, "not a BPF program: " + ErrnoText(errnum));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, prog.id));
  out.Set("name", prog.name);
  out.Set("type", Napi::Number::New(env, prog.type));
  const char* typeName = libbpf_bpf_prog_type_str(static_cast<bpf_prog_type>(prog.type));
  out.Set("typeName", typeName == nullptr ? env.Null() : Napi::String::New(env, typeName));
  out.Set("tag", Hex(prog.tag, sizeof(prog.tag)));
  out.Set("runCount", Napi::Number::New(env, static_cast<double>(prog.run_cnt)));
  out.Set("runTimeNs", Napi::Number::New(env, static_cast<double>(prog.run_time_ns)));
  return out;
}

Napi::Value ProgPin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "progFd");
  const std::string path = ToString(info[1], "path");
  if (bpf_obj_pin(fd, path.c_str()) != 0) {
    const int errnum = errno;
    JsError(env, code::kSystem, errnum, "cannot pin program at " + path + ": " + ErrnoText(errnum))
        .Set("path", path)
        .Throw();
  }
  return env.Undefined();
}

Napi::Value EnableStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
  if (fd < 0) {
    const int errnum = errno;
    ThrowError(env, code::kSystem, errnum, "cannot enable BPF run-time statistics: " + ErrnoText(errnum));
  }
  return Napi::Number::New(env, fd);
}

Napi::Function BpfLinkWrap::Init(Napi::Env env) {
  return DefineClass(env, "BpfLink",
                     {
                         InstanceMethod<&BpfLinkWrap::Info>("info"),
                         InstanceMethod<&BpfLinkWrap::Pin>("pin"),
                         InstanceMethod<&BpfLinkWrap::Update>("update"),
                         InstanceMethod<&BpfLinkWrap::Detach>("detach"),
                         InstanceMethod<&BpfLinkWrap::Close>("close"),
                     });
}

BpfLinkWrap::BpfLinkWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BpfLinkWrap>(info) {
  Napi::Env env = info.Env();
  Napi::Object options = OptionsArg(info, 0, "BpfLink options");
  if (auto path = OptString(options, "pinned")) {
    label_ = "link " + *path;
    fd_.reset(bpf_obj_get(path->c_str()));
    if (!fd_.valid()) {
      const int errnum = errno;
      JsError(env, errnum == ENOENT ? code::kNotFound : code::kSystem, errnum,
              "cannot open pinned link " + *path + ": " + ErrnoText(errnum))
          .Set("path", *path)
          .Throw();
    }
    return;
  }
  Napi::Value xdp = options.Get("xdp");
  if (!xdp.IsObject()) ThrowInvalidArgument(env, "BpfLink needs { pinned } or { xdp: { ifname, progFd } }");
  Napi::Object spec = xdp.As<Napi::Object>();
  const Target target = ReadTarget(spec);
  const int progFd = ToInt32(spec.Get("progFd"), "progFd");
  LIBBPF_OPTS(bpf_link_create_opts, create);
  create.flags = OptUint32(spec, "flags").value_or(0);
  label_ = "XDP link on " + Where(target);
  NetnsScope scope(env, target.netns);
  const unsigned int ifindex = InterfaceIndex(env, target.ifname, target.netns);
  const int fd = bpf_link_create(progFd, static_cast<int>(ifindex), BPF_XDP, &create);
  if (fd < 0) ThrowXdp(env, errno, "cannot create an XDP link on " + Where(target), target);
  fd_.reset(fd);
}

int BpfLinkWrap::LiveFd(Napi::Env env, const char* operation) const {
  if (!fd_.valid()) ThrowError(env, code::kClosed, EBADF, std::string("cannot ") + operation + ": " + label_ + " is closed");
  return fd_.get();
}

Napi::Value BpfLinkWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bpf_link_info link{};
  uint32_t length = sizeof(link);
  if (bpf_obj_get_info_by_fd(LiveFd(env, "describe"), &link, &length) != 0) {
    const int errnum = errno;
    ThrowError(env, code::kSystem, errnum, "cannot describe " + label_ + ": " + ErrnoText(errnum));
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, link.id));
  out.Set("progId", Napi::Number::New(env, link.prog_id));
  out.Set("type", Napi::Number::New(env, link.type));
  // ifindex 0: the link was detached (its device went away or detach() was called).
  out.Set("ifindex", Napi::Number::New(env, link.type == BPF_LINK_TYPE_XDP ? link.xdp.ifindex : 0));
  return out;
}

Napi::Value BpfLinkWrap::Pin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = ToString(info[0], "path");
  if (bpf_obj_pin(LiveFd(env, "pin"), path.c_str()) != 0) {
    const int errnum = errno;
    JsError(env, code::kSystem, errnum, "cannot pin " + label_ + " at " + path + ": " + ErrnoText(errnum))
        .Set("path", path)
        .Throw();
  }
  return env.Undefined();
}

// update(newProgFd, expectedProgId?) — atomic program replacement on the link.
Napi::Value BpfLinkWrap::Update(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int fd = LiveFd(env, "update");
  const int progFd = ToInt32(info[0], "progFd");
  LIBBPF_OPTS(bpf_link_update_opts, update);
  UniqueFd oldFd;
  if (!info[1].IsUndefined() && !info[1].IsNull()) {
    oldFd = ProgramFdById(env, ToUint32(info[1], "expectedProgId"));
    update.old_prog_fd = oldFd.get();
    update.flags = BPF_F_REPLACE;
  }
  if (bpf_link_update(fd, progFd, &update) != 0) {
    const int errnum = errno;
    ThrowError(env, kXdp, errnum, "cannot replace the program of " + label_ + ": " + ErrnoText(errnum));
  }
  return env.Undefined();
}

Napi::Value BpfLinkWrap::Detach(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (bpf_link_detach(LiveFd(env, "detach")) != 0) {
    const int errnum = errno;
    ThrowError(env, kXdp, errnum, "cannot detach " + label_ + ": " + ErrnoText(errnum));
  }
  return env.Undefined();
}

Napi::Value BpfLinkWrap::Close(const Napi::CallbackInfo& info) {
  fd_.reset();
  return info.Env().Undefined();
}

}  // namespace thunderpac
