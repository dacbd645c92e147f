#include "ringbuf.h"

#include <bpf/libbpf.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "errors.h"

namespace thunderpac {
namespace {

constexpr uint64_t kDefaultMaxPending = 65536;

}  // namespace

void RingCallJs(Napi::Env env, Napi::Function callback, std::nullptr_t*, RingBatch* batch) {
  std::unique_ptr<RingBatch> owned(batch);
  owned->state->pending -= owned->records.size();
  if (env == nullptr || callback.IsEmpty()) return;  // shutting down: records are dropped
  const size_t total = owned->records.size();
  for (size_t i = 0; i < total; i++) {
    auto& record = owned->records[i];
    try {
      callback.Call({Napi::Buffer<uint8_t>::Copy(env, record.data(), record.size())});
      owned->state->delivered++;
    } catch (const Napi::Error& error) {
      // The rest of this batch is dropped; the callback's exception reaches Node as an
      // uncaught exception (it is pending when we return), like any event emitter's would.
      owned->state->dropped += total - i;
      error.ThrowAsJavaScriptException();
      return;
    }
  }
}

Napi::Function RingBufferWrap::Init(Napi::Env env) {
  return DefineClass(env, "RingBuffer",
                     {
                         InstanceMethod<&RingBufferWrap::Stats>("stats"),
                         InstanceMethod<&RingBufferWrap::Ref>("ref"),
                         InstanceMethod<&RingBufferWrap::Unref>("unref"),
                         InstanceMethod<&RingBufferWrap::Close>("close"),
                     });
}

RingBufferWrap::RingBufferWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBufferWrap>(info) {
  Napi::Env env = info.Env();
  const int fd = ToInt32(info[0], "mapFd");
  if (!info[1].IsFunction()) ThrowInvalidArgument(env, "RingBuffer callback must be a function");
  Napi::Object options = OptionsArg(info, 2, "RingBuffer options");
  state_->maxPending = OptUint32(options, "maxPending").value_or(kDefaultMaxPending);
  maxBatch_ = std::max<uint32_t>(1, OptUint32(options, "maxBatch").value_or(256));

  // Our own fd: the ring stays readable even if the map handle it came from is closed first.
  mapFd_.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!mapFd_.valid()) ThrowError(env, code::kMap, errno, "cannot duplicate ring buffer fd: " + ErrnoText(errno));
  ring_ = ring_buffer__new(mapFd_.get(), &RingBufferWrap::OnSample, this, nullptr);
  if (ring_ == nullptr) {
    const int errnum = errno;
    ThrowError(env, code::kMap, errnum, "cannot open ring buffer (is it a BPF_MAP_TYPE_RINGBUF map?): " + ErrnoText(errnum));
  }
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  stopEvent_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!epoll_.valid() || !stopEvent_.valid()) {
    const int errnum = errno;
    ring_buffer__free(ring_);
    ring_ = nullptr;
    ThrowError(env, code::kSystem, errnum, "cannot set up ring buffer polling: " + ErrnoText(errnum));
  }
  epoll_event ringEvent{};
  ringEvent.events = EPOLLIN;
  ringEvent.data.u32 = 0;
  epoll_event stopEvent{};
  stopEvent.events = EPOLLIN;
  stopEvent.data.u32 = 1;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, ring_buffer__epoll_fd(ring_), &ringEvent) != 0 ||
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, stopEvent_.get(), &stopEvent) != 0) {
    const int errnum = errno;
    ring_buffer__free(ring_);
    ring_ = nullptr;
    ThrowError(env, code::kSystem, errnum, "cannot set up ring buffer polling: " + ErrnoText(errnum));
  }
  tsfn_ = Tsfn::New(env, info[1].As<Napi::Function>(), "thunderpac.RingBuffer", 0, 1);
  open_ = true;
  reader_ = std::thread([this] { ReaderLoop(); });
}

RingBufferWrap::~RingBufferWrap() { Stop(); }

int RingBufferWrap::OnSample(void* context, void* data, size_t size) {
  auto* self = static_cast<RingBufferWrap*>(context);
  RingState& state = *self->state_;
  if (state.pending.load() + self->filling_->records.size() >= state.maxPending) {
    state.dropped++;
    return 0;
  }
  const auto* bytes = static_cast<const uint8_t*>(data);
  self->filling_->records.emplace_back(bytes, bytes + size);
  return 0;
}

void RingBufferWrap::ReaderLoop() {
  epoll_event events[2];
  for (;;) {
    const int ready = ::epoll_wait(epoll_.get(), events, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      return;
    }
    for (int i = 0; i < ready; i++) {
      if (events[i].data.u32 == 1) return;  // Stop()
    }
    auto batch = std::make_unique<RingBatch>();
    batch->state = state_;
    filling_ = batch.get();
    ring_buffer__consume(ring_);
    filling_ = nullptr;
    if (batch->records.empty()) continue;
    const size_t count = batch->records.size();
    state_->pending += count;
    if (tsfn_.NonBlockingCall(batch.get()) == napi_ok) {
      batch.release();
    } else {
      state_->pending -= count;
      state_->dropped += count;
    }
  }
}

void RingBufferWrap::Stop() {
  if (!open_) return;
  open_ = false;
  const uint64_t one = 1;
  if (::write(stopEvent_.get(), &one, sizeof(one)) < 0) {
    // eventfd writes only fail on overflow, which one write cannot cause.
  }
  if (reader_.joinable()) reader_.join();
  ring_buffer__free(ring_);
  ring_ = nullptr;
  // Batches already queued are still delivered (or dropped at env teardown) by CallJs.
  tsfn_.Release();
}

Napi::Value RingBufferWrap::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("delivered", Napi::Number::New(env, static_cast<double>(state_->delivered.load())));
  out.Set("dropped", Napi::Number::New(env, static_cast<double>(state_->dropped.load())));
  out.Set("pending", Napi::Number::New(env, static_cast<double>(state_->pending.load())));
  out.Set("open", Napi::Boolean::New(env, open_));
  return out;
}

Napi::Value RingBufferWrap::Ref(const Napi::CallbackInfo& info) {
  if (open_) tsfn_.Ref(info.Env());
  return info.Env().Undefined();
}

Napi::Value RingBufferWrap::Unref(const Napi::CallbackInfo& info) {
  if (open_) tsfn_.Unref(info.Env());
  return info.Env().Undefined();
}

Napi::Value RingBufferWrap::Close(const Napi::CallbackInfo& info) {
  Stop();
  return info.Env().Undefined();
}

}  // namespace thunderpac
