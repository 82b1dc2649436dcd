#!/usr/bin/env bash
# The one-shot GPU measurement: everything worth knowing about wgrad on a machine with a real
# GPU, in one go and in a few minutes, written to one folder:
#   machine.txt  the machine, the GPU (nvidia-smi where present) and every adapter wgpu sees
#   bench.txt    `wgrad bench --gpu`: square matmuls 1024³–8192³ in GFLOP/s (and as a share of
#                the fp32 peak), the default preset's convolutions, training images/s of the
#                default autoencoder at batch 64, 256 and 1024, kernel launches per step
#   check.txt    `wgrad check` on that adapter: every kernel and a training step against the CPU
#                reference
#   times.txt    how long each part took
#
#   bash benches/gpu.sh [OUT_DIR]            # builds target/release/wgrad with cargo
#   WGRAD_BIN=path/to/wgrad bash benches/gpu.sh OUT_DIR
#                                            # a binary built elsewhere (a machine without Rust)
#
# WGRAD_BACKEND picks the backend (default vulkan). PEAK_GFLOPS gives the GPU's fp32 peak;
# without it the script knows a few NVIDIA GPUs by name (non-tensor-core fp32, boost clock).
# On a CPU driver (lavapipe) it runs too, with the sizes capped (see `wgrad bench --help`).
#
# A bare machine may need the Vulkan loader first: `apt-get download libvulkan1` and
# `dpkg -x libvulkan1_*.deb /; ldconfig` (NVIDIA's ICD ships with its driver; if the loader
# finds none, export VK_DRIVER_FILES=/usr/share/vulkan/icd.d/nvidia_icd.json or wherever the
# driver put it).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-wgrad-gpu-report}"
mkdir -p "$out"
backend="${WGRAD_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# A fresh tune cache: on a GPU, tuning (1 s at most) is part of what a first run costs.
export WGRAD_CACHE_DIR="$(mktemp -d)"
trap 'rm -rf "$WGRAD_CACHE_DIR"' EXIT

bin="${WGRAD_BIN:-}"
if [ -z "$bin" ]; then
  command -v cargo >/dev/null || . "$HOME/.cargo/env"
  cargo build --release -q || exit 1
  bin=target/release/wgrad
fi

: >"$out/times.txt"
part() { # $1: name; the rest: the command, its output to $out/$1.txt
  local name="$1" start
  shift
  start=$(date +%s)
  "$@" 2>&1 | tee "$out/$name.txt"
  local rc=${PIPESTATUS[0]}
  printf '%-8s %5d s  exit %d\n' "$name" "$(($(date +%s) - start))" "$rc" | tee -a "$out/times.txt"
  return "$rc"
}

machine() {
  echo "== machine"
  uname -srm
  echo "cpus: $(nproc)"
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv
  fi
  echo "== adapters"
  "$bin" devices
}

# fp32 (non-tensor-core) peak in GFLOP/s of GPUs known by name, at boost clock.
known_peak() {
  command -v nvidia-smi >/dev/null || return
  case "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)" in
    *H200* | *"H100 80GB HBM3"* | *"H100 SXM"*) echo 66900 ;;
    *"H100 PCIe"* | *"H100 NVL"*) echo 51200 ;;
    *A100*) echo 19500 ;;
    *L40S*) echo 91600 ;;
    *L4) echo 30300 ;;
    *"RTX 4090"*) echo 82600 ;;
    *"RTX 3090"*) echo 35600 ;;
    *T4) echo 8100 ;;
  esac
}
peak="${PEAK_GFLOPS:-$(known_peak)}"
peak_args=()
[ -n "$peak" ] && peak_args=(--peak-gflops "$peak")

status=0
part machine machine || status=1
part bench "$bin" bench --gpu --backend "$backend" "${peak_args[@]}" || status=1
part check "$bin" check --backend "$backend" || status=1
echo "== report in $out/ (exit $status)"
exit "$status"
