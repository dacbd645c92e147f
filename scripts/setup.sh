#!/usr/bin/env bash
# Set up thunderpac on a fresh Debian 12 machine with Node 20, or bring an existing checkout up
# to date. Idempotent: every step checks before it acts, so a second run takes seconds.
#   - Debian packages the native addon, the BPF programs and the WASM guests need
#   - bpffs mounted at /sys/fs/bpf
#   - npm ci (only when package-lock.json changed since the last install)
#   - the native addon (cmake-js), the BPF objects, the WASM guests, the TypeScript build
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }

# --- Debian packages ----------------------------------------------------------------------
packages=(clang llvm lld libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config iproute2 make cmake g++
  wabt binaryen wasi-libc libclang-rt-14-dev-wasm32
  nats-server prometheus redis-server postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]}"
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nats-server (the daemon's event-bus tests), prometheus (for promtool), redis-server (the
  # QoS global limits' tests) and postgresql (the store's fleet index tests) are installed for
  # their binaries: the tests start their own servers on loopback. On a systemd host the
  # packages' own services would start listening, so they are stopped and disabled.
  if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now nats-server prometheus redis-server postgresql >/dev/null 2>&1 || true
  fi
fi

# --- bpffs ---------------------------------------------------------------------------------
if [ "$(id -u)" -eq 0 ] && ! mountpoint -q /sys/fs/bpf 2>/dev/null; then
  say "mounting bpffs at /sys/fs/bpf"
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi

# --- npm dependencies ----------------------------------------------------------------------
# onnxruntime-node (a later backend) must never download at install time.
export ONNXRUNTIME_NODE_INSTALL=skip
lock_sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f node_modules/.thunderpac-lock ] || [ "$(cat node_modules/.thunderpac-lock)" != "$lock_sum" ]; then
  say "npm ci"
  # The registry this machine reaches may lack other platforms' optional packages (biome,
  # rollup, msgpackr-extract builds for darwin/win32), which npm 11 then leaves out of the lock
  # and `npm ci` calls out of sync. `npm install` honours the same lock for what exists.
  if ! npm ci --no-audit --no-fund --loglevel=error 2>/dev/null; then
    say "npm ci refused the lock (platform packages missing from the registry); npm install from the lock"
    npm install --no-audit --no-fund --loglevel=error
  fi
  echo "$lock_sum" > node_modules/.thunderpac-lock
fi

# --- native addon --------------------------------------------------------------------------
addon=build/Release/thunderpac_native.node
# The BPF object probe (native/probe/) is built with the addon; an older build lacks it.
if [ ! -f "$addon" ] || [ ! -x build/Release/thunderpac_bpf_probe ] ||
  [ -n "$(find native CMakeLists.txt package-lock.json -newer "$addon" -print -quit)" ]; then
  say "building the native addon (cmake-js)"
  npm run -s build:native >/dev/null
fi

# --- BPF objects, WASM guests, TypeScript --------------------------------------------------
make -s -C bpf
make -s -C wasm
if [ ! -f dist/.stamp ] || [ -n "$(find src bench scripts tsconfig.json -newer dist/.stamp -print -quit)" ]; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.json
  touch dist/.stamp
fi
say "ready"
