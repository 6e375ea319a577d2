#!/usr/bin/env bash
# HTTP read-path benchmark: GET of a 12-field record (decrypting every field) against a bare
# axum handler on the same server returning a constant JSON body of the same size, both
# driven by wrk on loopback in the same run. Then p99 at half the saturated rate, the bare
# handler again after a durable audit event (what the read adds beyond the audit), RSS, and
# (SQLite) the read with and without auditing in alternating restarts (#4's ratio), or
# (PostgreSQL) the database's CPU per request and the read's SQL query alone run by pgbench.
#
# The server takes CUSTODIA_* settings from the environment (e.g. CUSTODIA_AUDIT_COMMIT_DELAY_US=0).
# Usage: [PERF=perf.data [PERF_SYSTEM=1]] [STRACE=1] [CUSTODIA_BIN=other/custodia] bench/http.sh [sqlite|postgres]   (postgres uses CUSTODIA_BENCH_PG, default
#        postgres://postgres@127.0.0.1:5432, and creates/drops database custodia_bench)
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND="${1:-sqlite}"
DURATION="${DURATION:-10s}"
CONNS="${CONNS:-32}"
PORT="${PORT:-18181}"
export TOKEN="bench-token-0123456789"
export CUSTODIA_ADMIN_TOKEN="$TOKEN" CUSTODIA_PASSPHRASE="bench passphrase 2026" CUSTODIA_LOG="warn,custodia::audit=info"
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)" >&2; exit 1; }
BIN="${CUSTODIA_BIN:-}"   # another build to compare; default: build this checkout
[ -n "$BIN" ] || { cargo build --release -q; BIN="$PWD/target/release/custodia"; }
DIR="$(mktemp -d)"
PID=""
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT

start() { # start the server with extra args; wait for health
  "$BIN" "$@" --listen "127.0.0.1:$PORT" > "$DIR/server.out" 2>&1 &
  PID=$!
  for _ in $(seq 1 600); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && return; sleep 0.1; done
  echo "server did not start" >&2; cat "$DIR/server.out" >&2; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=""; }

if [ "$BACKEND" = sqlite ]; then
  SERVE=(serve --dev --data-dir "$DIR/data" --config bench/quotas.toml)
else
  PG="${CUSTODIA_BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
  PGQ="${CUSTODIA_BENCH_PG_PARAMS:-}"   # e.g. ?host=/var/run/postgresql (the Unix socket)
  psql "$PG/postgres$PGQ" -qc "DROP DATABASE IF EXISTS custodia_bench WITH (FORCE)" -c "CREATE DATABASE custodia_bench" >/dev/null
  "$BIN" init --data-dir "$DIR/data" --database "$PG/custodia_bench$PGQ" --collection examples/customers.toml >/dev/null
  "$BIN" bench gen-csv --rows 10000 --out "$DIR/c.csv"
  "$BIN" records import --config "$DIR/data/custodia.toml" --collection customers "$DIR/c.csv" >/dev/null || true
  cat bench/quotas.toml >> "$DIR/data/custodia.toml"
  SERVE=(serve --config "$DIR/data/custodia.toml")
fi

start "${SERVE[@]}"
# The admin token administers but sees no customer data: read as a service account
# granted clear reads (the policy runs on every request, as in production).
ADMIN=(-H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json")
KEY=$(curl -sf "${ADMIN[@]}" "http://127.0.0.1:$PORT/v1/service-accounts" -d '{"name":"bench-app",
  "collections":["customers"],"purposes":["account_service"],"grants":["create","read","read_clear"]}' \
  | sed -E 's/.*"api_key":"([^"]+)".*/\1/')
export TOKEN="$KEY"
H=(-H "Authorization: Bearer $TOKEN" -H "X-Custodia-Purpose: account_service" -H "Content-Type: application/json")
ID=$(curl -sf "${H[@]}" "http://127.0.0.1:$PORT/v1/collections/customers/records" -d '{"fields":{
  "full_name":"欧阳明华","id_no":"110105194912310046","mobile":"13912340001","email":"ouyang.minghua@example.com",
  "bank_card":"6222020200112233446","address":"北京市朝阳区建国路88号3栋1201室","date_of_birth":"1949-12-31",
  "employer_uscc":"91350100M000100Y43","segment":"private","annual_income":880000,"risk_score":"3.25",
  "notes":"prefers branch visits; statement by post"},"attributes":{"tier":"vip","branch":"BJ-001"}}' \
  | sed -E 's/.*"id":"([^"]+)".*/\1/')
