#!/usr/bin/env bash
# RSS of a fresh `serve --dev` (10,000 demo customers) once a second, and when it was healthy.
# Usage: bench/dev_rss.sh [SECONDS]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
D=$(mktemp -d)
export CUSTODIA_LOG=warn
PORT="${PORT:-18299}"
target/release/custodia serve --dev --data-dir "$D/data" --listen "127.0.0.1:$PORT" >"$D/out" 2>&1 &
P=$!
trap 'kill $P 2>/dev/null; wait $P 2>/dev/null; rm -rf "$D"' EXIT
T0=$(date +%s.%N)
up=""
for i in $(seq 1 "${1:-20}"); do
  sleep 1
  [ -z "$up" ] && curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null \
    && up=$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN {printf "%.1f", a - b}')
  printf "%ss:%sMB " "$i" "$(awk '/VmRSS/ {print int($2/1024)}' /proc/$P/status)"
done
echo
echo "healthy after ${up:-?} s (polled every second); peak RSS $(awk '/VmHWM/ {print int($2/1024)}' /proc/$P/status) MB"
