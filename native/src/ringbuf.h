// RingBuffer: delivers BPF_MAP_TYPE_RINGBUF records to a JavaScript callback without ever
// blocking the event loop.
//
// A reader thread waits on its own epoll set (the ring's epoll fd + an eventfd used to stop
// it), drains the ring with ring_buffer__consume and hands each batch to the JS thread
// through a ThreadSafeFunction. Back-pressure: at most `maxPending` records may be queued for
// JavaScript; records beyond that are consumed from the ring (so the kernel side keeps
// flowing) but dropped and counted in `dropped` instead of growing memory. Records the kernel
// could not reserve because the ring was full are the BPF program's to count.
//
// Why a thread and not uv_poll: the Node-API headers this addon builds against (offline,
// node-api-headers) carry no libuv headers, and a thread-safe function gives us a bounded
// queue and loop ref/unref for free.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fd.h"

struct ring_buffer;

namespace thunderpac {

struct RingState {
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> pending{0};
  uint64_t maxPending = 0;
};

struct RingBatch {
  std::shared_ptr<RingState> state;
  std::vector<std::vector<uint8_t>> records;
};

// Runs on the JS thread: hands each record of a batch to the callback.
void RingCallJs(Napi::Env env, Napi::Function callback, std::nullptr_t* context, RingBatch* batch);

class RingBufferWrap : public Napi::ObjectWrap<RingBufferWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new RingBuffer(mapFd, callback(record: Buffer), { maxPending?, maxBatch? })
  explicit RingBufferWrap(const Napi::CallbackInfo& info);
  ~RingBufferWrap() override;

 private:
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Ref(const Napi::CallbackInfo& info);
  Napi::Value Unref(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  void Stop();
  void ReaderLoop();
  static int OnSample(void* context, void* data, size_t size);

  using Tsfn = Napi::TypedThreadSafeFunction<std::nullptr_t, RingBatch, RingCallJs>;

  std::shared_ptr<RingState> state_ = std::make_shared<RingState>();
  ring_buffer* ring_ = nullptr;
  UniqueFd mapFd_;
  UniqueFd epoll_;
  UniqueFd stopEvent_;
  std::thread reader_;
  Tsfn tsfn_;
  bool open_ = false;
  uint32_t maxBatch_ = 256;
  // Filled by OnSample on the reader thread during one consume.
  RingBatch* filling_ = nullptr;
};

}  // namespace thunderpac