READ_URL="http://127.0.0.1:$PORT/v1/collections/customers/records/$ID"
SIZE=$(curl -sf "${H[@]}" "$READ_URL" | wc -c)
stop
start "${SERVE[@]}" --bench-body-bytes "$SIZE"
CONST_URL="http://127.0.0.1:$PORT/bench/constant"
CSIZE=$(curl -sf "$CONST_URL" | wc -c)
IDLE_RSS=$(awk '/VmRSS/ {print int($2/1024)}' /proc/$PID/status)

rate() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}'; }
# run URL [DELAY_MS [CONNECTIONS [DURATION]]]
run() { DELAY_MS="${2:-0}" wrk -t2 -c"${3:-$CONNS}" -d"${4:-$DURATION}" --latency -s bench/get.lua "$1"; }

# The server's CPU time (user + system, clock ticks) and µs of it per request of a wrk run:
# the machine is shared, so throughput also measures the neighbours; CPU per request much less.
ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
# The same for the audit thread alone (group commits: insert, WAL write, fsync, leaf hashes).
audit_ticks() {
  for t in /proc/$PID/task/*; do
    [ "$(cat "$t/comm")" = custodia-audit ] && awk '{print $14 + $15}' "$t/stat" && return
  done
  echo 0
}
requests() { awk '/requests in/ {print $1}'; }
# The whole machine's idle and total CPU ticks (/proc/stat; iowait counts as idle).
machine_ticks() { awk '/^cpu / {print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
cpu_per_req() { # TICKS_BEFORE TICKS_AFTER WRK_OUTPUT
  awk -v t="$(( $2 - $1 ))" -v hz="$(getconf CLK_TCK)" -v n="$(echo "$3" | requests)" \
    'BEGIN {printf "%.1f", n ? t / hz * 1e6 / n : 0}'
}

# PostgreSQL: the database's side of the read run (its processes' CPU, commits, rows written
# and index scans per table), from /proc and pg_stat_* (statistics are flushed about once a
# second: sleep first). The CPU sums the processes alive at each snapshot and their exited
# children (the postmaster's cutime/cstime: backends closed meanwhile, e.g. those whose
# queries were cut off when wrk disconnected at the end of a run, count too).
pg_snap() {
  [ "$BACKEND" = postgres ] || return 0
  sleep 1.2
  { for p in $(pgrep -x postgres); do awk '{printf "cpu %d\n", $14 + $15 + $16 + $17}' "/proc/$p/stat" 2>/dev/null; done
    psql "$PG/custodia_bench$PGQ" -Atc "SELECT 'commits', xact_commit FROM pg_stat_database WHERE datname = 'custodia_bench'
      UNION ALL SELECT 'rows inserted ' || relname, n_tup_ins FROM pg_stat_user_tables
      UNION ALL SELECT 'rows updated ' || relname, n_tup_upd FROM pg_stat_user_tables
      UNION ALL SELECT 'index scans ' || relname, COALESCE(idx_scan, 0) FROM pg_stat_user_tables" | tr '|' ' '
  } | awk '{k = $1; for (i = 2; i < NF; i++) k = k " " $i; v[k] += $NF} END {for (k in v) print k "\t" v[k]}' | sort > "$1"
}
pg_report() { # REQUESTS RUN (pg: the read run, pga: the audited bare run)
  [ "$BACKEND" = postgres ] || return 0
  echo "PostgreSQL per request of the $([ "$2" = pg ] && echo read || echo audited bare) run:"
  join -t $'\t' "$DIR/$2.before" "$DIR/$2.after" | awk -F '\t' -v n="$1" -v hz="$(getconf CLK_TCK)" '
    { d = $3 - $2; if (d == 0) next
      if ($1 == "cpu") printf "  %-40s %8.1f µs\n", "CPU of its processes", d / hz * 1e6 / n
      else printf "  %-40s %8.3f\n", $1, d / n }'
}

run "$CONST_URL" >/dev/null 2>&1 || true   # warm-up
T0=$(ticks)
M0=$(machine_ticks)
CONST_OUT=$(run "$CONST_URL")
M0="$M0 $(machine_ticks)"
# Audit group commits and events so far (the events per commit of the read run).
commits() { curl -sf -H "Authorization: Bearer $CUSTODIA_ADMIN_TOKEN" "http://127.0.0.1:$PORT/metrics" |
  awk '/^custodia_audit_group_commits_total/ {c=$2} /^custodia_audit_events_appended_total/ {e=$2}
       /^custodia_audit_delayed_commits_total/ {d=$2} END {print c+0, e+0, d+0}'; }
T1=$(ticks)
A1=$(audit_ticks)
C1=$(commits)
# STRACE=1: count the system calls of the runtime's threads ("workers": the request workers
# and the blocking pool, where the audit indexer writes) and of the audit thread during the
# saturated read run (strace slows the server: that run's rates are then not figures).
threads() { for t in /proc/$PID/task/*; do [ "$(cat "$t/comm")" = "$1" ] && echo -n "-p ${t##*/} "; done; }
if [ -n "${STRACE:-}" ]; then
  command -v strace >/dev/null || { echo "install strace (apt-get install strace)" >&2; exit 1; }
  # shellcheck disable=SC2046
  timeout "${DURATION%s}" strace -c -o "$DIR/strace.workers" $(threads tokio-rt-worker) >/dev/null 2>&1 &
  ST1=$!
  # shellcheck disable=SC2046
  timeout "${DURATION%s}" strace -c -o "$DIR/strace.audit" $(threads custodia-audit) >/dev/null 2>&1 &
  ST2=$!
