#!/usr/bin/env bash
# Detection-speed baseline: ripgrep searching a corpus for the union of the candidate
# patterns a PII scanner has to look for (bench/scan_patterns.txt: digit runs with
# separators for ids, mobiles, cards and landlines, full-width digit runs, email, IPv4,
# IPv6, the USCC shape, passports, plates, and the context words that lead to names,
# addresses, postal codes and birth dates). ripgrep only finds candidates, it validates
# nothing, so its MB/s is an upper bound a scanner should come close to, not beat.
#
# Usage: bench/scan_rg.sh CORPUS_DIR
#   CORPUS_DIR from: cargo run --release -p custodia-corpus --example gen -- DIR 200
# Environment: RUNS (default 3), THREADS (default 2), CUSTODIA_BIN (default
# target/release/custodia).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${1:?usage: bench/scan_rg.sh CORPUS_DIR}"
RUNS="${RUNS:-3}"
THREADS="${THREADS:-2}"
PATTERNS="$PWD/bench/scan_patterns.txt"
command -v rg >/dev/null || { echo "install ripgrep (apt-get install -y ripgrep)" >&2; exit 1; }

# The truth files sit in the corpus directory but are not corpus: leave them out of the
# byte count and the search.
EXCLUDE=(-g '!truth.jsonl' -g '!hard_negatives.jsonl')
corpus_files() { find "$DIR" -type f ! -name truth.jsonl ! -name hard_negatives.jsonl "$@"; }
BYTES=$(corpus_files -printf '%s\n' | awk '{s += $1} END {print s}')
MB=$(awk -v b="$BYTES" 'BEGIN {printf "%.1f", b / 1e6}')
echo "corpus: $DIR, $MB MB (without truth files), ripgrep $(rg --version | head -1 | cut -d' ' -f2), -j$THREADS, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# Warm the page cache so that every tool reads from memory.
corpus_files -exec cat {} + > /dev/null

# Best of RUNS: "wall_seconds cpu_seconds" of the fastest run. CPU seconds (user + sys)
# are reported too because the machine may be shared: wall time then measures the
# neighbours as much as the tool.
best_of() {
  local best="" out line
  out=$(mktemp)
  for _ in $(seq 1 "$RUNS"); do
    /usr/bin/time -f '%e %U %S' -o "$out" "$@" > /dev/null
    line=$(awk '{printf "%.3f %.3f", $1, $2 + $3}' "$out")
    if [ -z "$best" ] || awk -v s="${line%% *}" -v b="${best%% *}" 'BEGIN {exit !(s < b)}'; then
      best=$line
    fi
  done
  rm -f "$out"
  echo "$best"
}

report() { # NAME "wall cpu"
  awk -v n="$1" -v mb="$MB" -v w="${2%% *}" -v c="${2##* }" -v runs="$RUNS" 'BEGIN {
    printf "%s: best of %d: %.2f s wall, %.2f s CPU -> %.1f MB/s wall, %.1f MB per CPU-second\n",
      n, runs, w, c, mb / w, mb / c }'
}

RG_CMD=(rg -j"$THREADS" --no-config --count-matches --no-filename -f "$PATTERNS" "${EXCLUDE[@]}" "$DIR")
echo "ripgrep: $("${RG_CMD[@]}" | awk '{s += $1} END {print s}') candidate matches"
RG=$(best_of "${RG_CMD[@]}")
report ripgrep "$RG"
RG_MBS=$(awk -v mb="$MB" -v w="${RG%% *}" 'BEGIN {printf "%.1f", mb / w}')

# =======================================================================================
# PLACEHOLDER: custodia scan. Runs once `custodia scan` exists (another branch wires it);
# until then it says so and stops. Keep the flags in step with the scan command.
# =======================================================================================
CUSTODIA_BIN="${CUSTODIA_BIN:-$PWD/target/release/custodia}"
if [ -x "$CUSTODIA_BIN" ] && "$CUSTODIA_BIN" scan --help >/dev/null 2>&1; then
  FINDINGS="${FINDINGS:-/tmp/f.jsonl}"
  SCAN_ARGS=(scan "$DIR" --format jsonl --threads "$THREADS" --exclude truth.jsonl --exclude hard_negatives.jsonl --exit-zero)
  # Timed: every finding is found, masked and rendered as its JSON line, and the lines are
  # written to /dev/null, as ripgrep's per-file counts are. The corpus is dense (a value
  # every ~60 bytes: 2.5 bytes of JSON out per byte in), so writing the lines to a disk
  # file measures the file system as much as the scanner; that figure is printed too.
  SCAN=$(best_of "$CUSTODIA_BIN" "${SCAN_ARGS[@]}" --out /dev/null)
  "$CUSTODIA_BIN" "${SCAN_ARGS[@]}" --out "$FINDINGS"
  echo "custodia scan: $(wc -l < "$FINDINGS") findings ($(du -m "$FINDINGS" | cut -f1) MB of JSON lines)"
  report "custodia scan" "$SCAN"
  SCAN_MBS=$(awk -v mb="$MB" -v w="${SCAN%% *}" 'BEGIN {printf "%.1f", mb / w}')
  awk -v a="$SCAN_MBS" -v b="$RG_MBS" 'BEGIN {printf "custodia / ripgrep speed (wall): %.2f\n", a / b}'
  FILE=$(best_of "$CUSTODIA_BIN" "${SCAN_ARGS[@]}" --out "$FINDINGS")
  report "custodia scan, lines written to $FINDINGS" "$FILE"
  # Quality:
  #   cargo run --release -p custodia-corpus --example score -- "$DIR" "$FINDINGS"
else
  echo "custodia scan: not available yet ($CUSTODIA_BIN scan --help failed); placeholder only"
fi
