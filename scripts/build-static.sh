#!/usr/bin/env bash
# Builds the one static `keel` binary that is copied into the rescue system, and proves it is
# static. glibc with crt-static (no musl target can be installed here); --target keeps the flag
# away from build scripts and proc-macros. Prints the path, size and sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target x86_64-unknown-linux-gnu -p keel
bin=target/x86_64-unknown-linux-gnu/release/keel
if ldd "$bin" 2>&1 | grep -q "=>"; then
  echo "error: $bin is dynamically linked:" >&2
  ldd "$bin" >&2
  exit 1
fi
echo "ldd: $(ldd "$bin" 2>&1 | head -1 | sed 's/^[[:space:]]*//')"
echo "binary: $bin"
echo "size: $(stat -c %s "$bin") bytes ($(du -h "$bin" | cut -f1))"
echo "sha256: $(sha256sum "$bin" | cut -d' ' -f1)"