fi
if [ -n "${PERF:-}" ]; then   # PERF=FILE: profile the server during the saturated read run
  # PERF_SYSTEM=1: the whole machine (with PostgreSQL, wrk and the kernel), not the server alone
  perf record ${PERF_ARGS:--F 999} $([ -n "${PERF_SYSTEM:-}" ] && echo -a || echo -p "$PID") -o "$PERF" -- sleep "${DURATION%s}" >/dev/null 2>&1 &
  PERF_PID=$!
fi
pg_snap "$DIR/pg.before"
M1=$(machine_ticks)
READ_OUT=$(run "$READ_URL")
M2=$(machine_ticks)
T2=$(ticks)
pg_snap "$DIR/pg.after"
A2=$(audit_ticks)
C2=$(commits)
[ -n "${PERF:-}" ] && wait "$PERF_PID"
if [ -n "${STRACE:-}" ]; then
  wait "$ST1" "$ST2" || true
  N=$(echo "$READ_OUT" | requests)
  G=$(echo "$C1 $C2" | awk '{print $4 - $1}')
  echo "system calls in the saturated read run (strace -c; ${N} requests, ${G} audit group commits):"
  for who in workers audit; do
    awk -v who="$who" -v n="$N" -v g="$G" '$NF ~ /^[a-z_0-9]+$/ && $4 ~ /^[0-9]+$/ && $NF != "total" {
        printf "  %-8s %-14s %9d calls  %6.2f per request  %6.2f per group commit\n", who, $NF, $4, $4 / n, g ? $4 / g : 0 }' \
      "$DIR/strace.$who" | sort -k3 -nr | head -8
  done
fi
CONST_RATE=$(echo "$CONST_OUT" | rate)
READ_RATE=$(echo "$READ_OUT" | rate)
HIGH_RSS=$(awk '/VmHWM/ {print int($2/1024)}' /proc/$PID/status)
# Half the saturated read rate: each connection waits DELAY ms after each response, and the
# number of connections is calibrated by two 3 s probes so that the rate achieved is half.
# (wrk's delay is whole milliseconds: pacing 32 connections by the delay alone reached only
# 0.35-0.4 of the saturated rate, not half, before 2026-11-30.)
HALF=$(awk -v r="$READ_RATE" 'BEGIN {printf "%d", r / 2}')
DELAY=2
PCONNS=$(awk -v h="$HALF" -v d="$DELAY" 'BEGIN {c = int(h * (d + 1) / 1000 + 0.5); print (c < 2 ? 2 : c)}')
for _ in 1 2; do
  PROBE=$(run "$READ_URL" "$DELAY" "$PCONNS" 3s | rate)
  PCONNS=$(awk -v c="$PCONNS" -v h="$HALF" -v r="$PROBE" 'BEGIN {n = int(c * h / r + 0.5); print (n < 2 ? 2 : n)}')
