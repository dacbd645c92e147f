// thunderpac_bpf_probe: opens (and loads) one untrusted BPF ELF object with libbpf in a
// throw-away process, so that a libbpf crash on a malformed object (libbpf 1.1 has several
// in its BTF and map-definition parsing) kills this process instead of the host.
//
//   thunderpac_bpf_probe [--load] < object.o
//
// The object's bytes come on stdin. Exit 0 means libbpf returned (whatever it answered): the
// host may then parse the same bytes itself, and will get the same answer as an error if
// libbpf refused them. Exit 2 is a usage or I/O error. Death by a signal means the object
// crashes libbpf and must not be opened in the host. libbpf's messages go to stderr, so the
// last one names what libbpf was parsing when it crashed.
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <vector>

namespace {

// The host refuses larger objects before it starts the probe; this bound only keeps a
// misused probe from reading forever.
constexpr size_t kMaxObjectBytes = 64u << 20;

int PrintToStderr(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return std::vfprintf(stderr, format, args);
}

bool ReadAll(int fd, std::vector<unsigned char>& out) {
  unsigned char chunk[65536];
  for (;;) {
    const ssize_t got = read(fd, chunk, sizeof(chunk));
    if (got == 0) return true;
    if (got < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (out.size() + static_cast<size_t>(got) > kMaxObjectBytes) return false;
    out.insert(out.end(), chunk, chunk + got);
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool load = false;
  for (int i = 1; i < argc; i++) {
    if (std::strcmp(argv[i], "--load") == 0) {
      load = true;
    } else {
      std::fprintf(stderr, "usage: thunderpac_bpf_probe [--load] < object.o\n");
      return 2;
    }
  }
  std::setvbuf(stderr, nullptr, _IONBF, 0);
  libbpf_set_print(PrintToStderr);

  std::vector<unsigned char> bytes;
  if (!ReadAll(STDIN_FILENO, bytes) || bytes.empty()) {
    std::fprintf(stderr, "thunderpac_bpf_probe: cannot read the object from stdin\n");
    return 2;
  }

  LIBBPF_OPTS(bpf_object_open_opts, options, .object_name = "probe");
  bpf_object* object = bpf_object__open_mem(bytes.data(), bytes.size(), &options);
  if (object == nullptr) {
    std::printf("open-failed %d\n", errno);
    return 0;
  }
  // What the host reads right after opening: every program's and map's name and type.
  bpf_program* program;
  bpf_object__for_each_program(program, object) {
    (void)bpf_program__name(program);
    (void)bpf_program__section_name(program);
    (void)bpf_program__type(program);
  }
  bpf_map* map;
  bpf_object__for_each_map(map, object) {
    (void)bpf_map__name(map);
    (void)bpf_map__key_size(map);
    (void)bpf_map__value_size(map);
  }
  if (load) {
    const int error = bpf_object__load(object);
    if (error != 0) {
      std::printf("load-failed %d\n", -error);
      bpf_object__close(object);
      return 0;
    }
  }
  std::printf(load ? "loaded\n" : "opened\n");
  bpf_object__close(object);
  return 0;
}
