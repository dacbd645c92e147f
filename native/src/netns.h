// NetnsScope: runs the enclosing block's syscalls inside another network namespace.
//
// setns(CLONE_NEWNET) switches only the calling thread, and every call that uses it is
// synchronous on the JS thread, so switching in, making the call (ifindex lookup, netlink XDP
// attach, bpf_link_create) and switching back in the destructor never lets any other code run
// in the foreign namespace. The alternative, a child process per call via `ip netns exec`,
// costs a fork+exec per operation and loses typed errors and fds (links must be created in
// this process to be pinned or held).
#pragma once

#include <napi.h>

#include <string>

#include "fd.h"

namespace thunderpac {

class NetnsScope {
 public:
  // `name` is a namespace under /var/run/netns, or a path to a netns file; "" = stay.
  NetnsScope(Napi::Env env, const std::string& name);
  ~NetnsScope();
  NetnsScope(const NetnsScope&) = delete;
  NetnsScope& operator=(const NetnsScope&) = delete;

 private:
  UniqueFd original_;
};

// Interface index by name in the current namespace; throws EBPF_NOT_FOUND naming it.
unsigned int InterfaceIndex(Napi::Env env, const std::string& ifname, const std::string& netns);

}  // namespace thunderpac
