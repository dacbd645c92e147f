#include "netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include "errors.h"

namespace thunderpac {

NetnsScope::NetnsScope(Napi::Env env, const std::string& name) {
  if (name.empty()) return;
  const std::string path = name.find('/') == std::string::npos ? "/var/run/netns/" + name : name;
  UniqueFd target(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!target.valid()) {
    const int errnum = errno;
    ThrowError(env, errnum == ENOENT ? code::kNotFound : code::kSystem, errnum,
               "cannot open network namespace '" + name + "' (" + path + "): " + ErrnoText(errnum));
  }
  UniqueFd original(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!original.valid()) {
    const int errnum = errno;
    ThrowError(env, code::kSystem, errnum, "cannot open the current network namespace: " + ErrnoText(errnum));
  }
  if (::setns(target.get(), CLONE_NEWNET) != 0) {
    const int errnum = errno;
    ThrowError(env, code::kSystem, errnum, "cannot enter network namespace '" + name + "': " + ErrnoText(errnum));
  }
  original_ = std::move(original);
}

NetnsScope::~NetnsScope() {
  if (!original_.valid()) return;
  // Failing to return would leave the JS thread in the wrong namespace for everything that
  // follows; there is no safe way to continue.
  if (::setns(original_.get(), CLONE_NEWNET) != 0) {
    std::perror("thunderpac: cannot return to the original network namespace");
    std::abort();
  }
}

unsigned int InterfaceIndex(Napi::Env env, const std::string& ifname, const std::string& netns) {
  const unsigned int index = ::if_nametoindex(ifname.c_str());
  if (index == 0) {
    const int errnum = errno == 0 ? ENODEV : errno;
    JsError(env, code::kNotFound, errnum,
            "no network interface '" + ifname + "'" + (netns.empty() ? "" : " in namespace '" + netns + "'") + ": " +
                ErrnoText(errnum))
        .Set("device", ifname)
        .Throw();
  }
  return index;
}

}  // namespace thunderpac
