#!/usr/bin/env bash
# The measurements behind README's speed table, in one run (run it on an otherwise idle
# machine; every figure depends on the load). Adapter: WGRAD_BACKEND (default vulkan).
#
#   bash benches/speed-table.sh                 # this checkout
#   OLD=/path/to/older/checkout bash benches/speed-table.sh
#                                               # also an older build, side by side in the same run
#                                               # (it needs `cargo build --release` and the
#                                               # train_step bench built there)
set -uo pipefail
cd "$(dirname "$0")/.."
export WGRAD_BACKEND="${WGRAD_BACKEND:-vulkan}"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
# An empty tune cache, so the figures are the cost model's (the default on CPU drivers).
export WGRAD_CACHE_DIR="$(mktemp -d)"
out="$(mktemp -d)"
cargo build --release -q && cargo bench --no-run -q --bench train_step --bench matmul --bench conv

first_step() { # $1: checkout
  for i in 1 2; do
    MESA_SHADER_CACHE_DISABLE=true "$1/target/release/wgrad" train --steps 30 --save "$out/a.safetensors" 2>&1 |
      grep -E "first step|trained"
  done
}
step() { # $1: checkout
  (cd "$1" && cargo bench --bench train_step -- --warm-up-time 3 --measurement-time 15 2>&1 |
    grep -E "kernels a step|Benchmarking.*Analyzing|time:|thrpt:" | grep -v change)
}

echo "== load"; uptime
echo "== first step, cold (Mesa's shader cache off, empty tune cache)"; first_step .
[ -n "${OLD:-}" ] && { echo "== the same, $OLD"; first_step "$OLD"; }
echo "== training step (criterion)"; step .
[ -n "${OLD:-}" ] && { echo "== the same, $OLD"; step "$OLD"; }
echo "== wgrad bench (training lines)"; ./target/release/wgrad bench --backend "$WGRAD_BACKEND" | grep -A3 "^training"
echo "== profile"; ./target/release/wgrad bench --backend "$WGRAD_BACKEND" --profile | grep -A14 "per kernel"
echo "== matmul"; cargo bench --bench matmul 2>&1 | grep -E "^matmul|time:|thrpt:" | grep -v change
echo "== conv, burn's shapes"
cargo bench --bench conv -- --warm-up-time 1 --measurement-time 3 burn 2>&1 | grep -E "^conv|time:|thrpt:" | grep -v change
echo "== load"; uptime
rm -rf "$WGRAD_CACHE_DIR" "$out"
