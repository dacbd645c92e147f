# Native addon build for node-gyp (`npm run build:native:gyp`). CMakeLists.txt builds the
# same addon with cmake-js; both read the source list from native/sources.txt and use the
# same defines (C++ exceptions enabled). Both also build thunderpac_bpf_probe, the executable
# that opens untrusted BPF objects in a throw-away process.
{
  "targets": [
    {
      "target_name": "thunderpac_native",
      "sources": ["<!@(cat native/sources.txt)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_ADDON_API_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    },
    {
      "target_name": "thunderpac_bpf_probe",
      "type": "executable",
      "sources": ["native/probe/bpf_object_probe.cc"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"],
      "libraries": ["-lbpf", "-lelf", "-lz"]
    }
  ]
}
