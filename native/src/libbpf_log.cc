#include "libbpf_log.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string_view>

namespace thunderpac {
namespace {

thread_local CapturedLibbpfOutput* t_sink = nullptr;

// libbpf (1.1, bpf_object_load_prog) prints a rejected program's verifier log as ONE message:
//   "libbpf: prog 'NAME': -- BEGIN PROG LOAD LOG --\n<log>-- END PROG LOAD LOG --\n"
// (as a warning on failure, as debug output on success when a log level was requested).
constexpr std::string_view kProgPrefix = "libbpf: prog '";
constexpr std::string_view kLogBegin = "': -- BEGIN PROG LOAD LOG --\n";
constexpr std::string_view kLogEnd = "-- END PROG LOAD LOG --\n";
constexpr std::string_view kLoadFailedMarkers[] = {"': BPF program load failed: ", "': failed to load: "};

bool DebugRequestedByEnvironment() {
  // Same switch libbpf's own default printer honours.
  const char* level = std::getenv("LIBBPF_LOG_LEVEL");
  return level != nullptr && std::strcmp(level, "debug") == 0;
}

// Formats into a string sized to fit: verifier logs can be many MiB, so never a fixed buffer.
std::string FormatMessage(const char* format, va_list args) {
  char small[512];
  va_list measure;
  va_copy(measure, args);
  const int length = std::vsnprintf(small, sizeof(small), format, measure);
  va_end(measure);
  if (length < 0) return {};
  if (static_cast<size_t>(length) < sizeof(small)) return std::string(small, static_cast<size_t>(length));

  std::string text;
  text.resize(static_cast<size_t>(length) + 1);
  va_list again;
  va_copy(again, args);
  std::vsnprintf(text.data(), text.size(), format, again);
  va_end(again);
  text.resize(static_cast<size_t>(length));
  return text;
}

// Returns the program name when `text` is "libbpf: prog 'NAME'<marker>...".
std::string_view ProgramNameBefore(std::string_view text, std::string_view marker) {
  if (text.substr(0, kProgPrefix.size()) != kProgPrefix) return {};
  const size_t markerAt = text.find(marker, kProgPrefix.size());
  if (markerAt == std::string_view::npos) return {};
  std::string_view name = text.substr(kProgPrefix.size(), markerAt - kProgPrefix.size());
  // Program names are C identifiers; anything else means the marker matched inside a log.
  return name.find_first_of("'\n") == std::string_view::npos ? name : std::string_view{};
}

bool CaptureProgramLog(CapturedLibbpfOutput& sink, std::string_view text) {
  const std::string_view program = ProgramNameBefore(text, kLogBegin);
  if (program.empty()) return false;
  const size_t bodyStart = kProgPrefix.size() + program.size() + kLogBegin.size();
  size_t bodyEnd = text.rfind(kLogEnd);
  if (bodyEnd == std::string_view::npos || bodyEnd < bodyStart) bodyEnd = text.size();
  std::string_view body = text.substr(bodyStart, bodyEnd - bodyStart);
  sink.programLogs.emplace_back(std::string(program), std::string(body));
  sink.messages.append("libbpf: prog '")
      .append(program)
      .append("': verifier log captured (")
      .append(std::to_string(body.size()))
      .append(" bytes)\n");
  return true;
}

void Capture(CapturedLibbpfOutput& sink, libbpf_print_level level, std::string text) {
  if (CaptureProgramLog(sink, text)) return;
  // Debug output is voluminous (relocations, feature probes); only its verifier logs are kept.
  if (level == LIBBPF_DEBUG) return;
  if (sink.failedProgram.empty()) {
    for (std::string_view marker : kLoadFailedMarkers) {
      std::string_view program = ProgramNameBefore(text, marker);
      if (!program.empty()) {
        sink.failedProgram = std::string(program);
        break;
      }
    }
  }
  sink.messages.append(text);
  if (!text.empty() && text.back() != '\n') sink.messages.push_back('\n');
}

int PrintCallback(libbpf_print_level level, const char* format, va_list args) {
  CapturedLibbpfOutput* sink = t_sink;
  if (sink == nullptr) {
    static const bool debugToStderr = DebugRequestedByEnvironment();
    if (level == LIBBPF_DEBUG && !debugToStderr) return 0;
    return std::vfprintf(stderr, format, args);
  }
  // This runs inside libbpf (C): nothing may propagate out of it.
  try {
    Capture(*sink, level, FormatMessage(format, args));
  } catch (...) {
  }
  return 0;
}

}  // namespace

const std::string* CapturedLibbpfOutput::FindProgramLog(const std::string& program) const {
  for (auto it = programLogs.rbegin(); it != programLogs.rend(); ++it) {
    if (it->first == program) return &it->second;
  }
  return nullptr;
}

std::string CapturedLibbpfOutput::LastMessageLine() const {
  std::string_view text = messages;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  const size_t lineStart = text.rfind('\n');
  std::string_view line = lineStart == std::string_view::npos ? text : text.substr(lineStart + 1);
  constexpr std::string_view kPrefix = "libbpf: ";
  if (line.substr(0, kPrefix.size()) == kPrefix) line.remove_prefix(kPrefix.size());
  return std::string(line);
}

void InstallLibbpfPrintCallback() {
  static std::once_flag installed;
  std::call_once(installed, [] { libbpf_set_print(PrintCallback); });
}

LibbpfCapture::LibbpfCapture() : previous_(t_sink) { t_sink = &output_; }

LibbpfCapture::~LibbpfCapture() { t_sink = previous_; }

}  // namespace thunderpac
