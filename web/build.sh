#!/usr/bin/env bash
# Builds the page: wgrad for wasm32 with the `web` feature, then its JavaScript bindings, into
# web/pkg/. Serve web/ with any static file server afterwards:
#
#   bash web/build.sh && python3 -m http.server -d web 8000    # then open http://localhost:8000
#
# Needs the wasm32-unknown-unknown target (rustup target add wasm32-unknown-unknown) and
# wasm-bindgen-cli of the exact version of the wasm-bindgen crate in Cargo.lock
# (cargo install wasm-bindgen-cli --version =<that>). PROFILE=dev or PROFILE=wasm (the cargo
# profile CI's browser tests use) build faster and run slower.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
cargo rustc --lib --profile "$profile" --target wasm32-unknown-unknown --no-default-features \
  --features web --crate-type cdylib
dir="$profile"
[ "$profile" = dev ] && dir=debug
want="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')"
have="$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')"
if [ "$want" != "$have" ]; then
  echo "web/build.sh: wasm-bindgen-cli $want is needed (found '${have:-none}'): cargo install wasm-bindgen-cli --version =$want" >&2
  exit 1
fi
wasm-bindgen --target web --no-typescript --out-dir web/pkg "target/wasm32-unknown-unknown/$dir/wgrad.wasm"
echo "built web/pkg ($(du -h web/pkg/wgrad_bg.wasm | cut -f1) of wasm); serve web/ and open index.html"
