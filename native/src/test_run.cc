#include "test_run.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cmath>
#include <limits>
#include <vector>

#include "errors.h"

namespace thunderpac {
namespace {

// XDP may push up to XDP_PACKET_HEADROOM (256) bytes at the head and grow the tail to the
// end of its page; skb programs can grow too. Room for all of that avoids the ENOSPC retry,
// which re-runs the program (and repeats its side effects on maps).
constexpr size_t kOutputRoom = 8192;

uint32_t ToUint32(Napi::Value value, const char* what) {
  if (!value.IsNumber()) ThrowInvalidArgument(value.Env(), std::string(what) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || number < 0 || number != std::floor(number) ||
      number > std::numeric_limits<int32_t>::max()) {
    ThrowInvalidArgument(value.Env(), std::string(what) + " must be an integer in [0, 2^31)");
  }
  return static_cast<uint32_t>(number);
}

// Reused between calls on the same thread so the hot path does not allocate an output
// buffer per run; the result is copied into a right-sized JS Buffer anyway.
std::vector<uint8_t>& ScratchOutput(size_t capacity) {
  thread_local std::vector<uint8_t> scratch;
  if (scratch.size() < capacity) scratch.resize(capacity);
  return scratch;
}

}  // namespace

TestRunOptions ParseTestRunOptions(Napi::Value value) {
  TestRunOptions options;
  if (value.IsUndefined() || value.IsNull()) return options;
  if (!value.IsObject()) ThrowInvalidArgument(value.Env(), "test-run options must be an object");
  Napi::Object object = value.As<Napi::Object>();

  Napi::Value repeat = object.Get("repeat");
  if (!repeat.IsUndefined()) options.repeat = ToUint32(repeat, "repeat");
  Napi::Value dataOutSize = object.Get("dataOutSize");
  if (!dataOutSize.IsUndefined()) options.dataOutSize = ToUint32(dataOutSize, "dataOutSize");
  Napi::Value ctxIn = object.Get("ctxIn");
  if (!ctxIn.IsUndefined() && !ctxIn.IsNull()) options.ctxIn = GetBytes(ctxIn, "ctxIn");
  return options;
}

Napi::Object RunProgramTest(Napi::Env env, int progFd, const std::string& label, ByteView data,
                            const TestRunOptions& options) {
  if (data.size > std::numeric_limits<uint32_t>::max() - kOutputRoom) {
    ThrowInvalidArgument(env, "test-run input is too large");
  }
  size_t capacity = options.dataOutSize.value_or(data.size + kOutputRoom);
  std::vector<uint8_t> ctxOut(options.ctxIn ? options.ctxIn->size : 0);

  LIBBPF_OPTS(bpf_test_run_opts, run);
  int result = 0;
  for (int attempt = 0; attempt < 2; attempt++) {
    std::vector<uint8_t>& output = ScratchOutput(capacity);
    run.data_in = data.data;
    run.data_size_in = static_cast<uint32_t>(data.size);
    run.data_out = capacity > 0 ? output.data() : nullptr;
    run.data_size_out = static_cast<uint32_t>(capacity);
    if (options.ctxIn) {
      run.ctx_in = options.ctxIn->data;
      run.ctx_size_in = static_cast<uint32_t>(options.ctxIn->size);
      run.ctx_out = ctxOut.data();
      run.ctx_size_out = static_cast<uint32_t>(ctxOut.size());
    }
    run.repeat = static_cast<int>(options.repeat);

    result = bpf_prog_test_run_opts(progFd, &run);
    // ENOSPC: the output did not fit. The kernel still ran the program, copied what fits and
    // reports the size it needed in data_size_out (retval and duration are valid too).
    if (result == -ENOSPC && run.data_size_out > capacity) {
      if (options.dataOutSize) {
        result = 0;  // the caller's cap: return the truncated output, flagged
        break;
      }
      capacity = run.data_size_out;
      continue;
    }
    break;
  }
  if (result < 0) {
    const int errnum = -result;
    JsError(env, code::kTestRun, errnum, "test run of " + label + " failed: " + ErrnoText(errnum))
        .Set("programFd", Napi::Number::New(env, progFd))
        .Throw();
  }

  const size_t copied = capacity == 0 ? 0 : std::min<size_t>(run.data_size_out, capacity);
  Napi::Object out = Napi::Object::New(env);
  out.Set("retval", Napi::Number::New(env, run.retval));
  out.Set("dataOut", Napi::Buffer<uint8_t>::Copy(env, ScratchOutput(0).data(), copied));
  out.Set("dataSizeOut", Napi::Number::New(env, run.data_size_out));
  out.Set("truncated", Napi::Boolean::New(env, capacity > 0 && run.data_size_out > capacity));
  out.Set("durationNs", Napi::Number::New(env, run.duration));
  out.Set("repeat", Napi::Number::New(env, options.repeat == 0 ? 1 : options.repeat));
  if (options.ctxIn) {
    out.Set("ctxOut", Napi::Buffer<uint8_t>::Copy(env, ctxOut.data(), std::min<size_t>(run.ctx_size_out, ctxOut.size())));
  }
  return out;
}

Napi::Value TestRunFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) ThrowInvalidArgument(env, "testRunFd: progFd must be a number");
  const int progFd = info[0].As<Napi::Number>().Int32Value();
  const ByteView data = GetBytes(info[1], "data");
  const TestRunOptions options = ParseTestRunOptions(info[2]);
  return RunProgramTest(env, progFd, "program fd " + std::to_string(progFd), data, options);
}

}  // namespace thunderpac