done
C3=$(commits)
HALF_OUT=$(run "$READ_URL" "$DELAY" "$PCONNS")
C4=$(commits)
# The bare handler again, after appending a read-shaped audit event durably, as every read
# does: what the read path costs beyond the audit (#4's fail-closed rule applies to both).
pg_snap "$DIR/pga.before"
T3=$(ticks)
AUDITED_OUT=$(run "http://127.0.0.1:$PORT/bench/constant-audited")
T4=$(ticks)
pg_snap "$DIR/pga.after"
AUDITED_RATE=$(echo "$AUDITED_OUT" | rate)

echo "backend              : $BACKEND"
echo "body size            : record $SIZE bytes, constant $CSIZE bytes"
echo "bare handler         : $CONST_RATE req/s (p99 $(echo "$CONST_OUT" | p99))"
echo "record read (12 flds): $READ_RATE req/s (p99 $(echo "$READ_OUT" | p99))"
awk -v a="$READ_RATE" -v b="$CONST_RATE" 'BEGIN {printf "ratio                : %.2f\n", a / b}'
echo "server CPU per request: bare $(cpu_per_req "$T0" "$T1" "$CONST_OUT") µs, record read $(cpu_per_req "$T1" "$T2" "$READ_OUT") µs (audit thread $(cpu_per_req "$A1" "$A2" "$READ_OUT") µs)"
idle() { awk '{printf "%.0f %%", ($4 - $2) ? 100 * ($3 - $1) / ($4 - $2) : 0}'; }
echo "machine idle         : bare run $(echo "$M0" | idle), read run $(echo "$M1 $M2" | idle) (both cores; wrk included)"
# More than 10 % idle: the requests wait (on the audit's sync, on PostgreSQL) more than the
# CPU works, so this "saturated" rate is partly a latency figure; more connections saturate.
echo "$M1 $M2" | awk -v c="$CONNS" '{i = ($4 - $2) ? 100 * ($3 - $1) / ($4 - $2) : 0;
  if (i > 10) printf "  note: the read run left %.0f %% of the CPU idle at %d connections: not saturated; CONNS=128 saturates\n", i, c}'
echo "audit group commits  : $(echo "$C1 $C2" | awk '{c = $4 - $1; printf "%d in the read run, %.1f events each, %d delayed", c, c ? ($5 - $2) / c : 0, $6 - $3}')"
HALF_RATE=$(echo "$HALF_OUT" | rate)
echo "paced run            : target $HALF req/s ($PCONNS connections, ${DELAY} ms between requests), achieved $HALF_RATE req/s ($(awk -v a="$HALF_RATE" -v b="$READ_RATE" 'BEGIN {printf "%.2f", a / b}') of saturated), p99 $(echo "$HALF_OUT" | p99), $(echo "$C3 $C4" | awk '{printf "%d of %d group commits delayed", $6 - $3, $4 - $1}')"
# Audit WAL restarts (storage.md): how many, and the longest hold of the appends (ms).
RESTART_MS=$(sed 's/\x1b\[[0-9;]*m//g' "$DIR/server.out" | { grep "audit WAL restart" || true; } | sed -E 's/.* ms=([0-9.]+).*/\1/' | sort -n)
echo "audit WAL restarts   : $(echo "$RESTART_MS" | grep -c . || true), longest $(echo "$RESTART_MS" | tail -1 | awk '{printf "%.1f", $1}') ms"
sed 's/\x1b\[[0-9;]*m//g' "$DIR/server.out" | grep -E "slow tree head|slow audit|audit WAL" | cut -c1-200 || true
echo "audited bare handler : $AUDITED_RATE req/s (p99 $(echo "$AUDITED_OUT" | p99)), server CPU $(cpu_per_req "$T3" "$T4" "$AUDITED_OUT") µs per request"
awk -v a="$READ_RATE" -v b="$AUDITED_RATE" -v c="$CONST_RATE" 'BEGIN {printf "ratio to audited bare: %.2f (the audited bare handler itself: %.2f of the bare one)\n", a / b, b / c}'
pg_report "$(echo "$READ_OUT" | requests)" pg
pg_report "$(echo "$AUDITED_OUT" | requests)" pga
# PostgreSQL: the read's query alone (RECORD_BY_ID in crates/custodia-store/src/direct.rs),
# run by pgbench with prepared statements on as many connections as the server's reads use
# (16) and on 4: what PostgreSQL and a C client reach on this machine with no HTTP, no
# decryption, no policy and no audit. A ceiling for the read, measured in the same run.
if [ "$BACKEND" = postgres ] && command -v pgbench >/dev/null; then
  cat > "$DIR/read.sql" <<'SQL'
