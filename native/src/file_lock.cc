// flock(2) for the store's writer lock; see file_lock.h.
#include "file_lock.h"

#include <sys/file.h>

#include <cerrno>

#include "errors.h"

namespace thunderpac {
namespace {

int FdArgument(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) ThrowInvalidArgument(info.Env(), "fd must be a number");
  const double fd = info[0].As<Napi::Number>().DoubleValue();
  if (fd < 0 || fd > 2147483647 || fd != static_cast<double>(static_cast<int>(fd)))
    ThrowInvalidArgument(info.Env(), "fd must be a non-negative integer");
  return static_cast<int>(fd);
}

int FlockRetryingEintr(int fd, int operation) {
  for (;;) {
    if (::flock(fd, operation) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

}  // namespace

Napi::Value FlockFd(const Napi::CallbackInfo& info) {
  const int fd = FdArgument(info);
  const bool exclusive = info.Length() > 1 && info[1].ToBoolean().Value();
  const bool wait = info.Length() > 2 && info[2].ToBoolean().Value();
  const int operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB);
  return Napi::Number::New(info.Env(), FlockRetryingEintr(fd, operation));
}

Napi::Value FunlockFd(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), FlockRetryingEintr(FdArgument(info), LOCK_UN));
}

}  // namespace thunderpac
