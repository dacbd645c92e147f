// flock(2) on a file descriptor Node opened: the store serializes its writers across processes
// with it (Node has no flock). The kernel drops the lock when the descriptor closes or the process
// dies, SIGKILL included, so a crashed writer never leaves a stale lock.
#pragma once

#include <napi.h>

namespace thunderpac {

// flockFd(fd, exclusive: boolean, wait: boolean) -> 0 on success, else the errno (EWOULDBLOCK
// when another open file description holds a conflicting lock and `wait` is false). Policy and
// typed errors live in src/store/file-lock.ts.
Napi::Value FlockFd(const Napi::CallbackInfo& info);

// funlockFd(fd) -> 0 or errno.
Napi::Value FunlockFd(const Napi::CallbackInfo& info);

}  // namespace thunderpac
