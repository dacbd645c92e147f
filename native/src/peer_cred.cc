// SO_PEERCRED and SO_PEERGROUPS on an accepted unix socket; see peer_cred.h.
#include "peer_cred.h"

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <string>
#include <vector>

#include "errors.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

namespace thunderpac {
namespace {

[[noreturn]] void ThrowSockopt(Napi::Env env, const char* what, int fd, int err) {
  ThrowError(env, code::kSystem, err,
             std::string("getsockopt(") + what + ") on fd " + std::to_string(fd) + ": " + ErrnoText(err));
}

// The peer's supplementary groups as the kernel recorded them at connect(2) (Linux >= 4.13);
// empty on a kernel without SO_PEERGROUPS, so the policy then sees the primary gid only.
std::vector<gid_t> PeerGroups(Napi::Env env, int fd) {
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 4; attempt++) {
    socklen_t len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      return groups;
    }
    if (errno == ENOPROTOOPT) return {};
    // ERANGE: len now holds the size the kernel needs.
    if (errno != ERANGE) ThrowSockopt(env, "SO_PEERGROUPS", fd, errno);
    groups.resize(len / sizeof(gid_t) + 1);
  }
  ThrowSockopt(env, "SO_PEERGROUPS", fd, ERANGE);
}

}  // namespace

Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowInvalidArgument(env, "fd must be a number");
  const double raw = info[0].As<Napi::Number>().DoubleValue();
  if (raw < 0 || raw > 2147483647 || raw != static_cast<double>(static_cast<int>(raw)))
    ThrowInvalidArgument(env, "fd must be a non-negative integer");
  const int fd = static_cast<int>(raw);
  struct ucred cred {};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) ThrowSockopt(env, "SO_PEERCRED", fd, errno);
  const std::vector<gid_t> groups = PeerGroups(env, fd);
  Napi::Array jsGroups = Napi::Array::New(env, groups.size());
  for (size_t i = 0; i < groups.size(); i++) jsGroups.Set(static_cast<uint32_t>(i), Napi::Number::New(env, groups[i]));
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  out.Set("groups", jsGroups);
  return out;
}

}  // namespace thunderpac