SELECT r.id, r.version, r.tier, r.branch, r.fields, r.created_at, r.updated_at, k.key_id, k.kek_version, k.wrapped FROM records r LEFT JOIN record_keys k ON k.collection = r.collection AND k.record_id = r.id WHERE r.collection = 'customers' AND r.id = :id;
SQL
  for c in 16 4; do
    TPS=$( { pgbench -n -M prepared -c "$c" -j 2 -T "${DURATION%s}" -D "id=$ID" -f "$DIR/read.sql" \
      "$PG/custodia_bench$PGQ" 2>"$DIR/pgbench.err" || true; } | awk '/^tps/ && !n++ {printf "%d", $3}')
    [ -n "$TPS" ] || { echo "pgbench failed:" >&2; tail -3 "$DIR/pgbench.err" >&2; }
    awk -v t="${TPS:-0}" -v c="$c" -v b="$CONST_RATE" -v r="$READ_RATE" 'BEGIN {
      printf "the query alone      : %d/s (pgbench -M prepared, %d connections): %.2f of the bare handler; the read is %.2f of it\n",
        t, c, t / b, t ? r / t : 0 }'
  done
fi
echo "server RSS           : idle ${IDLE_RSS} MB, peak under load ${HIGH_RSS} MB"

# #4's ratio on this read path: the same server and data restarted with and without auditing
# (`--bench-unaudited`, allowed only on a --dev vault, hence SQLite only), AB_ROUNDS pairs of
# read runs in alternation (each after a 2 s warm-up), as the machine's speed drifts. The
# unaudited server also serves the bare handler, run after its read (before it in even rounds): #2's ratio of the
# read path alone (what #2 specified, before #4 put a durable append into every read) and of
# the audited read, from the same rounds; the second is about the product of the first and #4's.
AB_ROUNDS="${AB_ROUNDS:-2}"
if [ "$BACKEND" = sqlite ] && [ "$AB_ROUNDS" -gt 0 ]; then
  AB=()
  # measure NAME URL: one saturated run on the current server, appended to AB
  measure() {
    local b0 b1 out r
    b0=$(ticks)
    out=$(run "$2")
    b1=$(ticks)
    r=$(echo "$out" | rate)
    AB+=("$1 ${r:-0} $(cpu_per_req "$b0" "$b1" "$out")")
  }
  for round in $(seq 1 "$AB_ROUNDS"); do
    for mode in audited unaudited; do
      stop
      if [ "$mode" = audited ]; then
        start "${SERVE[@]}" --bench-body-bytes "$SIZE"
      else
        start "${SERVE[@]}" --bench-body-bytes "$SIZE" --bench-unaudited
      fi
      run "$READ_URL" 0 "$CONNS" 2s >/dev/null 2>&1 || true
      if [ "$mode" = audited ]; then
        measure audited "$READ_URL"
      elif [ $((round % 2)) = 1 ]; then   # the bare run after the read in odd rounds, before it in even ones
        measure unaudited "$READ_URL"
        measure bare "$CONST_URL"
      else
        measure bare "$CONST_URL"
        measure unaudited "$READ_URL"
      fi
    done
  done
  printf '%s\n' "${AB[@]}" | awk '
    { n[$1]++; r[$1] += $2; c[$1] += $3; runs[$1] = runs[$1] sprintf(" %d (%.1f µs)", $2, $3) }
    END {
      a = r["audited"] / n["audited"]; u = r["unaudited"] / n["unaudited"]; b = r["bare"] / n["bare"]
      printf "read, audited        :%s req/s\n", runs["audited"]
      printf "read, unaudited      :%s req/s\n", runs["unaudited"]
      printf "bare handler (again) :%s req/s\n", runs["bare"]
      ca = c["audited"] / n["audited"]; cu = c["unaudited"] / n["unaudited"]
      printf "ratio with/without audit: %.2f (mean rates; server CPU per read %.1f vs %.1f µs, ratio %.2f)\n",
        u ? a / u : 0, ca, cu, ca ? cu / ca : 0
      printf "read path alone / bare (#2 without #4): %.2f; audited read / bare: %.2f (#2 x #4 targets: 0.35 x 0.8 = 0.28)\n",
        b ? u / b : 0, b ? a / b : 0
    }'
fi
