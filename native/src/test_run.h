// BPF_PROG_TEST_RUN: run a loaded program once (or `repeat` times) on a given input in the
// kernel, without attaching it anywhere.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "bytes.h"

namespace thunderpac {

struct TestRunOptions {
  uint32_t repeat = 1;
  // Capacity for the output packet. Unset: input size + generous room, and an output that
  // still does not fit is retried with the size the kernel asks for. Set: a hard cap; a larger
  // output comes back truncated to it (truncated: true) and the program is not re-run.
  // 0 = do not copy the output back (dataOut is empty, dataSizeOut still reports its length).
  std::optional<size_t> dataOutSize;
  std::optional<ByteView> ctxIn;
};

TestRunOptions ParseTestRunOptions(Napi::Value options);

// `label` names the program in error messages (e.g. "program 'xdp_count'").
// Returns {retval, dataOut, dataSizeOut, truncated, durationNs, repeat[, ctxOut]}.
Napi::Object RunProgramTest(Napi::Env env, int progFd, const std::string& label, ByteView data,
                            const TestRunOptions& options);

// testRunFd(progFd, data, options?) for programs not owned by a BpfObject (e.g. pinned).
Napi::Value TestRunFd(const Napi::CallbackInfo& info);

}  // namespace thunderpac
