#!/usr/bin/env bash
# Contract test of the HTTP API against its own OpenAPI document: starts `custodia serve
# --dev` on a free port and runs Schemathesis (property-based requests generated from
# /openapi.json) three times — as the service account demo-app with a purpose (data calls),
# as the signed-in user auditor (investigations, proofs) and as the admin token
# (administration). Fails on any 5xx, any undocumented status, any response that does not
# match its schema, any request the document allows that the server refuses (except where
# schemathesis.toml says why), and any panic in the server's log.
#
#   tests/contract/run.sh                 # the debug build (cargo build first)
#   CUSTODIA_BIN=target/release/custodia MAX_EXAMPLES=200 tests/contract/run.sh
#   DEEP=300 tests/contract/run.sh        # random cases for 300 s per run
#   CONTRACT_DATABASE=postgres://postgres@127.0.0.1:5432/contract tests/contract/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
here=tests/contract

if [ -z "${CUSTODIA_BIN:-}" ]; then cargo build -q -p custodia; fi
BIN="${CUSTODIA_BIN:-target/debug/custodia}"
ST_VERSION=4.32.5
VENV="${CONTRACT_VENV:-target/contract-venv}"
if ! "$VENV/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  echo "installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi

PORT="${PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
URL="http://127.0.0.1:$PORT"
WORK="$(mktemp -d)"
export CUSTODIA_ADMIN_TOKEN="contract-admin-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export CUSTODIA_DEV_APP_KEY="csk_contract$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export CUSTODIA_DEV_PASSWORD="contract-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
export CUSTODIA_DEV_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
export CUSTODIA_AUTH_SESSION_IDLE_SECS=7200
# CONTRACT_DATABASE=postgres://… runs the server on that database (create it empty) instead
# of SQLite.
db=()
[ -n "${CONTRACT_DATABASE:-}" ] && db=(--database "$CONTRACT_DATABASE" --dev-records 2000)
"$BIN" serve --dev --listen "127.0.0.1:$PORT" --data-dir "$WORK/vault" "${db[@]}" >"$WORK/serve.log" 2>&1 &
SERVER=$!
# KEEP=1 keeps the server's and Schemathesis's logs (the server's holds the run's throwaway
# dev secrets, never personal data: the customers are synthetic).
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true
      if [ -n "${KEEP:-}" ]; then echo "logs: $WORK"; else rm -rf "$WORK"; fi' EXIT
up=
for _ in $(seq 1 120); do
  curl -fs "$URL/healthz" >/dev/null 2>&1 && { up=1; break; }
  kill -0 $SERVER 2>/dev/null || break
  sleep 0.5
done
if [ -z "$up" ]; then
  echo "FAILED: serve --dev exited or did not answer /healthz within 60 s:" >&2
  tail -20 "$WORK/serve.log" >&2
  exit 1
fi

# CI runs a fixed set of cases (deterministic generation); DEEP=SECONDS explores with random
# ones for that long per run instead (reproduce a failure with the SEED it prints).
if [ -n "${DEEP:-}" ]; then
  generation=(--max-time "$DEEP" --seed "${SEED:-$RANDOM$RANDOM}" --generation-database none)
else
  generation=(--max-examples "${MAX_EXAMPLES:-50}" --generation-deterministic)
fi
st_run() {
  "$VENV/bin/st" --no-color --config-file "$here/schemathesis.toml" run "$URL/openapi.json" \
    --workers 2 "${generation[@]}" --phases examples,coverage,fuzzing,stateful \
    --request-timeout 20 "$@"
}

# A run fails on what it found about the API. Schemathesis's own crashes are not findings:
# CPython 3.11.7 (this machine's) sometimes raises "SystemError: AST constructor recursion
# depth mismatch" inside Hypothesis while it describes a strategy; such an error is reported
# and passed over, any other error (a refused connection: the server died) fails the run.
judge() {
  local log="$1" errors tool_bugs
  sed -n '/^=* SUMMARY/,$p' "$log"
  grep -q "SUMMARY" "$log" || return 1
  grep -q "^Failures:" "$log" && return 1
  errors=$(sed -n '/^=* ERRORS/,/^=* \(FAILURES\|WARNINGS\|SUMMARY\)/p' "$log" | grep -c '^_\{3,\} .* _\{3,\}$' || true)
  tool_bugs=$(grep -c 'SystemError: AST constructor recursion depth mismatch' "$log" || true)
  if [ "$errors" -gt 0 ]; then
    [ "$tool_bugs" -ge "$errors" ] || return 1
    echo "note: $errors Schemathesis-internal error(s) (CPython AST bug) passed over"
  fi
}

# Sign the auditor in first: the runs' failed sign-ins put this address into the sign-in
# back-off (as they should), and a later sign-in would be refused.
code="$("$BIN" totp --secret "$CUSTODIA_DEV_TOTP_SECRET")"
session="$(curl -fs -H 'Content-Type: application/json' \
  -d "{\"username\":\"auditor\",\"password\":\"$CUSTODIA_DEV_PASSWORD\",\"totp\":\"$code\"}" \
  "$URL/v1/auth/login" | sed 's/.*"token":"\([^"]*\)".*/\1/')" \
  || { echo "FAILED: the demo user auditor could not sign in" >&2; exit 1; }

status=0
echo "==> as service account demo-app, purpose account_service"
st_run -H "Authorization: Bearer $CUSTODIA_DEV_APP_KEY" -H "X-Custodia-Purpose: account_service" \
  >"$WORK/app.log" 2>&1 || true
judge "$WORK/app.log" || status=1
echo "==> as the user auditor (a signed-in session: investigations and proofs)"
# Signing out would end the session the run is using.
st_run -H "Authorization: Bearer $session" --exclude-path /v1/auth/logout \
  >"$WORK/auditor.log" 2>&1 || true
judge "$WORK/auditor.log" || status=1
# Last: its stateful phase may delete the demo users (auditor among them).
echo "==> as the admin token"
st_run -H "Authorization: Bearer $CUSTODIA_ADMIN_TOKEN" >"$WORK/admin.log" 2>&1 || true
judge "$WORK/admin.log" || status=1

if grep -q "panicked" "$WORK/serve.log"; then
  echo "FAILED: the server panicked:" >&2
  grep -A3 "panicked" "$WORK/serve.log" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  for f in app admin auditor; do
    if grep -q "SUMMARY" "$WORK/$f.log"; then
      sed -n '/^=* FAILURES/,/^=* WARNINGS/p' "$WORK/$f.log" >&2
      sed -n '/^=* ERRORS/,/^=* FAILURES/p' "$WORK/$f.log" \
        | grep -E '^(=|_{3,} )|^[A-Za-z]*(Error|Exception)\b' | cut -c1-300 >&2 || true
    else
      tail -20 "$WORK/$f.log" >&2
    fi
  done
  echo "FAILED: the API does not match /openapi.json (see 'Seed:' above to reproduce a DEEP run)" >&2
fi
exit $status
