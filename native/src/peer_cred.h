// The credentials of the process at the other end of a connected unix socket (SO_PEERCRED):
// the daemon identifies its local callers by them. The kernel records them at connect(2), so
// a client cannot claim another uid; Node has no API for it, hence this one syscall here.
#pragma once

#include <napi.h>

namespace thunderpac {

// peerCredentials(fd) -> { pid, uid, gid, groups } of the peer (groups: supplementary gids via
// SO_PEERGROUPS, empty where the kernel lacks it); throws EBPF_SYSTEM-coded errors with the
// errno when getsockopt fails (not a socket, not AF_UNIX, closed). Policy lives in
// src/daemon/peer.ts.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info);

}  // namespace thunderpac
