// libbpf prints everything (warnings, and the kernel verifier log of a rejected program)
// through one global print callback. We install ours once and, while a LibbpfCapture is
// alive on the current thread, collect that output so it can be attached to the JS error
// or result of the open/load call that produced it, instead of going to stderr.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace thunderpac {

struct CapturedLibbpfOutput {
  // Warnings and info lines, in order. Verifier logs are replaced by a one-line marker
  // (they are kept whole in programLogs) so this stays readable.
  std::string messages;
  // (program name, full verifier log) in the order libbpf printed them.
  std::vector<std::pair<std::string, std::string>> programLogs;
  // The first program libbpf reported as failing to load, if any.
  std::string failedProgram;

  const std::string* FindProgramLog(const std::string& program) const;
  // The last non-empty line of `messages` without the "libbpf: " prefix, or "".
  std::string LastMessageLine() const;
};

// Idempotent; called from module init.
void InstallLibbpfPrintCallback();

// RAII: captures libbpf output on this thread for its lifetime. Nests (the inner capture
// wins while alive).
class LibbpfCapture {
 public:
  LibbpfCapture();
  ~LibbpfCapture();
  LibbpfCapture(const LibbpfCapture&) = delete;
  LibbpfCapture& operator=(const LibbpfCapture&) = delete;

  const CapturedLibbpfOutput& output() const { return output_; }

 private:
  CapturedLibbpfOutput output_;
  CapturedLibbpfOutput* previous_;
};

}  // namespace thunderpac
