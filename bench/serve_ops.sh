#!/usr/bin/env bash
# What the operator features cost on authenticated MCP `tools/call` (release build, mock mode,
# loopback, wrk with bench/serve.lua, token cache on, signed session id checked per request):
# plain HTTP with metrics off (the baseline), metrics on, a per-client rate limit too high to
# refuse anything (every request takes from its client's bucket), the JSON access log, TLS
# (a P-256 certificate made with openssl; wrk keeps its connections, so this is the per-request
# cost of TLS records, not of handshakes), and TLS with metrics on.
#
#   bench/serve_ops.sh                   # DURATION=15s, CONNECTIONS=32, WRK_THREADS=1
#   DURATION=30s CONNECTIONS="1 32" bench/serve_ops.sh
#   MCPGEN_BIN=/path/to/old/mcpgen ONLY=baseline bench/serve_ops.sh   # another build, A/B
#
# Targets on 2 cores at 32 connections: p99 <= 5 ms for every variant, and throughput within
# 15% of the baseline. Exit status 1 if one is missed or any request was not answered 2xx.
set -euo pipefail

cd "$(dirname "$0")/.."
DURATION=${DURATION:-15s}
WRK_THREADS=${WRK_THREADS:-1}
CONNECTIONS=${CONNECTIONS:-32}
TARGET_P99_MS=5
TARGET_RATIO=0.85

for tool in wrk curl awk openssl python3; do command -v "$tool" >/dev/null || { echo "error: $tool is required" >&2; exit 1; }; done

. bench/common.sh
release_binary
work_dir

"$BIN" --root "$WORK" up --instance bench >/dev/null 2>&1
TOKEN=$(cat "$WORK/bench/sa/token.jwt")
export MCPGEN_BENCH_TOKEN=$TOKEN
CONFIG="$WORK/bench/mcp_server_config.json"
cp "$CONFIG" "$WORK/config.orig"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

. bench/wrk.sh

# configure METRICS(true|false) RATE_LIMIT(true|false): rewrite the configuration.
configure() {
  python3 - "$WORK/config.orig" "$CONFIG" "$1" "$2" <<'EOF'
import json, os, sys
src, dst, metrics, limit = sys.argv[1:]
doc = json.load(open(src))
doc.setdefault("server", {})["metrics"] = {"enabled": metrics == "true"}
if limit == "true":
    doc.setdefault("security", {})["rate_limit"] = {"requests_per_minute": 1e9, "burst": 1e6}
tmp = dst + ".tmp"
with open(tmp, "w") as f:
    json.dump(doc, f)
os.chmod(tmp, 0o600)
os.replace(tmp, dst)
EOF
}

start_server() { # extra serve flags
  : >"$WORK/url"
  "$BIN" --root "$WORK" serve bench --port 0 --mock "$@" >"$WORK/url" 2>"$WORK/server.log" &
  SERVER_PID=$!
  serve_url "$WORK/server.log"
  [ -n "$URL" ] || { echo "error: the server printed no URL" >&2; exit 1; }
  local curl=(curl -fsS --cacert "$WORK/cert.pem")
  MCPGEN_BENCH_SESSION=$("${curl[@]}" -D - -o /dev/null "$URL" \
      -H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"wrk","version":"0"}}}' \
    | awk -F': ' 'tolower($1) == "mcp-session-id" { gsub(/\r/, "", $2); print $2 }')
  [ -n "$MCPGEN_BENCH_SESSION" ] || { echo "error: initialize returned no session" >&2; exit 1; }
  export MCPGEN_BENCH_SESSION
  local check
  check=$("${curl[@]}" "$URL" -H "X-OEMCP-SERVICEACCOUNT: $TOKEN" -H "Mcp-Session-Id: $MCPGEN_BENCH_SESSION" \
    -H 'MCP-Protocol-Version: 2025-11-25' -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"getOrder","arguments":{"orderId":"ord-1001"}}}')
  case "$check" in
    *'ord-1001'*) ;;
    *) echo "error: the benchmarked tools/call does not succeed: $check" >&2; exit 1 ;;
  esac
}

FAILED=0
RESULTS=()
BASELINE=
# label | metrics | rate limit | serve flags
VARIANTS=(
  "baseline|false|false|"
  "metrics on|true|false|"
  "rate limit|false|true|"
  "json log|false|false|--log-format json"
  "tls|false|false|--tls-cert $WORK/cert.pem --tls-key $WORK/key.pem"
  "tls + metrics|true|false|--tls-cert $WORK/cert.pem --tls-key $WORK/key.pem"
)
for variant in "${VARIANTS[@]}"; do
  IFS='|' read -r label metrics limit flags <<<"$variant"
  if [ -n "${ONLY:-}" ] && [ "$label" != "$ONLY" ]; then continue; fi
  configure "$metrics" "$limit"
  # shellcheck disable=SC2086
  start_server $flags
  for c in $CONNECTIONS; do
    wrk_cell "$c" "$URL" "$label"
    verdict=""
    if [ "$c" = 32 ]; then
      [ "$label" = baseline ] && BASELINE=$RPS
      if awk -v r="$RPS" -v b="${BASELINE:-$RPS}" -v p="$P99" -v tp="$TARGET_P99_MS" -v k="$TARGET_RATIO" 'BEGIN { exit !(p <= tp && r >= b * k) }'; then
        verdict="ok (p99 <= ${TARGET_P99_MS} ms, >= 85% of baseline)"
      else
        verdict="TARGET MISSED (p99 <= ${TARGET_P99_MS} ms, >= 85% of baseline)"
        FAILED=1
      fi
    fi
    RESULTS+=("$(printf '%-14s %5s %12s %10s %10s  %s' "$label" "$c" "$RPS" "$P50" "$P99" "$verdict")")
  done
  if [ "$metrics" = true ]; then
    "curl" -fsS --cacert "$WORK/cert.pem" "${URL%/mcp}/metrics" | grep -q 'mcpgen_tool_calls_total{tool="getOrder",outcome="ok"}' \
      || { echo "error: /metrics did not count the calls" >&2; FAILED=1; }
  fi
  if grep -qF "$TOKEN" "$WORK/server.log"; then echo "error: the server logged the token" >&2; FAILED=1; fi
  stop_server
done

echo
echo "mcpgen serve, authenticated tools/call (mock, token cache on, signed session), $(nproc) cores, wrk -t<=$WRK_THREADS -d$DURATION"
printf '%-14s %5s %12s %10s %10s\n' "variant" "conns" "calls/s" "p50 ms" "p99 ms"
printf '%s\n' "${RESULTS[@]}"
exit "$FAILED"
